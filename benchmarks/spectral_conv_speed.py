"""Forward+backward time of ``_FallbackSpectralConv2d`` beside neuraloperator and a bare FFT round trip.

At each shape (batch, channels, size, modes), in one process and interleaved
run by run: our layer; neuraloperator's ``SpectralConv`` keeping the same modes
(kx in [-modes, modes), ky in [0, modes); when the ``neuralop`` extra is
installed); and ``irfft2(rfft2(x))`` on the same tensor, the floor any spectral
layer pays. Reported: medians over repeats and the ratios ours/neuralop and
ours/round trip.

    python -m benchmarks.spectral_conv_speed
    python -m benchmarks.spectral_conv_speed --shapes 16x32x64x12,8x64x128x16 --repeats 30
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Sequence

import torch
import torch.nn as nn

from ptycho_torch.generators import HAS_NEURALOPERATOR, NeuralopSpectralConv2d, _FallbackSpectralConv2d

from .common import Progress, benchmark_parser, environment, resolve_device, write_outputs

SCHEMA = "spectral-init/spectral-conv-speed/1"
DEFAULT_SHAPES = "16x32x64x12,8x64x128x16,4x32x256x16"


def parse_shapes(text: str) -> list[tuple[int, int, int, int]]:
    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise argparse.ArgumentTypeError(f"shape {item!r} is not BATCHxCHANNELSxSIZExMODES with positive integers")
        batch, channels, size, modes = map(int, parts)
        if modes > size // 2:
            raise argparse.ArgumentTypeError(f"shape {item!r}: modes must be <= size // 2")
        shapes.append((batch, channels, size, modes))
    return shapes


class RoundTrip(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x), s=x.shape[-2:])


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward_backward(module: nn.Module, x: torch.Tensor, device: torch.device) -> float:
    """Seconds for one forward and one backward pass (gradients w.r.t. input and weights)."""
    module.zero_grad(set_to_none=True)
    x.grad = None
    _synchronize(device)
    start = time.perf_counter()
    module(x).sum().backward()
    _synchronize(device)
    return time.perf_counter() - start


def peak_memory(module: nn.Module, x: torch.Tensor, device: torch.device) -> int | None:
    """Peak CUDA bytes of one forward+backward; None on CPU, where torch keeps no such counter."""
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    time_forward_backward(module, x, device)
    return torch.cuda.max_memory_allocated(device) - base


def bench_shape(shape: tuple[int, int, int, int], repeats: int, warmup: int, dtype: torch.dtype,
                device: torch.device, progress: Progress) -> dict:
    batch, channels, size, modes = shape
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size, dtype=dtype, device=device, requires_grad=True)
    impls: dict[str, nn.Module] = {
        "fallback": _FallbackSpectralConv2d(channels, channels, modes, spectral_init={"strategy": "sqrt_in", "seed": 0}),
        "roundtrip": RoundTrip(),
    }
    if HAS_NEURALOPERATOR and dtype == torch.float32:  # neuraloperator computes its spectrum in complex64
        impls["neuralop"] = NeuralopSpectralConv2d(channels, channels, modes, spectral_init={"strategy": "sqrt_in", "seed": 0})
    impls = {name: (m.double() if dtype == torch.float64 else m).to(device) for name, m in impls.items()}
    for _ in range(warmup):
        for module in impls.values():
            time_forward_backward(module, x, device)
    times: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(repeats):
        for name, module in impls.items():  # interleaved: load drifts hit every implementation alike
            times[name].append(time_forward_backward(module, x, device))
        progress.step(f"{batch}x{channels}x{size}x{modes}")
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratios = {"fallback_over_roundtrip": medians["fallback"] / medians["roundtrip"]}
    if "neuralop" in medians:
        ratios["fallback_over_neuralop"] = medians["fallback"] / medians["neuralop"]
    return {
        "batch": batch, "channels": channels, "size": size, "modes": modes,
        "median_seconds": medians,
        "ratios": ratios,
        "peak_memory_bytes": {name: peak_memory(m, x, device) for name, m in impls.items()},
        "repeats": repeats,
    }


def markdown_report(record: dict) -> str:
    env = record["environment"]
    lines = [
        "# Spectral convolution speed (forward + backward)",
        "",
        f"Device: {env['device_name']} · torch {env['versions']['torch']} · {env['torch_threads']} threads · "
        f"{record['config']['dtype']} · neuralop {env['versions']['neuralop']}",
        f"Command: `{env['command']}`",
        f"Medians of {record['config']['repeats']} interleaved repeats after {record['config']['warmup']} warm-up runs.",
        "",
        "| batch×channels×size, modes | ours (ms) | neuralop (ms) | round trip (ms) | ours/neuralop | ours/round trip |",
        "|---|---|---|---|---|---|",
    ]
    for r in record["results"]:
        med, ratio = r["median_seconds"], r["ratios"]
        neuralop_ms = f"{1e3 * med['neuralop']:.2f}" if "neuralop" in med else "—"
        neuralop_ratio = f"{ratio['fallback_over_neuralop']:.2f}" if "fallback_over_neuralop" in ratio else "—"
        lines.append(
            f"| {r['batch']}×{r['channels']}×{r['size']}², {r['modes']} | {1e3 * med['fallback']:.2f} | {neuralop_ms} "
            f"| {1e3 * med['roundtrip']:.2f} | {neuralop_ratio} | {ratio['fallback_over_roundtrip']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser("benchmarks.spectral_conv_speed", __doc__)
    p.add_argument("--shapes", type=parse_shapes, default=parse_shapes(DEFAULT_SHAPES),
                   help=f"BATCHxCHANNELSxSIZExMODES, comma-separated (default {DEFAULT_SHAPES})")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        raise SystemExit("--repeats must be >= 1 and --warmup >= 0")
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    progress = Progress(len(args.shapes) * args.repeats, "spectral conv speed", enabled=not args.no_progress)
    start = time.perf_counter()
    results = [bench_shape(s, args.repeats, args.warmup, dtype, device, progress) for s in args.shapes]
    record = {
        "schema": SCHEMA,
        "environment": environment(device, "benchmarks.spectral_conv_speed", argv),
        "config": {"shapes": [list(s) for s in args.shapes], "repeats": args.repeats, "warmup": args.warmup,
                   "dtype": args.dtype, "neuralop_available": HAS_NEURALOPERATOR},
        "results": results,
        "timings": {"total_seconds": time.perf_counter() - start},
    }
    markdown = markdown_report(record)
    paths = write_outputs(args.output_dir, "spectral_conv_speed", record, markdown)
    print(markdown)
    print(f"wrote {paths['json']}, {paths['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
