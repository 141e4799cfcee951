"""Signal propagation through depth, per init strategy and for data calibration.

For each model (``plain-relu``, ``plain-gelu``: a ``PlainFNOStack``, h ← act(spectral(h)) with no skip
and no normalization; ``plain-relu-1d``, ``plain-relu-3d``: the same with neuraloperator's 1-D and 3-D
``SpectralConv`` (no bias), on inputs of ``--size-1d`` and ``--size-3d`` points per axis with ``--modes-1d``
and ``--modes-3d`` (its ``n_modes``); ``blocks``: a stack of PtychoBlocks), each depth and seed, and each registered
strategy plus ``calibrated`` (sqrt_in, then ``calibrate_`` on the input batch: unit output second moment
for the plain stacks, spectral branch balanced with the local one for the blocks), one forward and one
backward pass on white noise with a fixed random-projection loss record per layer: the second moment of
the spectral layer's output (plain; block output for ``blocks``), the backpropagated signal ‖∂L/∂h_l‖
at each layer's output, and the gradient norm of each spectral weight. ``edge-of-chaos`` gets the
model's resolution and activation as its parameters. Summaries: the forward ratio E[z_L²]/E[z_2²] and
the backward ratio ‖∂L/∂h_2‖/‖∂L/∂h_L‖: median, range, and mean ± 95% CI of log10 over seeds; the forward
ratio's mean and the backward's root mean square, beside what the mean field expects of them on the ReLU
stacks (``spectral_init.analysis.stack_profile.relu_stack_profile`` at each strategy's E|w|²). On a CPU
the (model, depth, seed) units go to ``--jobs`` worker processes of one torch thread each (or to a
cluster: ``--executor``, docs/cluster.md), with the numbers of one process.

    python -m benchmarks.signal_propagation
    python -m benchmarks.signal_propagation --models plain-relu --depths 32 --seeds 3
"""

# Over 400 lines because a study is one module: its flags, its runs, its statistics, its record's
# schema, Markdown report and figure together (benchmarks.replot finds a study by those names in one
# module, and replots a record from it without a list); what studies share is in machinery/.

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ptycho_torch.diagnostics import local_branch_target
from ptycho_torch.generators import PlainFNOStack, PtychoBlock
from spectral_init import calibrate_, get_strategy, initialize_, make_initializer
from spectral_init.adapters.discovery import find_spectral_weights
from spectral_init.analysis.stack_profile import relu_stack_profile
from spectral_init.initialize_model import spectral_layer_kinds
from spectral_init.strategies.scaling import DISTRIBUTION_LABELS

from .machinery.common import (
    CALIBRATED,
    Progress,
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    command_threads,
    environment,
    keep_finished_runs,
    markdown_header,
    prepare_output_dir,
    publish,
    resolve_device,
    run_cli,
    select_strategies,
    strategy_spec,
)
from .machinery.figures import merged_series, one_legend, pyplot, style
from .machinery.stats import mean_ci
from .machinery.workers import (
    JOBS_HELP,
    add_executor_arguments,
    check_executor_flags,
    default_workers,
    results_of,
)

SCHEMA = "spectral-init/signal-propagation/1"
MODULE, STEM = "benchmarks.signal_propagation", "signal_propagation"
MODELS = ("plain-relu", "plain-gelu", "plain-relu-1d", "plain-relu-3d", "blocks")
ACTIVATION_OF = {"plain-relu": "relu", "plain-gelu": "gelu", "plain-relu-1d": "relu", "plain-relu-3d": "relu",
                 "blocks": "gelu"}
DIMS_OF = {"plain-relu-1d": 1, "plain-relu-3d": 3}  # the others are 2-D
RELU_STACKS = ("plain-relu", "plain-relu-1d", "plain-relu-3d")  # the stacks relu_stack_profile models
ZERO_MEAN_DRAW = DISTRIBUTION_LABELS["complex_normal"]  # the draws relu_stack_profile models


