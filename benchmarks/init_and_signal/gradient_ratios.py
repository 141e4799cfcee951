"""Gradient and activation diagnostics of every init strategy on the same work.

For each strategy and seed this builds each model of ``--models`` (a stack of
``PtychoBlock``s; the generators ``generator`` = fno, ``hybrid``,
``fno_vanilla``, ``ffno``), runs one forward pass and one backward pass per
probe loss, and records per block: mean |∇| of the spectral and local weights and
their ratio (the reference plan's metric), the relative gradient ‖∇W‖/‖W‖ of
each (what an optimizer step sees), the std of both branch outputs and their
ratio, and the activation std through depth. A seed fixes the input, the probe,
the local weights and the spectral draw, so strategies are compared paired by seed.
FFNO blocks (``ffno``) have no local conv: their "local" weight is the 1×1
``expand`` and their local branch the residual input (``ptycho_torch.diagnostics``);
their one spectral layer is shared, so its gradient is the same in every block.
On a CPU the (model, input, seed) units go to ``--jobs`` worker processes of one torch thread each (by
default one per core): the numbers are those of one process on one thread, bit for bit.

    python -m benchmarks.gradient_ratios                      # the default sweep
    python -m benchmarks.gradient_ratios --quick --strategies legacy
    python -m benchmarks.gradient_ratios --compare OLD.json
"""

# Over 400 lines because a study is one module: its flags, its runs, its statistics, its record's
# schema, Markdown report and figure together (benchmarks.replot finds a study by those names in one
# module, and replots a record from it without a list); what studies share is in machinery/.

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field

from ptycho_torch.diagnostics import BranchCapture, SpectralBlock, local_weight, spectral_blocks, spectral_weights_of
from ptycho_torch.generators import (
    CascadedFNOGenerator,
    FfnoGeneratorModule,
    FnoVanillaGeneratorModule,
    HybridUNOGenerator,
    PtychoBlock,
)
from ptycho_torch.simulation import SimulationConfig, simulate_dataset
from spectral_init import make_initializer
from spectral_init.cli.threads import announce_threads
from spectral_init.initialize_model import spectral_layer_kinds

from .machinery.common import (
    Progress,
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    comma_separated,
    command_threads,
    environment,
    format_ci,
    keep_finished_runs,
    markdown_header,
    prepare_output_dir,
    publish,
    refuse_unused,
    resolve_device,
    run_arguments,
    run_cli,
    select_strategies,
    strategy_spec,
)
from .machinery.figures import bar_groups, one_legend, pyplot
from .machinery.stats import compare_strategies
from .machinery.workers import (
    JOBS_HELP,
    add_executor_arguments,
    check_executor_flags,
    default_workers,
    results_of,
)

SCHEMA = "spectral-init/gradient-ratios/1"
MODULE, STEM = "benchmarks.gradient_ratios", "gradient_ratios"
MODELS = ("blocks", "generator", "hybrid", "fno_vanilla", "ffno")
DEFAULT_MODELS = ("blocks", "generator", "fno_vanilla", "ffno")
INPUTS = ("white-noise", "diffraction")
LOSSES = ("mean", "abs-mean", "random-projection")
# --- the JSON's schema; docs/benchmarks.md ("JSON") documents it ------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Stat(_Strict):
    n: int
    mean: float
    std: float | None
    ci95: float | None


class BlockRecord(_Strict):
    index: int
    grad_mean_abs_spectral: float
    grad_mean_abs_local: float
    grad_ratio_local_over_spectral: float
    rel_grad_spectral: float
    rel_grad_local: float
    branch_std_spectral: float
    branch_std_local: float
    branch_std_ratio_spectral_over_local: float
    activation_std: float


BLOCK_METRICS = tuple(name for name in BlockRecord.model_fields if name != "index")
# The raw gradient means enter the summary through their ratio; alone they scale with the weights' count.
SUMMARY_METRICS = tuple(m for m in BLOCK_METRICS if m not in ("grad_mean_abs_spectral", "grad_mean_abs_local"))


