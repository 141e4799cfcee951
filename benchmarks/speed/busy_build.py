"""How long building an ``edge-of-chaos`` model takes beside busy processes, without the library touching threads.

The library never calls ``torch.set_num_threads`` (a process-wide setting: thread policy is the
program's); its small computations keep a busy machine from stalling them another way (the
edge-of-chaos fixed point in numpy, the finite check of each draw in numpy). This measures that:
each run is a fresh Python process (so nothing is cached) that builds a ``PlainFNOStack`` whose
layers draw from ``edge-of-chaos`` and reports the seconds of that build alone. Three conditions,
interleaved round by round so that drifts in the machine's load fall on all of them alike:

- ``idle, 1 thread``: nothing else running, the process set to one torch thread (the reference);
- ``busy, 1 thread``: beside ``--spinners`` processes that each keep a core busy;
- ``busy, torch's default``: beside them, torch's own thread count (one per core).

Summary per condition: median, min and max seconds, and the median over the idle reference's.

    python -m benchmarks.busy_build
    python -m benchmarks.busy_build --rounds 3 --spinners 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from .machinery.common import (
    Progress,
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    command_threads,
    environment,
    fresh_process_json,
    keep_finished_runs,
    markdown_header,
    prepare_output_dir,
    publish,
    refuse_unused,
    run_cli,
)
from .machinery.figures import pyplot

SCHEMA = "spectral-init/busy-build/1"
MODULE, STEM = "benchmarks.busy_build", "busy_build"
SPIN = "while True: pass"
# condition: (spinners running?, torch threads in the measured process; None = torch's default)
CONDITIONS: dict[str, tuple[bool, int | None]] = {
    "idle, 1 thread": (False, 1),
    "busy, 1 thread": (True, 1),
    "busy, torch's default": (True, None),
}
REFERENCE = "idle, 1 thread"

# The measured process: its thread count is set as a program sets it, then only the build is timed.
CHILD = """
import json, sys, time
import torch
if sys.argv[1] != "default":
    torch.set_num_threads(int(sys.argv[1]))
from ptycho_torch.generators.plain_fno import PlainFNOStack
width, depth, modes, size = map(int, sys.argv[2:6])
start = time.perf_counter()
PlainFNOStack(width, depth, modes, "relu",
              spectral_init={"strategy": "edge-of-chaos", "seed": 0, "params": {"resolution": size}})
print(json.dumps({"seconds": time.perf_counter() - start, "torch_threads": torch.get_num_threads()}))
"""


def measure_once(threads: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh process's build time (and its torch thread count)."""
    return fresh_process_json(CHILD, "default" if threads is None else str(threads), str(args.width),
                              str(args.depth), str(args.modes), str(args.size), timeout=600)


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    config = {"rounds": args.rounds, "spinners": args.spinners, "width": args.width, "depth": args.depth,
              "modes": args.modes, "size": args.size, "strategy": "edge-of-chaos", "model": "PlainFNOStack (relu)",
              "conditions": list(CONDITIONS), "reference": REFERENCE}
    runs: list[dict[str, Any]] = []
    device = torch.device("cpu")

    def partial() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, argv), "config": config, "runs": runs}

    progress = Progress(args.rounds * len(CONDITIONS), "busy build", enabled=not args.no_progress)
    start = time.perf_counter()
    with keep_finished_runs(args.output_dir, STEM, partial, lambda: len(runs)):
        for round_index in range(args.rounds):
            for condition, (busy, threads) in CONDITIONS.items():
                spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.spinners if busy else 0)]
                try:
                    if spinners:
                        time.sleep(0.5)  # let them take their cores
                    measured = measure_once(threads, args)
                finally:
                    for spinner in spinners:
                        spinner.kill()
                        spinner.wait()
                runs.append({"round": round_index, "condition": condition, **measured,
                             "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None})
                progress.step(condition)
    progress.close()
    return {**partial(), "summary": summarize(runs), "timings": {"total_seconds": time.perf_counter() - start}}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per condition: median, min, max seconds, and the median over the reference condition's median."""
    seconds = {c: [r["seconds"] for r in runs if r["condition"] == c] for c in CONDITIONS}
    reference = statistics.median(seconds[REFERENCE])
    return {c: {"median": statistics.median(v), "min": min(v), "max": max(v),
                "median_over_reference": statistics.median(v) / reference, "n": len(v)}
            for c, v in seconds.items() if v}


def markdown_report(record: dict[str, Any]) -> str:
    cfg = record["config"]
    lines = [
        *markdown_header("Building an edge-of-chaos model beside busy processes", record["environment"]),
        f"{cfg['model']}: width {cfg['width']}, depth {cfg['depth']}, {cfg['modes']} modes, resolution "
        f"{cfg['size']}; each run a fresh process, {cfg['rounds']} rounds, conditions interleaved; busy = beside "
        f"{cfg['spinners']} processes each spinning on a core. Seconds of the build alone.",
        "",
        f"| condition | median s | min s | max s | median / {cfg['reference']} |",
        "|---|---|---|---|---|",
    ]
    for condition, s in record["summary"].items():
        lines.append(f"| {condition} | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} | "
                     f"{s['median_over_reference']:.2f}× |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Every run's seconds per condition (dots), the medians as bars' tops."""
    plt = pyplot()
    conditions = list(record["summary"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for i, condition in enumerate(conditions):
        values = [r["seconds"] for r in record["runs"] if r["condition"] == condition]
        ax.bar(i, record["summary"][condition]["median"], color=f"C{i}", alpha=0.35, width=0.6,
               label="median" if i == 0 else None)
        ax.plot([i] * len(values), values, "o", color=f"C{i}", markersize=4, label="one run" if i == 0 else None)
    ax.legend(fontsize=8)
    ax.set_xticks(range(len(conditions)), conditions, fontsize=8)
    ax.set_xlabel("condition (each run a fresh process)")
    ax.set_ylabel("build time (s)")
    ax.set_title(f"edge-of-chaos {record['config']['model']} build: runs (dots) and median (bar)", fontsize=9)
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--rounds", type=bounded_int(1, 100), default=7, help="fresh processes per condition")
    p.add_argument("--spinners", type=bounded_int(1, 64), default=2, help="busy processes beside the busy runs")
    p.add_argument("--width", type=bounded_int(1, 256), default=32, help="the stack's channels")
    p.add_argument("--depth", type=bounded_int(1, 64), default=4, help="the stack's spectral layers")
    p.add_argument("--modes", type=bounded_int(2, 128), default=12, help="kept modes (<= size // 2)")
    p.add_argument("--size", type=bounded_int(4, 1024), default=64, help="the resolution edge-of-chaos is drawn for")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # the measured processes set their own threads, on the CPU: these options would not reach them
    refuse_unused(parser, args, ("--threads",), "here (each measured process sets its own)")
    if args.device == "cuda":
        raise UsageError("--device cuda: this measures builds on the CPU, where a busy machine stalls them")
    if args.modes > args.size // 2:
        raise UsageError(f"--modes must be <= size // 2 = {args.size // 2}; got {args.modes}")
    with command_threads(1, quiet=True):
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args, argv)
        publish(args.output_dir, STEM, record, markdown_report(record), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