class NeuralopPlainStack(nn.Module):
    """``depth`` layers h ← act(SpectralConv(h)) of neuraloperator's d-D layer, no bias, no skip: a
    ``PlainFNOStack`` in 1-D or 3-D. The layers are drawn by neuraloperator, then re-drawn by ``initializer``."""

    def __init__(self, dims: int, channels: int, depth: int, n_modes: int, activation: str, initializer: Any) -> None:
        super().__init__()
        from neuralop.layers.spectral_convolution import SpectralConv

        self.layers = nn.ModuleList(SpectralConv(channels, channels, (n_modes,) * dims, bias=False)
                                    for _ in range(depth))
        self.act = {"relu": nn.ReLU, "gelu": nn.GELU}[activation]()
        # a calibrated variant is calibrated by the sweep, on its input: here only its draw
        initialize_(self.layers, initializer.settings.model_copy(update={"calibrate": False}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return x


def input_shape(model: str, cfg: dict[str, Any]) -> tuple[int, ...]:
    """A model's white-noise input: (batch, width, size…) in its spatial rank."""
    dims = DIMS_OF.get(model, 2)
    size = {1: cfg.get("size_1d"), 2: cfg["size"], 3: cfg.get("size_3d")}[dims]
    return (cfg["batch"], cfg["width"], *(size,) * dims)


def build(model: str, variant: str, depth: int, seed: int, cfg: dict[str, Any]) -> tuple[nn.Module, list[nn.Module]]:
    """The model and, in forward order, the modules whose outputs are the layers' signals."""
    torch.manual_seed(seed)  # the blocks' local convs: the same for every variant at one seed
    # the calibrated variant's flag does nothing at build time: it is calibrated below, on this input
    size = input_shape(model, cfg)[-1]
    initializer = make_initializer(strategy_spec(variant, seed, size, ACTIVATION_OF[model]))
    width, modes = cfg["width"], cfg["modes"]
    if model in DIMS_OF:
        dims = DIMS_OF[model]
        stack = NeuralopPlainStack(dims, width, depth, cfg[f"modes_{dims}d"], ACTIVATION_OF[model], initializer)
        return stack, list(stack.layers)
    if model == "blocks":
        net = nn.Sequential(*(PtychoBlock(width, modes, initializer, "fallback") for _ in range(depth)))
        return net, list(net)
    stack = PlainFNOStack(width, depth, modes, ACTIVATION_OF[model], initializer, "fallback")
    return stack, list(stack.layers)


def measure(net: nn.Module, layers: list[nn.Module], x: torch.Tensor, seed: int) -> dict[str, list[float]]:
    """Per layer: forward second moment, backpropagated norm at the layer's output (after the activation
    for the plain stacks), and the spectral weights' gradient norm."""
    outputs: list[torch.Tensor] = []
    signals: list[torch.Tensor] = []
    keep = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in layers]
    if isinstance(net, (PlainFNOStack, NeuralopPlainStack)):  # the backward signal: where the next layer reads it
        keep.append(net.act.register_forward_hook(lambda m, i, o: signals.append(o)))
    try:
        y = net(x)
    finally:
        for h in keep:
            h.remove()
    if not signals:
        signals = outputs
    for s in signals:
        s.retain_grad()
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(20_011 + seed), dtype=y.dtype).to(y.device)
    net.zero_grad(set_to_none=True)
    ((y * r).sum() / math.sqrt(y.numel())).backward()
    weight_grads = []
    for layer in layers:
        spectral = layer.spectral if isinstance(layer, PtychoBlock) else layer
        grads = [p.grad for p in spectral.parameters() if p.is_complex() and p.grad is not None]
        weight_grads.append(math.sqrt(sum(g.abs().double().square().sum().item() for g in grads)))
    return {
        "forward_second_moment": [o.detach().double().square().mean().item() for o in outputs],
        "backward_norm": [s.grad.double().norm().item() if s.grad is not None else 0.0 for s in signals],
        "weight_grad_norm": weight_grads,
    }


def ratios(run: dict[str, list[float]]) -> tuple[float, float]:
    """Forward layer L / layer 2 and backward layer 2 / layer L (layer 1 when the depth is 1)."""
    f, b = run["forward_second_moment"], run["backward_norm"]
    i = min(1, len(f) - 1)
    # a signal that underflowed float32 is 0; the floor keeps the ratio finite (and JSON-valid)
    return f[-1] / max(f[i], 1e-300), b[i] / max(b[-1], 1e-300)


@dataclass(frozen=True)
class Unit:
    """One model, depth and seed, measured under every variant in turn: the work of one worker call."""

    model: str
    depth: int
    seed: int
    cfg: dict[str, Any]
    device: str

    @property
    def key(self) -> tuple[str, int, int]:
        return self.model, self.depth, self.seed