class Run(_Strict):
    model: str
    input: str
    loss: str
    strategy: str
    seed: int
    blocks: list[BlockRecord]
    seconds: float


class SummaryEntry(_Strict):
    model: str
    input: str
    loss: str
    strategy: str
    metrics: dict[str, Stat]
    vs_baseline: dict[str, Stat] | None


class SweepConfig(_Strict):
    strategies: list[str]
    seeds: list[int]
    models: list[str]
    inputs: list[str]
    losses: list[str]
    width: int
    blocks: int
    modes: int
    size: int
    batch: int
    baseline: str
    backend: str
    dtype: str
    # processes the runs were spread over (the numbers do not depend on it; 1 in files written before it was kept)
    workers: int = 1


class Report(_Strict):
    """The whole JSON file; ``schema`` names its version (a field name pydantic reserves, hence the alias)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    schema_: str = Field(alias="schema")
    environment: dict[str, Any]
    config: SweepConfig
    runs: list[Run]
    summary: list[SummaryEntry]
    timings: dict[str, float]
    # model → {spectral layer kind: count} as built: which layer ran (empty in files written before it was kept)
    spectral_layers: dict[str, dict[str, int]] = Field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        # exclude_unset: a file read without a later-added field is written back without it
        return self.model_dump(by_alias=True, exclude_unset=True)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Report:
        return cls.model_validate(data)


# --- the measurement ---------------------------------------------------------------------------


def build_model(kind: str, strategy: str, seed: int, cfg: SweepConfig) -> tuple[nn.Module, list[SpectralBlock]]:
    """The model of ``kind``; the seed fixes every weight, the spectral ones through their own stream."""
    torch.manual_seed(seed)  # local weights: the same for every strategy at one seed
    # every model here is GELU blocks: edge-of-chaos gets that activation and the input size
    initializer = make_initializer(strategy_spec(strategy, seed, cfg.size, "gelu"))
    common = dict(in_channels=1, out_channels=2, hidden_channels=cfg.width, modes=cfg.modes, C=1,
                  spectral_init=initializer)
    model: nn.Module
    if kind == "blocks":
        model = nn.Sequential(*(PtychoBlock(cfg.width, cfg.modes, initializer, cfg.backend) for _ in range(cfg.blocks)))
    elif kind == "generator":
        model = CascadedFNOGenerator(fno_blocks=cfg.blocks, cnn_blocks=2, spectral_backend=cfg.backend, **common)
    elif kind == "hybrid":
        model = HybridUNOGenerator(n_blocks=cfg.blocks, spectral_backend=cfg.backend, **common)
    elif kind == "fno_vanilla":
        model = FnoVanillaGeneratorModule(n_blocks=cfg.blocks, spectral_backend=cfg.backend, **common)
    else:
        model = FfnoGeneratorModule(n_blocks=cfg.blocks, cnn_blocks=2, **common)
    return model, spectral_blocks(model)


def make_input(input_kind: str, model_kind: str, seed: int, cfg: SweepConfig) -> torch.Tensor:
    """White noise, or simulated diffraction amplitudes (``lines`` objects, disk probe, 1e9 photons).

    The block stack takes ``width`` channels: a diffraction batch is repeated
    across them, so its blocks see the amplitudes' real dynamic range.
    """
    channels = cfg.width if model_kind == "blocks" else 1
    dtype = getattr(torch, cfg.dtype)
    if input_kind == "white-noise":
        generator = torch.Generator().manual_seed(10_007 + seed)
        return torch.randn(cfg.batch, channels, cfg.size, cfg.size, generator=generator, dtype=dtype)
    return _diffraction_batch(cfg.size, cfg.batch, seed).to(dtype).expand(-1, channels, -1, -1).contiguous()


@functools.lru_cache(maxsize=8)
def _diffraction_batch(size: int, batch: int, seed: int) -> torch.Tensor:
    """One seed's simulated amplitudes, simulated once for all strategies (callers copy, never mutate)."""
    data = simulate_dataset(SimulationConfig(N=size), nimgs=1, seed=seed)
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(30_011 + seed))[:batch]
    return data.amplitudes[pick]


