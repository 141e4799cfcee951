"""What a trained generator costs a new scan: its forward passes over every pattern, and the stitch of
the predicted patches into the object, timed apart and together.

Per architecture and batch size (``--batches``), one scan of a square grid (``--object-size``, ``--step``)
of N × N patterns, predicted a batch a forward pass in eval mode without gradients
(``ptycho_torch.training.predict_patches``' work), then stitched by ``ptycho_torch.evaluation.stitch`` on
the same device; every architecture and batch size interleaved repeat by repeat, medians reported. The
weights do not change the time: the generator is timed as built. The reference reports 6,100 patterns/s
at N = 64 on one GPU.

    python -m benchmarks.generator_inference --device cuda --N 64
    python -m benchmarks.generator_inference --N 32 --object-size 64 --step 8 --batches 8,256 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from ptycho_torch.evaluation import stitch, stitch_weight
from ptycho_torch.generators.config import ARCHITECTURES, GeneratorConfig, build_generator
from ptycho_torch.physics import to_complex_object
from ptycho_torch.simulation.probe import disk_probe

from .machinery.common import (
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    comma_numbers,
    comma_separated,
    command_threads,
    environment,
    markdown_header,
    prepare_output_dir,
    publish,
    resolve_device,
    run_cli,
)
from .machinery.figures import bar_groups, pyplot

SCHEMA = "spectral-init/generator-inference/1"
MODULE, STEM = "benchmarks.generator_inference", "generator_inference"
PARTS = ("forward", "stitch")
REFERENCE_PATTERNS_PER_SECOND = 6100  # the reference's inference at N = 64 on one GPU


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def grid_positions(object_size: int, N: int, step: int) -> list[tuple[int, int]]:
    """The top-left corners of a square grid of ``step`` px on an ``object_size`` canvas."""
    starts = range(0, object_size - N + 1, step)
    return [(row, col) for row in starts for col in starts]


@torch.no_grad()
def time_scan(model: nn.Module, patterns: torch.Tensor, positions: list[tuple[int, int]], canvas: int,
              weight: torch.Tensor, batch: int, device: torch.device) -> dict[str, float]:
    """Seconds of the forward passes over ``patterns`` (P, 1, N, N) and of the stitch of their patches."""
    _synchronize(device)
    start = time.perf_counter()
    patches = torch.cat([to_complex_object(model(patterns[i:i + batch])) for i in range(0, len(patterns), batch)])
    _synchronize(device)
    forward = time.perf_counter() - start
    stitch(patches, positions, canvas, weight)
    _synchronize(device)
    return {"forward": forward, "stitch": time.perf_counter() - start - forward}


def run(args: argparse.Namespace, device: torch.device, results: list[dict[str, Any]]) -> None:
    """Every architecture's and batch size's medians into ``results``, interleaved repeat by repeat."""
    positions = grid_positions(args.object_size, args.N, args.step)
    patterns = torch.rand(len(positions), 1, args.N, args.N, generator=torch.Generator().manual_seed(0)).to(device)
    weight = stitch_weight(disk_probe(args.N)).to(device)
    models = {}
    for architecture in args.architectures:
        config = GeneratorConfig(architecture=architecture, N=args.N, fno_width=args.width, fno_modes=args.modes,
                                 fno_blocks=args.blocks)
        models[architecture] = build_generator(config).to(device).eval()
    times: dict[tuple[str, int], list[dict[str, float]]] = {(a, b): [] for a in models for b in args.batches}
    for repeat in range(args.warmup + args.repeats):
        for architecture, batch in times:  # interleaved: load drifts hit every model alike
            measured = time_scan(models[architecture], patterns, positions, args.object_size, weight, batch, device)
            if repeat >= args.warmup:
                times[(architecture, batch)].append(measured)
    for (architecture, batch), measured in times.items():
        medians = {part: statistics.median(m[part] for m in measured) for part in PARTS}
        total = statistics.median(m["forward"] + m["stitch"] for m in measured)
        results.append({"architecture": architecture, "batch": batch, "patterns": len(positions),
                        "parameters": sum(p.numel() for p in models[architecture].parameters()),
                        "median_seconds": {**medians, "total": total},
                        "patterns_per_second": len(positions) / total,
                        "forward_patterns_per_second": len(positions) / medians["forward"],
                        "max_over_min": max(m["forward"] + m["stitch"] for m in measured)
                        / min(m["forward"] + m["stitch"] for m in measured)})


def markdown_report(record: dict[str, Any]) -> str:
    c = record["config"]
    lines = [*markdown_header("A trained generator's cost per scan: forward passes and stitch", record["environment"]),
             f"One scan: {c['object_size']} px object, grid step {c['step']} px, N = {c['N']} "
             f"({record['results'][0]['patterns'] if record['results'] else '?'} patterns); "
             f"width {c['width']}, {c['modes']} modes, {c['blocks']} blocks; medians of {c['repeats']} interleaved "
             f"repeats after {c['warmup']} warm-up. The reference: {REFERENCE_PATTERNS_PER_SECOND:,} patterns/s at "
             "N = 64 on one GPU.", "",
             "| architecture | batch | forward (s) | stitch (s) | per scan (s) | patterns/s "
             "| patterns/s, forward alone |",
             "|---|---|---|---|---|---|---|"]
    for r in record["results"]:
        m = r["median_seconds"]
        lines.append(f"| {r['architecture']} | {r['batch']} | {m['forward']:.4g} | {m['stitch']:.4g} "
                     f"| {m['total']:.4g} | "
                     f"{r['patterns_per_second']:,.0f} | {r['forward_patterns_per_second']:,.0f} |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Patterns a second per architecture and batch size, with and without the stitch."""
    plt = pyplot()
    results = record["results"]
    fig, ax = plt.subplots(figsize=(1.6 * len(results) + 3.5, 3.8), layout="constrained")
    bar_groups(ax, [f"{r['architecture']}, batch {r['batch']}" for r in results],
               [("forward + stitch", [r["patterns_per_second"] for r in results], None),
                ("forward alone", [r["forward_patterns_per_second"] for r in results], None)], log=False)
    ax.set_xlabel("architecture, patterns a forward pass")
    ax.set_ylabel("patterns per second (median)")
    c = record["config"]
    ax.set_title(f"N = {c['N']}, {results[0]['patterns'] if results else '?'} patterns a scan, width {c['width']}",
                 fontsize=9)
    ax.legend(title="timed", fontsize=8, title_fontsize=8)
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--architectures", type=comma_separated(ARCHITECTURES, "architectures"), default="ffno,fno",
                   help=f"comma-separated: {', '.join(ARCHITECTURES)} (default: ffno,fno)")
    p.add_argument("--N", type=bounded_int(2, 1024), default=64, help="patch size in pixels, even (default: 64)")
    p.add_argument("--object-size", type=bounded_int(2, 16384), default=None,
                   help="the scanned object's side in px (default: 4·N)")
    p.add_argument("--step", type=bounded_int(1, 16384), default=None, help="grid step in px (default: N // 4)")
    p.add_argument("--batches", type=comma_numbers(bounded_int(1, 65536)), default=(256,),
                   help="patterns a forward pass, a run each, e.g. 8,256 (default: 256)")
    p.add_argument("--width", type=bounded_int(1, 1024), default=32, help="channels (default: 32)")
    p.add_argument("--modes", type=bounded_int(1, 512), default=12, help="retained modes per corner (default: 12)")
    p.add_argument("--blocks", type=bounded_int(1, 64), default=4, help="spectral blocks (default: 4)")
    p.add_argument("--repeats", type=bounded_int(1, 10_000), default=10, help="timed scans a model (default: 10)")
    p.add_argument("--warmup", type=bounded_int(0, 1000), default=2, help="untimed scans first (default: 2)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.object_size = args.object_size or 4 * args.N
    args.step = args.step or max(1, args.N // 4)
    if args.N % 2 or args.modes > args.N // 2:
        raise UsageError(f"--N must be even and --modes at most N // 2; got N = {args.N}, modes = {args.modes}")
    if args.object_size < args.N:
        raise UsageError(f"--object-size must be at least --N = {args.N}; got {args.object_size}")
    patterns = len(grid_positions(args.object_size, args.N, args.step))
    if min(max(args.batches), patterns) * args.width * args.N ** 2 > 2**31:
        raise UsageError("--batches × --width × --N² must be at most 2**31 activations a layer: lower --batches")
    with command_threads(args.threads):
        device = resolve_device(args.device)
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        start, results = time.perf_counter(), []

        def record() -> dict[str, Any]:
            return {"schema": SCHEMA, "environment": environment(device, MODULE, argv),
                    "config": {k: getattr(args, k) for k in ("architectures", "N", "object_size", "step", "batches",
                                                             "width", "modes", "blocks", "repeats", "warmup")},
                    "results": results, "timings": {"total_seconds": time.perf_counter() - start}}

        run(args, device, results)  # interrupted, nothing is written: no model's medians are partial
        full = record()
        publish(args.output_dir, STEM, full, markdown_report(full), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