def measure_unit(unit: Unit) -> tuple[Unit, list[dict[str, Any]], dict[str, int]]:
    """The runs of ``unit`` (variant by variant, interleaved within a seed so that load drifts hit them
    alike) and its model's spectral layer kinds."""
    cfg, device = unit.cfg, torch.device(unit.device)
    noise = torch.Generator().manual_seed(10_007 + unit.seed)
    x = torch.randn(input_shape(unit.model, cfg), generator=noise).to(device)
    runs, kinds = [], {}
    for variant in cfg["variants"]:
        net, layers = build(unit.model, variant, unit.depth, unit.seed, cfg)
        kinds = kinds or spectral_layer_kinds(net)  # the same layers for every variant
        net = net.to(device)
        calibration = None
        if variant == CALIBRATED:
            target = local_branch_target(net) if unit.model == "blocks" else 1.0
            calibration = [layer.scale for layer in calibrate_(net, x, target=target).layers]
        result = measure(net, layers, x, unit.seed)
        forward, backward = ratios(result)
        runs.append({"model": unit.model, "depth": unit.depth, "seed": unit.seed, "variant": variant,
                     "forward_ratio": forward, "backward_ratio": backward, "calibration_scales": calibration,
                     **result})
    return unit, runs, kinds


# Imported once by the fork server that CPU workers start from (benchmarks.machinery.workers), not by each worker.
_WORKER_PRELOAD = ("ptycho_torch.generators", "ptycho_torch.diagnostics", "spectral_init")


def run_sweep(cfg: dict[str, Any], device: torch.device, show_progress: bool,
              partial: Callable[[list[dict]], dict[str, Any]], output_dir: Path, workers: int = 1,
              executor: str = "local", executor_config: dict[str, Any] | None = None,
              ) -> tuple[list[dict], dict[str, dict[str, int]], float]:
    """The runs of every model × depth × seed × variant, measured in this process, on ``workers`` worker
    processes or on the ``executor``'s cluster (the numbers do not depend on where); the spectral layers
    each model and depth was built with; the seconds taken. On Ctrl-C the finished runs (``partial(runs)``)
    are written to ``output_dir``."""
    units = [Unit(m, d, s, cfg, str(device)) for m in cfg["models"] for d in cfg["depths"] for s in cfg["seeds"]]
    progress = Progress(len(units), "signal propagation", enabled=show_progress)
    finished: dict[tuple[str, int, int], list[dict]] = {}
    kinds: dict[str, dict[str, int]] = {}
    start = time.perf_counter()

    def runs_so_far() -> list[dict]:
        return [r for unit in units if unit.key in finished for r in finished[unit.key]]

    with keep_finished_runs(output_dir, STEM, lambda: partial(runs_so_far()), lambda: len(runs_so_far())):
        for unit, runs, layer_kinds in results_of(measure_unit, units, workers, device.type, _WORKER_PRELOAD,
                                                  executor, executor_config):
            finished[unit.key] = runs
            kinds[f"{unit.model}, depth {unit.depth}"] = layer_kinds
            progress.step(f"{unit.model} depth {unit.depth} seed {unit.seed}")
    progress.close()
    # the order of one process, whichever finished first
    ordered_kinds = {f"{m}, depth {d}": kinds[f"{m}, depth {d}"] for m in cfg["models"] for d in cfg["depths"]}
    return runs_so_far(), ordered_kinds, time.perf_counter() - start


def summarize(runs: list[dict]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["model"], run["depth"], run["variant"]), []).append(run)
    out = []
    for (model, depth, variant), group in groups.items():
        entry = {"model": model, "depth": depth, "variant": variant, "seeds": len(group)}
        for key in ("forward_ratio", "backward_ratio"):
            values = [r[key] for r in group]
            # ratios span orders of magnitude: the 95% CI is taken on log10, over seeds
            log10 = mean_ci([math.log10(max(v, 1e-300)) for v in values])
            entry[key] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                          "log10_mean": log10["mean"], "log10_ci95": log10["ci95"]}
        # what the mean field predicts: expectations of second moments (the backward ratio is one of norms)
        entry["forward_mean"] = statistics.mean(r["forward_ratio"] for r in group)
        entry["backward_rms"] = math.sqrt(statistics.mean(r["backward_ratio"] ** 2 for r in group))
        out.append(entry)
    return out


