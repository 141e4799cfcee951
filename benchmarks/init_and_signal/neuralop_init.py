"""E|w|² of neuraloperator's FNO spectral weights: its own ``init_std='auto'`` against ``initialize_``.

For each spatial dimension (1, 2, 3) and weight kind (dense, tucker, cp, tt),
and each seed: build ``neuralop.models.FNO`` (its own init), record the mean
|W|² of every reconstructed spectral weight over the target 2/(in+out) of
``xavier-complex`` (which is what ``'auto'`` aims at), then re-draw with
``spectral_init.initialize_(model, {"strategy": "xavier-complex", "seed": s})``
and record the same ratio. Values: the layer-averaged ratio, mean ± 95% CI over seeds.

    python -m benchmarks.neuralop_init
    python -m benchmarks.neuralop_init --seeds 5 --width 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from spectral_init import initialize_
from spectral_init.initialize_model import spectral_layer_kinds

from .machinery.common import (
    Progress,
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    command_threads,
    environment,
    format_ci,
    keep_finished_runs,
    markdown_header,
    prepare_output_dir,
    publish,
    resolve_device,
    run_cli,
)
from .machinery.figures import bar_groups, one_legend, pyplot
from .machinery.stats import mean_ci

SCHEMA = "spectral-init/neuralop-init/1"
MODULE, STEM = "benchmarks.neuralop_init", "neuralop_init"
KINDS = ("dense", "tucker", "cp", "tt")
MODES_BY_DIM = {1: (12,), 2: (12, 12), 3: (8, 8, 8)}


def build_fno(n_modes: tuple[int, ...], kind: str, width: int, rank: float) -> torch.nn.Module:
    from neuralop.models import FNO

    return FNO(n_modes=n_modes, hidden_channels=width, in_channels=1, out_channels=1,
               factorization=None if kind == "dense" else kind, rank=rank)


def check_buildable(width: int, rank: float) -> None:
    """Build each model once, before any work: tltorch refuses some small width × rank pairs (a CP rank
    that rounds to 0 divides by zero), and that should be a usage error, not a crash mid-run."""
    for dim, n_modes in MODES_BY_DIM.items():
        for kind in KINDS:
            try:
                build_fno(n_modes, kind, width, rank)
            except Exception as exc:  # noqa: BLE001 - whatever tltorch raises, the message names the pair
                raise UsageError(f"neuraloperator cannot build a {dim}-D {kind} FNO with --width {width} and --rank "
                                 f"{rank} ({type(exc).__name__}: {exc}); raise --width or --rank") from None


def reconstructed_ratio(model: torch.nn.Module, target: float) -> float:
    """Mean over the model's SpectralConvs of mean|W|²/target, W the reconstructed dense weight."""
    from neuralop.layers.spectral_convolution import SpectralConv

    ratios = [m.weight.to_tensor().detach().abs().square().mean().item() / target
              for m in model.modules() if isinstance(m, SpectralConv)]
    return statistics.fmean(ratios)


def run(width: int, rank: float, seeds: int, device: torch.device, show_progress: bool,
        argv: Sequence[str] | None, output_dir: Path) -> dict[str, Any]:
    """Every dimension × factorization × seed; on Ctrl-C the finished rows are written to ``output_dir``."""
    import neuralop

    target = 2 / (width + width)
    progress = Progress(len(MODES_BY_DIM) * len(KINDS) * seeds, "neuralop init", enabled=show_progress)
    rows, start = [], time.perf_counter()
    config = {"width": width, "rank": rank, "seeds": seeds, "target": target, "neuralop": neuralop.__version__}

    def record() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, argv), "config": config,
                "results": rows}

    with keep_finished_runs(output_dir, STEM, record, lambda: len(rows)):
        for dim, n_modes in MODES_BY_DIM.items():
            for kind in KINDS:
                rows.append(_measure(dim, n_modes, kind, width, rank, seeds, target, device, progress))
    return {**record(), "timings": {"total_seconds": time.perf_counter() - start}}