def probe_loss(name: str, y: torch.Tensor, seed: int) -> torch.Tensor:
    if name == "mean":
        return y.mean()
    if name == "abs-mean":
        return y.abs().mean()
    # A fixed random direction: every output element gets a gradient of the same scale.
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(20_011 + seed), dtype=y.dtype).to(y.device)
    return (y * r).sum() / math.sqrt(y.numel())


def _flat_abs(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.abs().double().flatten() for t in tensors])


def measure(
    model: nn.Module, blocks: list[SpectralBlock], x: torch.Tensor, losses: Sequence[str], seed: int
) -> dict[str, list[dict[str, float]]]:
    """Per loss, per block: the BLOCK_METRICS of one forward and one backward pass."""
    with BranchCapture(blocks) as capture:
        y = model(x)
    forward = []
    for i in range(len(blocks)):
        spectral_std, local_std = capture.std(i, "spectral"), capture.std(i, "local")
        forward.append(
            {
                "branch_std_spectral": spectral_std,
                "branch_std_local": local_std,
                "branch_std_ratio_spectral_over_local": spectral_std / local_std,
                "activation_std": capture.std(i, "out"),
            }
        )
    results: dict[str, list[dict[str, float]]] = {}
    for loss_name in losses:
        model.zero_grad(set_to_none=True)
        probe_loss(loss_name, y, seed).backward(retain_graph=True)
        per_block = []
        for i, block in enumerate(blocks):
            ws, wl = spectral_weights_of(block), local_weight(block)
            gs, gl = _flat_abs([w.grad for w in ws]), wl.grad.abs().double()
            mean_s, mean_l = gs.mean().item(), gl.mean().item()
            per_block.append(
                {
                    "index": i,
                    "grad_mean_abs_spectral": mean_s,
                    "grad_mean_abs_local": mean_l,
                    "grad_ratio_local_over_spectral": mean_l / mean_s,
                    "rel_grad_spectral": gs.norm().item() / _flat_abs([w.detach() for w in ws]).norm().item(),
                    "rel_grad_local": gl.norm().item() / wl.detach().abs().double().norm().item(),
                    **forward[i],
                }
            )
        results[loss_name] = per_block
    return results


def summarize(runs: list[Run], cfg: SweepConfig) -> list[SummaryEntry]:
    """Block-averaged metrics: mean and 95% CI over seeds, and paired differences to the baseline."""
    groups: dict[tuple[str, str, str], dict[str, dict[int, dict[str, float]]]] = {}
    for run in runs:
        averaged = {m: statistics.fmean(getattr(b, m) for b in run.blocks) for m in SUMMARY_METRICS}
        groups.setdefault((run.model, run.input, run.loss), {}).setdefault(run.strategy, {})[run.seed] = averaged
    entries = []
    for (model, inp, loss), per_seed in groups.items():
        for strategy, result in compare_strategies(per_seed, SUMMARY_METRICS, cfg.baseline).items():
            vs = result["vs_baseline"]
            entries.append(
                SummaryEntry(
                    model=model,
                    input=inp,
                    loss=loss,
                    strategy=strategy,
                    metrics={m: Stat(**s) for m, s in result["metrics"].items()},
                    vs_baseline=None if vs is None else {m: Stat(**s) for m, s in vs.items()},
                )
            )
    return entries