def mean_field(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Per ReLU stack, depth and strategy drawing circular (zero-mean) weights: ``relu_stack_profile``'s expected
    forward ratio and root-mean-square backward ratio (a ratio of norms, as measured), at the strategy's E|w|²
    for the stack's layer."""
    rows = []
    for model in (m for m in cfg["models"] if m in RELU_STACKS):
        size = input_shape(model, cfg)[-1]
        net, _ = build(model, "sqrt_in", 1, 0, cfg)  # only the layer's geometry is read: one for every depth
        geometry = find_spectral_weights(net)[0][0].geometry
        for variant in cfg["variants"]:
            # calibrated scales each draw by data; a draw with a mean (fno-uniform's) adds up coherently over
            # the channels, which the mean field of zero-mean weights does not model
            strategy = None if variant == CALIBRATED else get_strategy(variant)
            if strategy is None or strategy.distribution != ZERO_MEAN_DRAW:
                continue
            spec = strategy_spec(variant, 0, size, ACTIVATION_OF[model])
            try:
                moment = strategy.second_moment(geometry=geometry, gain=spec["gain"], **spec.get("params", {}))
            except (ValueError, TypeError):  # a strategy with no E|w|² for this layer: no row, as in audit
                continue
            for depth in cfg["depths"]:
                profile = relu_stack_profile(geometry, size, depth, moment)
                rows.append({"model": model, "depth": depth, "variant": variant,
                             "forward_ratio": profile.forward_ratio,
                             "backward_ratio": math.sqrt(profile.backward_ratio)})
    return rows


def _fmt(stat: dict[str, float]) -> str:
    return f"{stat['median']:.3g}"


def markdown_report(record: dict[str, Any]) -> str:
    env, cfg = record["environment"], record["config"]
    lines = [
        *markdown_header("Signal propagation through depth", env),
        f"Width {cfg['width']}, {cfg['modes']} modes, {cfg['size']}×{cfg['size']} white noise, batch {cfg['batch']}, "
        f"seeds {cfg['seeds']}"
        + (f"; 1-D: {cfg['size_1d']} points, n_modes {cfg['modes_1d']}" if "plain-relu-1d" in cfg["models"] else "")
        + (f"; 3-D: {cfg['size_3d']}³ points, n_modes {cfg['modes_3d']}" if "plain-relu-3d" in cfg["models"] else "")
        + ". Each cell: forward E[z_L²]/E[z_2²] / backward ‖∂L/∂h_2‖/‖∂L/∂h_L‖, "
        "median over seeds (1 = the signal neither shrinks nor grows); the JSON adds each ratio's range and "
        "mean ± 95% CI of log10 over seeds.",
    ]
    for model in cfg["models"]:
        lines += ["", f"## {model}", "", "| variant | " + " | ".join(f"depth {d}" for d in cfg["depths"]) + " |",
                  "|---" * (1 + len(cfg["depths"])) + "|"]
        for variant in cfg["variants"]:
            cells = []
            for depth in cfg["depths"]:
                e = next(s for s in record["summary"]
                         if (s["model"], s["depth"], s["variant"]) == (model, depth, variant))
                cells.append(f"{_fmt(e['forward_ratio'])} / {_fmt(e['backward_ratio'])}")
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines + _mean_field_section(record)) + "\n"