def _measure(dim: int, n_modes: tuple[int, ...], kind: str, width: int, rank: float, seeds: int, target: float,
             device: torch.device, progress: Progress) -> dict[str, Any]:
    """One row: the E|W|² ratio of neuraloperator's own init and after ``initialize_``, over seeds."""
    own, ours, kinds = [], [], {}
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = build_fno(n_modes, kind, width, rank).to(device)
        own.append(reconstructed_ratio(model, target))
        kinds = spectral_layer_kinds(model)
        initialize_(model, {"strategy": "xavier-complex", "seed": seed})
        ours.append(reconstructed_ratio(model, target))
        progress.step(f"{dim}-D {kind} seed {seed}")
    return {"dim": dim, "n_modes": list(n_modes), "kind": kind, "spectral_layers": kinds,
            "neuralop_auto": mean_ci(own), "initialize_": mean_ci(ours)}


def markdown_report(record: dict[str, Any]) -> str:
    env, cfg = record["environment"], record["config"]
    lines = [
        *markdown_header(
            "neuraloperator FNO spectral weights: E|w|² / (2/(in+out))", env, f"neuralop {cfg['neuralop']}"
        ),
        f"Width {cfg['width']}, rank {cfg['rank']}, {cfg['seeds']} seeds; the reconstructed weight's mean |W|² "
        "over the target, averaged over the model's 4 layers; mean ± 95% CI over seeds.",
        "",
        "| dim | modes | weight | neuralop `init_std='auto'` | `initialize_(…, xavier-complex)` |",
        "|---|---|---|---|---|",
    ]
    for r in record["results"]:
        own, ours = r["neuralop_auto"], r["initialize_"]
        lines.append(
            f"| {r['dim']}-D | {'×'.join(map(str, r['n_modes']))} | {r['kind']} | "
            f"{format_ci(own['mean'], own['ci95'])} | {format_ci(ours['mean'], ours['ci95'])} |"
        )
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Per dimension: E|W|² over the target for each weight kind, neuraloperator's init beside ours."""
    plt = pyplot()
    dims = sorted({r["dim"] for r in record["results"]})
    fig, axes = plt.subplots(1, len(dims), figsize=(4.5 * len(dims), 4.2), squeeze=False, layout="constrained")
    for ax, dim in zip(axes[0], dims):
        rows = [r for r in record["results"] if r["dim"] == dim]
        series = [
            (label, [r[key]["mean"] for r in rows], [r[key]["ci95"] or 0.0 for r in rows])
            for key, label in (
                ("neuralop_auto", "neuralop init_std='auto'"),
                ("initialize_", "initialize_(…, xavier-complex)"),
            )
        ]
        bar_groups(ax, [r["kind"] for r in rows], series)
        ax.axhline(1.0, color="gray", linestyle=":", linewidth=1, label="target")
        ax.set_xlabel("weight factorization")
        ax.set_ylabel("mean |W|² / (2/(in+out)) (ratio)")
        ax.set_title(f"E|W|² / target, {dim}-D FNO\nwidth {record['config']['width']}, rank "
                     f"{record['config']['rank']}", fontsize=9)
    one_legend(fig, axes.flat, "init")
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--seeds", type=bounded_int(1, 1000), default=20, help="number of seeds")
    p.add_argument("--width", type=bounded_int(1, 256), default=16, help="hidden channels")
    p.add_argument("--rank", type=float, default=0.5, help="factorization rank, as neuraloperator reads it (0, 1]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.rank <= 1:
        raise UsageError(f"--rank must be in (0, 1]; got {args.rank}")
    try:
        import neuralop  # noqa: F401  (the PyPI package neuraloperator)
    except ImportError:
        raise UsageError("this benchmark needs neuraloperator: pip install -e '.[neuralop]'") from None
    with command_threads(args.threads):
        check_buildable(args.width, args.rank)
        device = resolve_device(args.device)
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args.width, args.rank, args.seeds, device, not args.no_progress, argv, args.output_dir)
        publish(args.output_dir, STEM, record, markdown_report(record), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