@dataclass(frozen=True)
class Unit:
    """One model kind, input and seed, measured under every strategy in turn: the work of one worker call."""

    model: str
    input: str
    seed: int
    cfg: SweepConfig
    device: str

    @property
    def key(self) -> tuple[str, str, int]:
        return self.model, self.input, self.seed


def measure_unit(unit: Unit) -> tuple[Unit, list[Run], dict[str, int]]:
    """The runs of ``unit`` (strategy by strategy, loss by loss) and its model's spectral layer kinds."""
    cfg, device = unit.cfg, torch.device(unit.device)
    runs: list[Run] = []
    layers: dict[str, int] = {}
    # Strategies interleaved within a seed: drifts in machine load hit them alike.
    for strategy in cfg.strategies:
        t0 = time.perf_counter()
        model, blocks = build_model(unit.model, strategy, unit.seed, cfg)
        if not layers:  # the same layers at every strategy and seed
            layers = spectral_layer_kinds(model)
        # .double(), not .to(dtype): Module.to(float dtype) casts complex weights to real.
        model = (model.double() if cfg.dtype == "float64" else model).to(device)
        x = make_input(unit.input, unit.model, unit.seed, cfg).to(device)
        results = measure(model, blocks, x, cfg.losses, unit.seed)
        seconds = time.perf_counter() - t0
        runs += [Run(model=unit.model, input=unit.input, loss=loss_name, strategy=strategy, seed=unit.seed,
                     blocks=[BlockRecord(**b) for b in per_block], seconds=seconds)
                 for loss_name, per_block in results.items()]
    return unit, runs, layers


# Imported once by the fork server that CPU workers start from (benchmarks.machinery.workers), not by each worker.
_WORKER_PRELOAD = ("benchmarks.machinery.common", "ptycho_torch.diagnostics", "ptycho_torch.generators",
                   "ptycho_torch.simulation")


def run_sweep(cfg: SweepConfig, device: torch.device, output_dir: Path, show_progress: bool = True,
              argv: Sequence[str] | None = None, previous: dict[str, Any] | None = None,
              arguments: dict[str, Any] | None = None, executor: str = "local",
              executor_config: dict[str, Any] | None = None) -> Report:
    """Every model × input × seed × strategy, measured in this process or in ``cfg.workers`` worker processes
    (the numbers do not depend on where); on Ctrl-C the finished ones are written to ``output_dir`` (with
    the ``arguments`` a resume checks). The units of an interrupted ``previous`` record are kept."""
    units = [Unit(m, i, s, cfg, str(device)) for m in cfg.models for i in cfg.inputs for s in cfg.seeds]
    finished: dict[tuple[str, str, int], list[Run]] = {}  # by (model, input, seed)
    layers: dict[str, dict[str, int]] = dict(previous.get("spectral_layers", {})) if previous else {}
    for run in (Run.model_validate(r) for r in (previous or {}).get("runs", [])):
        finished.setdefault((run.model, run.input, run.seed), []).append(run)
    todo = [unit for unit in units if unit.key not in finished]
    progress = Progress(len(units), "gradient ratios", enabled=show_progress, initial=len(units) - len(todo))
    start = time.perf_counter()

    def partial() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, argv), "config": cfg.model_dump(),
                "runs": [r.model_dump() for runs in finished.values() for r in runs], "spectral_layers": layers}

    with keep_finished_runs(output_dir, STEM, partial, lambda: len(finished) * len(cfg.strategies), arguments):
        for unit, runs, kinds in results_of(measure_unit, todo, cfg.workers, device.type, _WORKER_PRELOAD,
                                                  executor, executor_config):
            finished[unit.key] = runs
            layers[unit.model] = kinds
            progress.step(f"{unit.model} {unit.input} seed {unit.seed}")
    progress.close()
    runs = [r for unit in units for r in finished[unit.key]]  # the order of one process, whichever finished first
    elapsed = time.perf_counter() - start
    return Report(
        schema_=SCHEMA,
        environment=environment(device, MODULE, argv),
        config=cfg,
        runs=runs,
        summary=summarize(runs, cfg),
        timings={
            "total_seconds": elapsed,
            "median_seconds_per_model": statistics.median(r.seconds for r in runs) if runs else 0.0,
        },
        spectral_layers={m: layers[m] for m in cfg.models},
    )