def _mean_field_section(record: dict[str, Any]) -> list[str]:
    """The mean field's expectations beside the measured means (records from before it have none)."""
    predicted = record.get("mean_field") or []
    if not predicted:
        return []
    cfg = record["config"]
    lines = ["", "## Mean field (ReLU stacks)", "",
             "`spectral_init.analysis.stack_profile.relu_stack_profile` (white input and output gradient, infinite "
             "width) at "
             "each strategy's E|w|², and in brackets the measured means over seeds it predicts: the forward "
             "ratio's mean / the backward ratio's root mean square. A draw scatters roughly log-normally around "
             "these, so the medians above lie lower. It models zero-mean weights: strategies whose draw has a "
             "mean (fno-uniform) are not shown."]
    for model in dict.fromkeys(row["model"] for row in predicted):
        lines += ["", f"### {model}", "", "| variant | " + " | ".join(f"depth {d}" for d in cfg["depths"]) + " |",
                  "|---" * (1 + len(cfg["depths"])) + "|"]
        for variant in dict.fromkeys(row["variant"] for row in predicted if row["model"] == model):
            cells = []
            for depth in cfg["depths"]:
                mf = next(r for r in predicted if (r["model"], r["depth"], r["variant"]) == (model, depth, variant))
                e = next(s for s in record["summary"]
                         if (s["model"], s["depth"], s["variant"]) == (model, depth, variant))
                cells.append(f"{mf['forward_ratio']:.3g} / {mf['backward_ratio']:.3g} "
                             f"({e['forward_mean']:.3g} / {e['backward_rms']:.3g})")
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def figure(record: dict[str, Any]) -> Any:
    """Per model: forward second moment and backward norm per layer at the largest depth, first seed.

    Variants whose curves are equal (sqrt_in and xavier-complex on square layers) share one line.
    """
    plt = pyplot()
    cfg = record["config"]
    depth, seed = max(cfg["depths"]), cfg["seeds"][0]
    fig, axes = plt.subplots(2, len(cfg["models"]), figsize=(5.2 * len(cfg["models"]), 8), squeeze=False,
                             layout="constrained")
    underflow = False
    rows = (("forward_second_moment", "forward E[z_l²] (input's E[x²] = 1)", "forward second moment"),
            ("backward_norm", "backward ‖∂L/∂h_l‖ (output's ≈ 1)", "backward gradient norm"))
    runs = {model: {r["variant"]: r for r in record["runs"]
                    if (r["model"], r["depth"], r["seed"]) == (model, depth, seed)} for model in cfg["models"]}
    # variants share a line only where their curves are equal in every panel, so that one name has one
    # label and one colour throughout the figure
    everywhere = [(v, [x for model in cfg["models"] for key, _, _ in rows for x in runs[model][v][key]])
                  for v in cfg["variants"]]
    groups = [(label, index) for label, _, index in merged_series(everywhere)]
    for col, model in enumerate(cfg["models"]):
        for row, (key, ylabel, metric) in enumerate(rows):
            ax = axes[row][col]
            for label, index in groups:
                values = runs[model][cfg["variants"][index]][key]
                underflow |= _plot_until_underflow(ax, values, label, style(index))
            ax.set_yscale("log")
            _clip_decades(ax)
            ax.set_xlabel("layer l")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{metric}\n{model}, depth {depth}, seed {seed}", fontsize=9)
    if underflow:  # one grey key for the marks of every colour
        axes[0][0].plot([], [], marker="v", linestyle="none", color="gray", label=UNDERFLOW_LABEL)
    one_legend(fig, axes.flat, "init")
    return fig


UNDERFLOW_LABEL = "curve ends here: float32 underflowed to 0 beyond it"
DECADES_SHOWN = 30  # below the top of a panel; curves falling further leave it at its floor


def _clip_decades(ax: Any) -> None:
    """At most DECADES_SHOWN decades on a log axis: a curve that collapses to 1e-90 would otherwise squash
    the ones worth comparing into a few pixels; it leaves the panel at the bottom edge instead."""
    low, high = ax.get_ylim()
    if high / low > 10.0**DECADES_SHOWN:
        ax.set_ylim(high / 10.0**DECADES_SHOWN, high)


def _plot_until_underflow(ax: Any, values: Sequence[float], label: str, line_style: dict[str, Any]) -> bool:
    """The curve over layers 1…; where the signal underflowed to 0 (no point on a log axis) — after the
    last layers forward, before the first ones backward — the line ends with a ▼ at its last positive
    layer, so that the end is not read as the end of the network. Returns whether it did."""
    layers = range(1, len(values) + 1)
    ax.plot(layers, [v if v > 0 else float("nan") for v in values], label=label, **line_style)
    ends = [i for i, v in enumerate(values) if v > 0
            and ((i > 0 and values[i - 1] <= 0) or (i + 1 < len(values) and values[i + 1] <= 0))]
    ax.plot([i + 1 for i in ends], [values[i] for i in ends], marker="v", markersize=7, linestyle="none",
            color=line_style["color"])
    return bool(ends)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}") from None
    if not values or any(not 1 <= v <= 256 for v in values):
        raise argparse.ArgumentTypeError(f"depths must be in [1, 256]; got {text!r}")
    return sorted(set(values))


