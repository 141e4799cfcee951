"""E|W|² of every layer adapter's weights, as each layer draws them and after ``initialize_``.

For each spectral layer one can pip install (this package's, neuraloperator's ``SpectralConv``,
legacy ``SpectralConv1d/2d/3d`` with dense, tucker, cp and tt weights, ``SphericalConv`` where
torch_harmonics imports) and each seed: build the layer (its own init), read every spectral
weight's E|W|² over the ``xavier-complex`` target at its geometry through ``spectral_init.analysis.audit``
(reconstructed tensors for factorized weights), re-draw with ``initialize_(layer,
{"strategy": "xavier-complex", "seed": SEED_OFFSET + s})`` and read it again. (The layer is built
after ``torch.manual_seed(s)``; the offset keeps the two draws apart, since a layer whose own
init draws the same shapes in the same order from that stream would otherwise get bit-identical
weights, as tltorch's dense, tucker and cp inits do.) Values: the layer's mean ratio,
mean ± 95% CI over seeds. (The Li et al. and PhysicsNeMo layers are not on PyPI; their adapter is
checked in ``tests/spectral_init_tests/test_adapters.py`` against faithful re-implementations.)

    python -m benchmarks.adapter_init
    python -m benchmarks.adapter_init --seeds 5 --width 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from spectral_init import audit, initialize_

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

SCHEMA = "spectral-init/adapter-init/1"
MODULE, STEM = "benchmarks.adapter_init", "adapter_init"
STRATEGY = "xavier-complex"
SEED_OFFSET = 1_000_000


def layer_builders(width: int) -> dict[str, Callable[[], nn.Module]]:
    """label → a function building that layer with its own init (what imports here)."""
    from ptycho_torch.generators import FactorizedSpectralConv2d, SpectralConv2d

    builders: dict[str, Callable[[], nn.Module]] = {
        "spectral-init SpectralConv2d": lambda: SpectralConv2d(width, width, 12),
        "spectral-init FactorizedSpectralConv2d": lambda: FactorizedSpectralConv2d(width, 12),
    }
    try:
        from neuralop.layers import legacy_spectral_convolution as legacy
        from neuralop.layers.spectral_convolution import SpectralConv
    except ImportError:
        return builders
    builders["neuralop SpectralConv 2-D dense"] = lambda: SpectralConv(width, width, n_modes=(12, 12))
    for d, cls in ((1, legacy.SpectralConv1d), (2, legacy.SpectralConv2d), (3, legacy.SpectralConv3d)):
        for fact in ("dense", "tucker", "cp", "tt"):
            builders[f"neuralop legacy {d}-D {fact}"] = (
                lambda cls=cls, d=d, fact=fact: cls(width, width, n_modes=(8,) * d,
                                                    factorization=None if fact == "dense" else fact, rank=0.5))
    try:
        from neuralop.layers.spherical_convolution import SphericalConv
    except ImportError:
        return builders
    for fact in ("dense", "cp"):
        builders[f"neuralop SphericalConv {fact}"] = (
            lambda fact=fact: SphericalConv(width, width, n_modes=(12, 12), factorization=fact, rank=0.5))
    return builders


def target_ratio(layer: nn.Module) -> float:
    """The layer's mean over its spectral weights of E|W|² / the xavier-complex target."""
    return statistics.fmean(row.ratios[STRATEGY] for row in audit(layer, [STRATEGY]).rows)


def run(width: int, seeds: int, device: torch.device, show_progress: bool, argv: Sequence[str] | None,
        output_dir: Path) -> dict:
    """Every layer × seed; on Ctrl-C the finished layers are written to ``output_dir``."""
    builders = layer_builders(width)
    progress = Progress(len(builders) * seeds, "adapter init", enabled=show_progress)
    rows, start = [], time.perf_counter()
    config = {"width": width, "seeds": seeds, "strategy": STRATEGY}

    def partial() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, argv), "config": config,
                "results": rows}

    with keep_finished_runs(output_dir, STEM, partial, lambda: len(rows)):
        _measure(builders, seeds, device, rows, progress)
    return {
        "schema": SCHEMA,
        "environment": environment(device, MODULE, argv),
        "config": config,
        "results": rows,
        "timings": {"total_seconds": time.perf_counter() - start},
    }