# --- reporting ---------------------------------------------------------------------------------


_TABLE_METRICS = (
    "grad_ratio_local_over_spectral",
    "rel_grad_spectral",
    "rel_grad_local",
    "branch_std_spectral",
    "branch_std_ratio_spectral_over_local",
    "activation_std",
)
_DELTA_METRICS = ("grad_ratio_local_over_spectral", "branch_std_ratio_spectral_over_local")


def _cell(stat: Stat) -> str:
    return format_ci(stat.mean, stat.ci95)


def markdown_report(record: dict[str, Any]) -> str:
    """The report of a record, like every benchmark's: from its JSON alone."""
    report = Report.from_json_dict(record)
    env, cfg = report.environment, report.config
    lines = [
        *markdown_header("Gradient ratios per init strategy", env, cfg.dtype),
        f"Width {cfg.width}, {cfg.blocks} blocks, {cfg.modes} modes, {cfg.size}×{cfg.size}, batch {cfg.batch}, "
        f"seeds {cfg.seeds}, backend {cfg.backend}. Values: block-averaged, mean ± 95% CI half-width over seeds; "
        f"Δ: paired by seed against `{cfg.baseline}`.",
        "",
    ]
    groups: dict[tuple[str, str, str], list[SummaryEntry]] = {}
    for e in report.summary:
        groups.setdefault((e.model, e.input, e.loss), []).append(e)
    for (model, inp, loss), entries in groups.items():
        lines += [
            "",
            f"## {model}, {inp} input, loss `{loss}`",
            "",
            "| strategy | local/spectral mean\\|∇\\| | ‖∇W‖/‖W‖ spectral | ‖∇W‖/‖W‖ local | spectral std "
            "| spectral/local std | output std | Δ local/spectral | Δ spectral/local std |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for e in entries:
            cells = [_cell(e.metrics[m]) for m in _TABLE_METRICS]
            cells += ["—" if e.vs_baseline is None else _cell(e.vs_baseline[m]) for m in _DELTA_METRICS]
            lines.append(f"| {e.strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Bars per model and strategy, mean ± 95% CI over seeds: one row per input, one panel per loss for the
    gradient ratio, and one for the branch-std ratio (the forward pass, the same under every loss)."""
    report = Report.from_json_dict(record)
    cfg = report.config
    plt = pyplot()
    panels = [("grad_ratio_local_over_spectral", loss) for loss in cfg.losses]
    panels.append(("branch_std_ratio_spectral_over_local", cfg.losses[0]))
    fig, axes = plt.subplots(
        len(cfg.inputs),
        len(panels),
        figsize=(4.2 * len(panels), 3.6 * len(cfg.inputs) + 0.8),
        squeeze=False,
        layout="constrained",
    )
    by_key = {(e.model, e.input, e.loss, e.strategy): e for e in report.summary}
    for row, inp in enumerate(cfg.inputs):
        for col, (metric, loss) in enumerate(panels):
            ax = axes[row][col]
            series = []
            for strategy in cfg.strategies:
                stats = [by_key[(m, inp, loss, strategy)].metrics[metric] for m in cfg.models]
                series.append((strategy, [s.mean for s in stats], [s.ci95 or 0.0 for s in stats]))
            bar_groups(ax, cfg.models, series)
            ax.set_xlabel("model")
            if metric == "grad_ratio_local_over_spectral":
                ax.set_title(f"gradient ratio local/spectral\n{inp} input, loss {loss}", fontsize=9)
                ax.set_ylabel("local/spectral mean |∂L/∂w| (ratio)")
            else:
                ax.set_title(f"branch std ratio spectral/local\n{inp} input, forward pass", fontsize=9)
                ax.set_ylabel("spectral/local branch std (ratio)")
    one_legend(fig, axes.flat, "strategy")
    return fig


def compare(new: Report, old: Report) -> str:
    """Per strategy and setting: new mean, old mean and their difference for the summary metrics."""
    old_index = {(e.model, e.input, e.loss, e.strategy): e for e in old.summary}
    lines = [
        f"{'model':9} {'input':11} {'loss':17} {'strategy':16} {'metric':36} {'new':>10} {'old':>10} {'delta':>10}"
    ]
    matched = 0
    for e in new.summary:
        before = old_index.get((e.model, e.input, e.loss, e.strategy))
        if before is None:
            continue
        matched += 1
        for metric in ("grad_ratio_local_over_spectral", "rel_grad_spectral", "branch_std_ratio_spectral_over_local"):
            a, b = e.metrics[metric].mean, before.metrics[metric].mean
            lines.append(
                f"{e.model:9} {e.input:11} {e.loss:17} {e.strategy:16} {metric:36} {a:10.4g} {b:10.4g} {a - b:+10.3g}"
            )
    if not matched:
        lines.append("(no (model, input, loss, strategy) in common with the earlier run)")
    return "\n".join(lines)


def quick(strategy: str, cfg: SweepConfig, device: torch.device) -> str:
    """The reference debug printout: one block, one seed, loss y.mean()."""
    one = cfg.model_copy(update={"blocks": 1, "seeds": cfg.seeds[:1]})
    model, blocks = build_model("blocks", strategy, one.seeds[0], one)
    model = model.to(device)
    x = make_input("white-noise", "blocks", one.seeds[0], one).to(device)
    model(x).mean().backward()
    block = blocks[0]
    out = [
        f"strategy {strategy}: one PtychoBlock, width {cfg.width}, {cfg.modes} modes, {cfg.size}×{cfg.size}, "
        f"seed {one.seeds[0]}, loss y.mean()"
    ]
    for label, w in (("spectral", block.spectral.weights), ("local", block.local_conv.weight)):
        v, g = w.detach().abs(), w.grad.abs()
        out.append(
            f"  {label:8} weight: mean {w.detach().mean().item():+.3e}  std {w.detach().std().item():.3e}  "
            f"|mean| {v.mean().item():.3e}"
        )
        out.append(
            f"  {label:8} grad:   mean {g.mean().item():.3e}  std {g.std().item():.3e}  max {g.max().item():.3e}"
        )
    ratio = block.local_conv.weight.grad.abs().mean() / block.spectral.weights.grad.abs().mean()
    out.append(f"  local/spectral mean |grad| ratio: {ratio.item():.2f}")
    return "\n".join(out)


# --- command line ------------------------------------------------------------------------------

QUICK_IGNORES = ("--seeds", "--models", "--inputs", "--losses", "--blocks", "--baseline", "--compare",
                 "--output-dir", "--overwrite", "--resume", "--jobs", "--tracking-uri", "--experiment",
                 "--executor", "--executor-config")


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__, resumable=True)
    p.add_argument("--strategies", default=None, help="comma-separated (default: every registered one)")
    p.add_argument("--seeds", type=bounded_int(1, 1000), default=5, help="number of seeds, 0…n-1")
    p.add_argument(
        "--models",
        type=comma_separated(MODELS, "models"),
        default=",".join(DEFAULT_MODELS),
        help=f"comma-separated from {', '.join(MODELS)}; generator = the fno architecture",
    )
    p.add_argument(
        "--inputs",
        type=comma_separated(INPUTS, "inputs"),
        default=",".join(INPUTS),
        help=f"comma-separated from {', '.join(INPUTS)}",
    )
    p.add_argument(
        "--losses",
        type=comma_separated(LOSSES, "losses"),
        default=",".join(LOSSES),
        help=f"probe losses, comma-separated from {', '.join(LOSSES)}",
    )
    p.add_argument("--width", type=bounded_int(1, 1024), default=32, help="channels")
    p.add_argument("--blocks", type=bounded_int(1, 64), default=4, help="spectral blocks")
    p.add_argument("--modes", type=bounded_int(1, 512), default=12, help="kept modes, at most size // 2")
    p.add_argument("--size", type=bounded_int(2, 1024), default=64, help="input H = W, even")
    p.add_argument("--batch", type=bounded_int(1, 1024), default=4, help="batch size")
    p.add_argument("--baseline", default="legacy", help="strategy the paired differences are taken against")
    p.add_argument(
        "--backend",
        choices=("fallback", "neuralop"),
        default="fallback",
        help="2-D spectral layer: fallback = this package's SpectralConv2d; ffno's factorized layer "
        "has one implementation",
    )
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="dtype of models and inputs")
    p.add_argument("--compare", type=Path, default=None, metavar="OLD.json", help="print deltas against an earlier run")
    p.add_argument("--quick", action="store_true", help="one block, one seed: the reference debug printout")
    p.add_argument("--jobs", type=bounded_int(1, os.cpu_count() or 1), default=None, help=JOBS_HELP)
    add_executor_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_executor_flags(args)
    if args.quick:
        refuse_unused(parser, args, QUICK_IGNORES, "with --quick (it prints one block of one seed, writes nothing)")
    device = resolve_device(args.device)
    # a worker call measures one (model, input, seed): never more workers than those
    units = 1 if args.quick else len(args.models) * len(args.inputs) * args.seeds
    workers = min(args.jobs or default_workers(args.threads, device.type), units)
    with command_threads(args.threads, quiet=workers > 1):
        return _main(args, device, workers, argv)


def _main(args: argparse.Namespace, device: torch.device, workers: int, argv: Sequence[str] | None) -> int:
    if args.size % 2:
        raise UsageError(f"--size must be even (the simulated diffraction patterns are N × N, N even); got {args.size}")
    if args.modes > args.size // 2:
        raise UsageError(f"--modes must be <= size // 2 = {args.size // 2}; got {args.modes}")
    if "hybrid" in args.models and args.size % 2 ** (args.blocks - 1):
        raise UsageError(
            f"--models hybrid with --blocks {args.blocks} needs --size divisible by "
            f"{2 ** (args.blocks - 1)}; got {args.size}"
        )
    strategies, baseline = select_strategies(args.strategies, args.baseline, include_baseline=not args.quick)
    cfg = SweepConfig(
        strategies=strategies,
        seeds=list(range(args.seeds)),
        models=args.models,
        inputs=args.inputs,
        losses=args.losses,
        width=args.width,
        blocks=args.blocks,
        modes=args.modes,
        size=args.size,
        batch=args.batch,
        baseline=baseline,
        backend=args.backend,
        dtype=args.dtype,
        workers=workers,
    )
    if args.quick:
        announce_threads()
        for strategy in strategies:
            print(quick(strategy, cfg, device))
        return 0
    old = None
    if args.compare is not None:
        try:
            old = Report.from_json_dict(json.loads(args.compare.read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"--compare {str(args.compare)!r}: cannot read an earlier gradient-ratios JSON: {exc}"
            ) from exc
    arguments = run_arguments(args)
    previous = prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite, resume=args.resume,
                                  arguments=arguments)
    report = run_sweep(cfg, device, args.output_dir, show_progress=not args.no_progress, argv=argv,
                       previous=previous, arguments=arguments, executor=args.executor,
                       executor_config=args.executor_config)
    record = report.to_json_dict()
    publish(args.output_dir, STEM, record, markdown_report(record), figure,
            tracking=benchmark_tracking(args, STEM))
    if old is not None:
        print(compare(report, old))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
