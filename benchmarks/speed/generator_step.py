"""Time one whole training step of a generator, eager and under ``torch.compile``.

A step is what training does per batch: generator forward, the physics loss
(diffraction of the predicted object under a disk probe against measured
amplitudes), backward, Adam. Per architecture, at a training-size batch, in one
process and interleaved step by step:

- ``eager``: the generator as built;
- ``compile``: ``torch.compile(generator)`` (the loss and optimizer stay eager);
  its first calls, which compile, are timed apart as ``compile_seconds``.

Where compilation fails (complex parameters are not supported by every backend
on every device), the error is recorded and the eager time still reported.
These numbers are what decides whether a spectral formulation, or compiling, pays
at training sizes; the layer-level times are in ``spectral_conv_speed``.

    python -m benchmarks.generator_step --device cuda
    python -m benchmarks.generator_step --architectures ffno --batch 8 --N 64 --width 32 --no-compile
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from ptycho_torch.generators.config import ARCHITECTURES, GeneratorConfig, build_generator
from ptycho_torch.physics import physics_loss, to_complex_object
from ptycho_torch.simulation.probe import disk_probe
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
    keep_finished_runs,
    markdown_header,
    prepare_output_dir,
    publish,
    resolve_device,
    run_cli,
)
from .machinery.figures import bar_groups, pyplot

SCHEMA = "spectral-init/generator-step/1"
MODULE, STEM = "benchmarks.generator_step", "generator_step"
MODES = ("eager", "compile")
UNSTEADY = 2.0  # one step this many times slower than another of the same mode: a busy machine
Step = Callable[[], float]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(net: nn.Module, params: list[nn.Parameter], batch: int, N: int, device: torch.device) -> Step:
    """A closure running one Adam step of ``net`` on a fixed random batch; returns its seconds."""
    generator = torch.Generator().manual_seed(0)
    amplitudes = torch.rand(batch, 1, N, N, generator=generator).to(device)
    probe = disk_probe(N).to(device)
    optimizer = torch.optim.Adam(params, lr=1e-3)

    def step() -> float:
        _synchronize(device)
        start = time.perf_counter()
        loss = physics_loss(to_complex_object(net(amplitudes)), probe, amplitudes, amplitudes, 1.0, "mae")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _synchronize(device)
        return time.perf_counter() - start

    return step


def bench_architecture(architecture: str, args: argparse.Namespace, device: torch.device,
                       progress: Progress) -> dict[str, Any]:
    """Median step seconds per execution mode of one generator (compiled: after its compiling calls)."""
    config = GeneratorConfig(architecture=architecture, N=args.N, fno_width=args.width, fno_modes=args.modes,
                             fno_blocks=args.blocks, spectral_init={"strategy": "sqrt_in", "seed": 0})
    model = build_generator(config).to(device)
    params = list(model.parameters())
    steps: dict[str, Step] = {"eager": make_step(model, params, args.batch, args.N, device)}
    compile_seconds: float | None = None
    compile_error: str | None = None
    if args.compile:
        # a second copy, so that both modes start from the same weights and optimizer state
        compiled_model = build_generator(config).to(device)
        compiled = make_step(torch.compile(compiled_model), list(compiled_model.parameters()), args.batch, args.N,
                             device)
        start = time.perf_counter()
        try:
            for _ in range(2):  # the first calls compile forward and backward
                compiled()
            steps["compile"] = compiled
            compile_seconds = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - any backend failure is a result to record, not a crash
            compile_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():  # interleaved: load drifts hit both modes alike
            times[name].append(step())
        progress.step(architecture)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "architecture": architecture,
        "spectral_layers": spectral_layer_kinds(model),
        "parameters": sum(p.numel() for p in params),
        "median_seconds": medians,
        "compile_over_eager": medians["compile"] / medians["eager"] if "compile" in medians else None,
        "compile_seconds": compile_seconds,
        "compile_error": compile_error,
        "eager_max_over_min": max(times["eager"]) / min(times["eager"]),
    }


def markdown_report(record: dict[str, Any]) -> str:
    c = record["config"]
    lines = [
        *markdown_header("Whole generator training step (forward, physics loss, backward, Adam)",
                         record["environment"], c["dtype"]),
        f"Batch {c['batch']}, N = {c['N']}, width {c['width']}, {c['modes']} modes, {c['blocks']} blocks; "
        f"medians of {c['repeats']} interleaved steps after {c['warmup']} warm-up "
        f"step{'' if c['warmup'] == 1 else 's'}.",
        "",
        "| architecture | spectral layers | eager (ms) | compiled (ms) | compiled/eager | compiling (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in record["results"]:
        layers = ", ".join(f"{k} ×{v}" for k, v in r["spectral_layers"].items())
        compiled = r["median_seconds"].get("compile")
        cells = [
            f"{r['median_seconds']['eager'] * 1e3:.2f}",
            "—" if compiled is None else f"{compiled * 1e3:.2f}",
            "—" if r["compile_over_eager"] is None else f"{r['compile_over_eager']:.2f}",
            "—" if r["compile_seconds"] is None else f"{r['compile_seconds']:.1f}",
        ]
        lines.append(f"| {r['architecture']} | {layers} | " + " | ".join(cells) + " |")
    unsteady = [r for r in record["results"] if r.get("eager_max_over_min", 1.0) > UNSTEADY]
    if unsteady:
        lines += ["", f"**Warning:** the eager step of {', '.join(r['architecture'] for r in unsteady)} varied more "
                  f"than {UNSTEADY:g}× between repeats: the machine was busy. The interleaved ratios still compare; "
                  "the absolute times do not."]
    errors = [r for r in record["results"] if r["compile_error"]]
    if errors:
        lines += ["", "Compilation failed for:", ""]
        lines += [f"- {r['architecture']}: `{r['compile_error']}`" for r in errors]
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Median step time per architecture, one bar per execution mode, on a linear axis from 0."""
    plt = pyplot()
    results = record["results"]
    fig, ax = plt.subplots(figsize=(1.6 * len(results) + 3, 3.8), layout="constrained")
    names = [m for m in MODES if any(m in r["median_seconds"] for r in results)]
    series = [(name, [r["median_seconds"].get(name, float("nan")) * 1e3 for r in results], None) for name in names]
    bar_groups(ax, [r["architecture"] for r in results], series, styles=[MODES.index(n) for n in names], log=False)
    ax.set_xlabel("architecture")
    ax.set_ylabel("one Adam step (ms, median)")
    ax.set_title(
        f"batch {record['config']['batch']}, N = {record['config']['N']}, width {record['config']['width']}", fontsize=9
    )
    ax.legend(title="execution", fontsize=8, title_fontsize=8)
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument(
        "--architectures",
        type=comma_separated(ARCHITECTURES, "architectures"),
        default="fno,ffno",
        help=f"comma-separated: {', '.join(ARCHITECTURES)}",
    )
    p.add_argument("--batch", type=bounded_int(1, 4096), default=32, help="patterns per step")
    p.add_argument("--N", type=bounded_int(2, 1024), default=128, help="patch size in pixels (even)")
    p.add_argument("--width", type=bounded_int(1, 1024), default=64, help="channels inside the spectral blocks")
    p.add_argument("--modes", type=bounded_int(1, 512), default=16, help="retained modes per corner")
    p.add_argument("--blocks", type=bounded_int(1, 64), default=4, help="spectral blocks")
    p.add_argument("--repeats", type=bounded_int(1, 100_000), default=20, help="timed steps per mode")
    p.add_argument("--warmup", type=bounded_int(0, 1000), default=3, help="untimed steps first (after compiling)")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time torch.compile of the generator",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.N % 2 or args.modes > args.N // 2:
        raise UsageError(f"--N must be even and --modes at most N // 2; got N={args.N}, modes={args.modes}")
    if args.batch * args.width * args.N * args.N > 2**30:
        raise UsageError("--batch × --width × --N² must be at most 2**30 activations per layer")
    with command_threads(args.threads):
        return _main(args, argv)


def _main(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    device = resolve_device(args.device)
    prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
    progress = Progress(len(args.architectures) * args.repeats, "generator step", enabled=not args.no_progress)
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    with keep_finished_runs(args.output_dir, STEM, lambda: record(args, device, argv, results), lambda: len(results)):
        for architecture in args.architectures:
            results.append(bench_architecture(architecture, args, device, progress))
    progress.close()
    full = {**record(args, device, argv, results), "timings": {"total_seconds": time.perf_counter() - start}}
    publish(args.output_dir, STEM, full, markdown_report(full), figure,
            tracking=benchmark_tracking(args, STEM))
    return 0


def record(args: argparse.Namespace, device: torch.device, argv: Sequence[str] | None,
           results: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON record of the architectures measured so far."""
    return {
        "schema": SCHEMA,
        "environment": environment(device, MODULE, argv),
        "config": {
            "architectures": args.architectures,
            "batch": args.batch,
            "N": args.N,
            "width": args.width,
            "modes": args.modes,
            "blocks": args.blocks,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "compile": args.compile,
            "dtype": "float32",
        },
        "results": results,
    }


if __name__ == "__main__":
    sys.exit(run_cli(main))