def _measure(builders: dict[str, Callable[[], nn.Module]], seeds: int, device: torch.device, rows: list[dict],
             progress: Progress) -> None:
    for label, build in builders.items():
        own, ours, adapters = [], [], {}
        for seed in range(seeds):
            torch.manual_seed(seed)
            layer = build().to(device)
            own.append(target_ratio(layer))
            adapters = initialize_(layer, {"strategy": STRATEGY, "seed": SEED_OFFSET + seed}).per_adapter
            ours.append(target_ratio(layer))
            progress.step(label)
        rows.append({"layer": label, "adapters": adapters, "own_init": mean_ci(own), "initialize_": mean_ci(ours)})


def markdown_report(record: dict[str, Any]) -> str:
    cfg = record["config"]
    lines = [
        *markdown_header(f"Every layer adapter: E|W|² / {cfg['strategy']} target", record["environment"]),
        f"Width {cfg['width']} in and out, {cfg['seeds']} seeds; per layer the mean over its spectral weights of "
        "E|W|² (reconstructed for factorized weights) over the target at its geometry; mean ± 95% CI over seeds.",
        "",
        f"| layer | adapter (weights) | its own init | `initialize_(…, {cfg['strategy']})` |",
        "|---|---|---|---|",
    ]
    for r in record["results"]:
        adapters = ", ".join(f"{a} ({n})" for a, n in r["adapters"].items())
        own, ours = r["own_init"], r["initialize_"]
        lines.append(f"| {r['layer']} | {adapters} | {format_ci(own['mean'], own['ci95'])} | "
                     f"{format_ci(ours['mean'], ours['ci95'])} |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """E|W|²/target per layer, its own init beside initialize_'s, on a log axis (they span decades)."""
    plt = pyplot()
    rows = record["results"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2), 4.8), layout="constrained")
    series = [(label, [r[key]["mean"] for r in rows], [r[key]["ci95"] or 0.0 for r in rows])
              for key, label in (("own_init", "the layer's own init"),
                                 ("initialize_", f"initialize_(…, {record['config']['strategy']})"))]
    bar_groups(ax, [r["layer"].replace("neuralop ", "").replace("spectral-init ", "") for r in rows], series)
    ax.axhline(1.0, color="gray", linestyle=":", linewidth=1, label="target")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel(f"E|W|² / {record['config']['strategy']} target (ratio)")
    ax.set_title(f"E|W|² / {record['config']['strategy']} target per layer, mean ± 95% CI over "
                 f"{record['config']['seeds']} seeds", fontsize=9)
    one_legend(fig, [ax], "init")
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--seeds", type=bounded_int(2, 1000), default=20, help="number of seeds")
    p.add_argument("--width", type=bounded_int(1, 256), default=16, help="in and out channels of every layer")
    return p


def check_buildable(width: int) -> None:
    """Build each layer once, before any work: tltorch refuses some widths (a CP rank that rounds to 0
    divides by zero), and that should be a usage error, not a crash mid-run."""
    for label, build in layer_builders(width).items():
        try:
            build()
        except Exception as exc:  # noqa: BLE001 - whatever the layer's library raises, the message names it
            raise UsageError(f"{label} cannot be built with --width {width} ({type(exc).__name__}: {exc}); "
                             "raise --width") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with command_threads(args.threads):
        check_buildable(args.width)
        device = resolve_device(args.device)
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args.width, args.seeds, device, not args.no_progress, argv, args.output_dir)
        publish(args.output_dir, STEM, record, markdown_report(record), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
