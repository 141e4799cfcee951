"""What reading a large scan file and stitching its object costs: peak memory beyond the data, and seconds.

A scan of ``--patterns`` diffraction patterns of ``--N``² px on a square grid (step ``--step`` px, a
random object, a disk probe, amplitudes |FFT(probe · object)|) is written in the reference's ``.npz``
format; then, each repeat in a fresh process (so that memory freed earlier and kept by the C allocator
cannot hide a peak), the file is read and checked (``read_scan_file``, which extracts the true patches
from ``objectGuess``), turned into a dataset (``dataset_from_scan``) and its object stitched from the
true patches (``stitch_objects``). Recorded per stage: seconds, and the growth of the peak resident set
(Linux's VmHWM, reset before the stage) beyond what the stage must hold — the data it reads and makes:
the amplitudes (float32), the true patches (complex64), the dataset's counts (float32), the stitched
object and its coverage.

    python -m benchmarks.scan_memory                      # 10,000 patterns of 64² (≈ 1 min)
    python -m benchmarks.scan_memory --patterns 1000 --repeats 1
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .machinery.common import (
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    command_threads,
    environment,
    fresh_process_json,
    markdown_header,
    prepare_output_dir,
    publish,
    refuse_unused,
    run_cli,
)
from .machinery.figures import pyplot

SCHEMA = "spectral-init/scan-memory/1"
MODULE, STEM = "benchmarks.scan_memory", "scan_memory"
STAGES = ("read", "dataset", "stitch")
GIB = 2**30

# The measured process: each stage's seconds, and its peak resident set's growth over the stage's start.
CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from ptycho_torch.data.scan_files import read_scan_file
from ptycho_torch.evaluation import stitch_objects
from ptycho_torch.data.measured import dataset_from_scan

def kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

def stage(run):
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak resident set to the current one
    base, start = kib("VmRSS"), time.perf_counter()
    value = run()
    return value, {"seconds": time.perf_counter() - start, "peak_growth_bytes": 1024 * (kib("VmHWM") - base)}

out = {}
scan, out["read"] = stage(lambda: read_scan_file(sys.argv[1]))
data, out["dataset"] = stage(lambda: dataset_from_scan(scan, 1.0))
_, out["stitch"] = stage(lambda: stitch_objects(data.objects, data))
print(json.dumps(out))
"""


def write_scan(path: Path, patterns: int, n: int, step: int) -> dict[str, int]:
    """A grid scan of ``patterns`` (a square number) positions written to ``path``; its sizes."""
    from ptycho_torch.data.scan_files import write_scan_file
    from ptycho_torch.scan.placement import PatchPlacement
    from ptycho_torch.simulation import disk_probe

    side = math.isqrt(patterns)
    canvas = (side - 1) * step + n
    generator = torch.Generator().manual_seed(0)
    obj = torch.polar(0.5 + 0.5 * torch.rand(canvas, canvas, generator=generator),
                      torch.rand(canvas, canvas, generator=generator)).to(torch.complex64)
    probe = disk_probe(n).to(torch.complex64)
    positions = [(float(r * step), float(c * step)) for r in range(side) for c in range(side)]
    placement = PatchPlacement(positions, canvas, n)
    chunk = 1000  # patches at a time: the far fields of every pattern at once would double the memory
    amplitudes = torch.cat([torch.fft.fftshift(torch.fft.fft2(probe * placement.extract(obj)[start:start + chunk],
                                                              norm="ortho"), dim=(-2, -1)).abs()
                            for start in range(0, patterns, chunk)])
    write_scan_file(path, amplitudes, probe, positions, object_truth=obj)
    return {"canvas": canvas, "file_bytes": path.stat().st_size}