def _models(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or any(t not in MODELS for t in items):
        raise argparse.ArgumentTypeError(f"models from {', '.join(MODELS)}; got {text!r}")
    return list(dict.fromkeys(items))


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--strategies", default=None, help="comma-separated (default: every registered one)")
    p.add_argument("--no-calibrated", action="store_true", help="leave out the calibrated variant")
    p.add_argument("--models", type=_models, default=None,
                   help=f"comma-separated from {', '.join(MODELS)} (default: all; without neuraloperator installed, "
                   "all but its 1-D and 3-D stacks, with a note)")
    p.add_argument("--depths", type=_int_list, default="4,8,16,32", help="comma-separated depths")
    p.add_argument("--seeds", type=bounded_int(1, 100), default=3, help="seeds 0…n-1")
    p.add_argument("--width", type=bounded_int(1, 512), default=32, help="channels")
    p.add_argument("--modes", type=bounded_int(1, 256), default=12, help="kept modes, at most size // 2")
    p.add_argument("--size", type=bounded_int(2, 512), default=64, help="input H = W")
    p.add_argument("--batch", type=bounded_int(1, 256), default=2, help="batch size")
    p.add_argument("--size-1d", type=bounded_int(2, 65536), default=128, help="input length of the 1-D stack")
    p.add_argument("--modes-1d", type=bounded_int(1, 65536), default=12,
                   help="neuraloperator n_modes of the 1-D stack (keeps n_modes//2 + 1 frequencies)")
    p.add_argument("--size-3d", type=bounded_int(2, 64), default=16, help="input D = H = W of the 3-D stack")
    p.add_argument("--modes-3d", type=bounded_int(1, 64), default=8, help="neuraloperator n_modes of the 3-D stack")
    p.add_argument("--jobs", type=bounded_int(1, os.cpu_count() or 1), default=None, help=JOBS_HELP)
    add_executor_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_executor_flags(args)
    if args.models is None:  # every model this installation can build: the 1-D and 3-D stacks are neuraloperator's
        args.models = [m for m in MODELS if m not in DIMS_OF or _neuraloperator_installed()]
        if len(args.models) < len(MODELS):
            print("note: neuraloperator is not installed, so the 1-D and 3-D stacks (plain-relu-1d, plain-relu-3d) "
                  "are left out; pip install -e '.[neuralop]' adds them", file=sys.stderr)
    device = resolve_device(args.device)
    # a worker call measures one (model, depth, seed): never more workers than those
    units = len(args.models) * len(args.depths) * args.seeds
    workers = min(args.jobs or default_workers(args.threads, device.type), units)
    with command_threads(args.threads, quiet=workers > 1):
        return _main(args, argv, device, workers)


def _neuraloperator_installed() -> bool:
    return importlib.util.find_spec("neuralop") is not None


def _main(args: argparse.Namespace, argv: Sequence[str] | None, device: torch.device, workers: int) -> int:
    if args.modes > args.size // 2:
        raise UsageError(f"--modes must be <= size // 2 = {args.size // 2}; got {args.modes}")
    for dims in (1, 3):
        modes, size = getattr(args, f"modes_{dims}d"), getattr(args, f"size_{dims}d")
        if f"plain-relu-{dims}d" in args.models and modes > size:
            raise UsageError(f"--modes-{dims}d must be <= --size-{dims}d = {size}; got {modes}")
    if any(m in DIMS_OF for m in args.models) and not _neuraloperator_installed():
        raise UsageError("the 1-D and 3-D stacks need neuraloperator: pip install -e '.[neuralop]'")
    strategies, _ = select_strategies(args.strategies, "sqrt_in", include_baseline=False)
    variants = strategies + ([] if args.no_calibrated else [CALIBRATED])
    prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
    cfg = {"models": args.models, "depths": args.depths, "seeds": list(range(args.seeds)), "variants": variants,
           "width": args.width, "modes": args.modes, "size": args.size, "batch": args.batch,
           "size_1d": args.size_1d, "modes_1d": args.modes_1d, "size_3d": args.size_3d, "modes_3d": args.modes_3d,
           "workers": workers}

    def partial(runs: list[dict]) -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, argv), "config": cfg, "runs": runs}

    expected = mean_field(cfg)  # before the sweep: it needs only the configuration
    runs, kinds, seconds = run_sweep(cfg, device, not args.no_progress, partial, args.output_dir, workers,
                                     args.executor, args.executor_config)
    record = {**partial(runs), "spectral_layers": kinds, "summary": summarize(runs), "mean_field": expected,
              "timings": {"total_seconds": seconds}}
    markdown = markdown_report(record)
    publish(args.output_dir, STEM, record, markdown, figure,
            tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