def held_bytes(patterns: int, n: int, canvas: int) -> dict[str, int]:
    """What each stage must hold at its end: its inputs' and outputs' arrays."""
    pixels = patterns * n * n
    return {"read": 4 * pixels + 8 * pixels + 8 * canvas * canvas,  # amplitudes, true patches, objectGuess
            "dataset": 4 * pixels,  # the counts (the amplitudes are shared)
            "stitch": 8 * canvas * canvas + 4 * canvas * canvas}  # the object (complex64), its coverage (float32)


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    device = torch.device("cpu")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "scan.npz"
        sizes = write_scan(path, args.patterns, args.N, args.step)
        runs = [fresh_process_json(CHILD, str(path)) for _ in range(args.repeats)]
    held = held_bytes(args.patterns, args.N, sizes["canvas"])
    summary = {}
    for name in STAGES:
        beyond = [r[name]["peak_growth_bytes"] - held[name] for r in runs]
        summary[name] = {"seconds_median": statistics.median(r[name]["seconds"] for r in runs),
                         "peak_growth_bytes_median": statistics.median(r[name]["peak_growth_bytes"] for r in runs),
                         "held_bytes": held[name], "beyond_data_bytes_median": statistics.median(beyond),
                         "beyond_data_bytes_max": max(beyond)}
    return {"schema": SCHEMA, "environment": environment(device, MODULE, argv),
            "config": {"patterns": args.patterns, "N": args.N, "step": args.step, "repeats": args.repeats, **sizes},
            "runs": runs, "summary": summary, "timings": {"total_seconds": time.perf_counter() - start}}


def markdown_report(record: dict[str, Any]) -> str:
    cfg = record["config"]
    lines = [
        *markdown_header("Reading a large scan and stitching its object: memory and time", record["environment"]),
        f"{cfg['patterns']:,} patterns of {cfg['N']}² px on a square grid of step {cfg['step']} px "
        f"({cfg['canvas']}² px object; file {cfg['file_bytes'] / 2**20:.0f} MiB); {cfg['repeats']} fresh "
        "process(es), one torch thread. Peak growth: the peak resident set's growth during the stage; beyond "
        "the data: less what the stage must hold (its arrays).",
        "",
        "| stage | seconds (median) | peak growth (MiB) | the data it holds (MiB) "
        "| beyond the data (MiB, median / max) |",
        "|---|---|---|---|---|",
    ]
    for name, s in record["summary"].items():
        lines.append(f"| {name} | {s['seconds_median']:.2f} | {s['peak_growth_bytes_median'] / 2**20:.0f} "
                     f"| {s['held_bytes'] / 2**20:.0f} | {s['beyond_data_bytes_median'] / 2**20:.0f} / "
                     f"{s['beyond_data_bytes_max'] / 2**20:.0f} |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Per stage: the peak growth, split into the data it holds and what lies beyond."""
    plt = pyplot()
    stages = list(record["summary"])
    held = [record["summary"][s]["held_bytes"] / 2**20 for s in stages]
    beyond = [max(0.0, record["summary"][s]["beyond_data_bytes_median"] / 2**20) for s in stages]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    ax.bar(stages, held, color="C0", label="the data the stage holds")
    ax.bar(stages, beyond, bottom=held, color="C3", label="beyond the data (median)")
    ax.axhline(1024, color="gray", linestyle=":", linewidth=1, label="1 GiB")
    ax.set_xlabel("stage (each measured from its own start)")
    ax.set_ylabel("peak resident growth (MiB)")
    ax.legend(fontsize=8)
    cfg = record["config"]
    commit = record["environment"].get("git_commit") or "unknown"
    ax.set_title(f"{cfg['patterns']:,} patterns of {cfg['N']}²: read, dataset, stitch (code {commit[:7]})",
                 fontsize=9)
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--patterns", type=bounded_int(4, 1_000_000), default=10_000,
                   help="diffraction patterns (a square number: a square grid)")
    p.add_argument("--N", type=bounded_int(4, 1024), default=64, help="pattern side in px (even)")
    p.add_argument("--step", type=bounded_int(1, 1024), default=8, help="scan step in px")
    p.add_argument("--repeats", type=bounded_int(1, 100), default=3, help="fresh processes measured")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    refuse_unused(parser, args, ("--threads",), "here (each measured process runs one thread)")
    if args.device == "cuda":
        raise UsageError("--device cuda: this measures the CPU's resident memory of reading and stitching")
    if not sys.platform.startswith("linux"):
        raise UsageError("the peak resident set is read from Linux's /proc: this runs on Linux only")
    if math.isqrt(args.patterns) ** 2 != args.patterns:
        raise UsageError(f"--patterns must be a square number (a square grid); got {args.patterns}")
    if args.N % 2:
        raise UsageError(f"--N must be even; got {args.N}")
    with command_threads(1, quiet=True):
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args, argv)
        publish(args.output_dir, STEM, record, markdown_report(record), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
