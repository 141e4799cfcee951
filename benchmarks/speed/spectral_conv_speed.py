"""Forward+backward time and peak memory of our spectral layers beside the alternatives.

Two layer kinds (``--layers``): ``2d``, the FNO layer, and ``factorized``, the
FFNO layer (two 1-D branches summed). At each shape (batch, channels, size,
modes), in one process and interleaved run by run:

- ``ours``: ``SpectralConv2d`` / ``FactorizedSpectralConv2d`` (products over the kept modes only);
- ``straightforward``: the same weights through full FFTs, a zero-filled
  spectrum, einsum and inverse FFTs (``spectral_conv2d_fft`` /
  ``factorized_spectral_conv2d_fft``, the tests' references; the latter is the
  reference PtychoPINN layer's formulation);
- ``neuralop`` (2d only): neuraloperator's ``SpectralConv`` keeping the same modes
  (kx in [-modes, modes), ky in [0, modes); when the ``neuralop`` extra is installed);
- ``roundtrip``: ``irfft2(rfft2(x))`` on the same tensor, the floor of any FFT-based layer.

Reported: medians over repeats, the ratios of ours to each, and the peak
memory of one forward+backward (CUDA: the allocator's peak; CPU: the growth of
the peak resident set, each implementation in a fresh process).

    python -m benchmarks.spectral_conv_speed
    python -m benchmarks.spectral_conv_speed --shapes 16x32x64x12,8x64x128x16 --repeats 30
    python -m benchmarks.spectral_conv_speed --layers factorized
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from ptycho_torch.generators import (
    HAS_NEURALOPERATOR,
    FactorizedSpectralConv2d,
    NeuralopSpectralConv2d,
    SpectralConv2d,
    factorized_spectral_conv2d_fft,
    spectral_conv2d_fft,
)
from ptycho_torch.generators.truncated_dft import complex_dtype_for

from .machinery.common import (
    Progress,
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
from .machinery.figures import bar_groups, one_legend, pyplot

SCHEMA = "spectral-init/spectral-conv-speed/3"
MODULE, STEM = "benchmarks.spectral_conv_speed", "spectral_conv_speed"
DEFAULT_SHAPES = "16x32x64x12,8x64x128x16,4x32x256x16"
IMPLEMENTATIONS = ("ours", "straightforward", "neuralop", "roundtrip")
LAYERS = ("2d", "factorized")


def parse_shapes(text: str) -> list[tuple[int, int, int, int]]:
    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise argparse.ArgumentTypeError(f"shape {item!r} is not BATCHxCHANNELSxSIZExMODES with positive integers")
        batch, channels, size, modes = map(int, parts)
        if modes > size // 2:
            raise argparse.ArgumentTypeError(f"shape {item!r}: modes must be <= size // 2")
        if batch * channels * size * size > 2**28:
            raise argparse.ArgumentTypeError(f"shape {item!r}: at most 2**28 input elements")
        shapes.append((batch, channels, size, modes))
    return shapes


class RoundTrip(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x), s=x.shape[-2:])


class Straightforward(nn.Module):
    """The FFT formulation with a copy of a 2-D layer's weights, stored contiguous as the layer once did."""

    def __init__(self, layer: SpectralConv2d) -> None:
        super().__init__()
        self.weights = nn.Parameter(layer.weights.detach().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spectral_conv2d_fft(x, self.weights.to(complex_dtype_for(x.dtype)))


class StraightforwardFactorized(nn.Module):
    """The reference FFNO layer's formulation with a copy of a factorized layer's weights."""

    def __init__(self, layer: FactorizedSpectralConv2d) -> None:
        super().__init__()
        self.weights_x = nn.Parameter(layer.weights_x.detach().clone())
        self.weights_y = nn.Parameter(layer.weights_y.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = complex_dtype_for(x.dtype)
        return factorized_spectral_conv2d_fft(x, self.weights_x.to(dtype), self.weights_y.to(dtype))


def available_implementations(layer: str, dtype: torch.dtype) -> list[str]:
    # neuraloperator has no factorized per-axis layer, and computes its spectrum in complex64
    neuralop_ok = layer == "2d" and HAS_NEURALOPERATOR and dtype == torch.float32
    return [n for n in IMPLEMENTATIONS if n != "neuralop" or neuralop_ok]


def build(name: str, layer: str, channels: int, modes: int, dtype: torch.dtype, device: torch.device) -> nn.Module:
    """One implementation of one layer kind, its weights drawn with the same seed as the others'."""
    spec = {"strategy": "sqrt_in", "seed": 0}
    module: nn.Module
    if name == "neuralop":
        module = NeuralopSpectralConv2d(channels, channels, modes, spectral_init=spec)
    elif name == "roundtrip":
        module = RoundTrip()
    elif layer == "factorized":
        ours = FactorizedSpectralConv2d(channels, modes, spectral_init=spec)
        module = ours if name == "ours" else StraightforwardFactorized(ours)
    else:
        ours_2d = SpectralConv2d(channels, channels, modes, spectral_init=spec)
        module = ours_2d if name == "ours" else Straightforward(ours_2d)
    return (module.double() if dtype == torch.float64 else module).to(device)


def make_input(shape: tuple[int, int, int, int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    batch, channels, size, _ = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, dtype=dtype, generator=generator)
    return x.to(device).requires_grad_()


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


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _cpu_peak_in_this_process(name: str, layer: str, shape: tuple[int, int, int, int], dtype_name: str,
                              threads: int) -> int:
    torch.set_num_threads(threads)
    device, dtype = torch.device("cpu"), getattr(torch, dtype_name)
    module, x = build(name, layer, shape[1], shape[3], dtype, device), make_input(shape, dtype, device)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # Linux: reset the peak resident set (VmHWM) to the current one
    base = _proc_status_kib("VmRSS")
    time_forward_backward(module, x, device)
    return 1024 * (_proc_status_kib("VmHWM") - base)


def peak_memory(name: str, layer: str, shape: tuple[int, int, int, int], dtype: torch.dtype,
                device: torch.device) -> int | None:
    """Peak bytes one forward+backward adds; None where it cannot be measured (CPU off Linux).

    CUDA: the caching allocator's peak above what was allocated before. CPU: the
    growth of the peak resident set, in a fresh process so that memory freed
    earlier and kept by the C allocator cannot hide the peak.
    """
    if device.type == "cuda":
        module, x = build(name, layer, shape[1], shape[3], dtype, device), make_input(shape, dtype, device)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        time_forward_backward(module, x, device)
        return torch.cuda.max_memory_allocated(device) - base
    if not sys.platform.startswith("linux"):
        return None
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        dtype_name = str(dtype).removeprefix("torch.")
        return pool.submit(_cpu_peak_in_this_process, name, layer, shape, dtype_name,
                           torch.get_num_threads()).result()


def bench_shape(layer: str, shape: tuple[int, int, int, int], repeats: int, warmup: int, dtype: torch.dtype,
                device: torch.device, measure_memory: bool, progress: Progress) -> dict:
    batch, channels, size, modes = shape
    names = available_implementations(layer, dtype)
    impls = {name: build(name, layer, channels, modes, dtype, device) for name in names}
    x = make_input(shape, dtype, device)
    for _ in range(warmup):
        for module in impls.values():
            time_forward_backward(module, x, device)
    times: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(repeats):
        for name, module in impls.items():  # interleaved: load drifts hit every implementation alike
            times[name].append(time_forward_backward(module, x, device))
        progress.step(f"{layer} {batch}x{channels}x{size}x{modes}")
    medians = {name: statistics.median(t) for name, t in times.items()}
    peaks = {name: peak_memory(name, layer, shape, dtype, device) if measure_memory else None for name in names}
    return {
        "layer": layer, "batch": batch, "channels": channels, "size": size, "modes": modes,
        "modules": {name: type(module).__name__ for name, module in impls.items()},  # what each name ran
        "median_seconds": medians,
        "ratios": {f"ours_over_{name}": medians["ours"] / medians[name] for name in names if name != "ours"},
        "peak_memory_bytes": peaks,
        "repeats": repeats,
        "roundtrip_max_over_min": max(times["roundtrip"]) / min(times["roundtrip"]),
    }


def _cell(value: float | None, scale: float, fmt: str) -> str:
    return "—" if value is None else format(value * scale, fmt)


_LAYER_TITLES = {"2d": "2-D layer (`SpectralConv2d`)", "factorized": "factorized layer (`FactorizedSpectralConv2d`)"}


def markdown_report(record: dict) -> str:
    env = record["environment"]
    warmup = record["config"]["warmup"]
    lines = [
        *markdown_header("Spectral convolution speed (forward + backward)", env, record["config"]["dtype"],
                         f"neuralop {env['versions']['neuralop'] or 'not installed'}"),
        f"Medians of {record['config']['repeats']} interleaved repeats after {warmup} warm-up "
        f"run{'' if warmup == 1 else 's'}.",
        *_unsteady_baseline(record["results"]),
    ]
    for layer in LAYERS:
        results = [r for r in record["results"] if r["layer"] == layer]
        if results:
            lines += ["", f"## {_LAYER_TITLES[layer]}", ""] + _layer_tables(results)
    return "\n".join(lines) + "\n"


UNSTEADY = 2.0  # the same round trip measured this many times slower somewhere in one run: a busy machine


def _unsteady_baseline(results: list[dict]) -> list[str]:
    """A warning when one shape's bare round trip took over UNSTEADY× longer in one place of the run than in
    another (its median in each layer section, and its slowest repeat over its fastest where recorded)."""
    warnings = []
    for shape in dict.fromkeys((r["batch"], r["channels"], r["size"], r["modes"]) for r in results):
        same = [r for r in results if (r["batch"], r["channels"], r["size"], r["modes"]) == shape]
        medians = [r["median_seconds"]["roundtrip"] for r in same]
        spread = max([max(medians) / min(medians)] + [r.get("roundtrip_max_over_min", 1.0) for r in same])
        if spread > UNSTEADY:
            warnings.append(f"**Warning:** the bare round trip at {shape[0]}×{shape[1]}×{shape[2]}², {shape[3]} "
                            f"varied {spread:.1f}× within this run: the machine was busy. Ratios of implementations "
                            "timed side by side still compare; the absolute times do not.")
    return ["", *warnings] if warnings else []


def _layer_tables(results: list[dict]) -> list[str]:
    names = [n for n in IMPLEMENTATIONS if n in results[0]["median_seconds"]]
    others = [n for n in names if n != "ours"]
    lines = [
        "| batch×channels×size, modes | " + " | ".join(f"{n} (ms)" for n in names) + " | "
        + " | ".join(f"ours/{n}" for n in others) + " |",
        "|---" * (1 + len(names) + len(others)) + "|",
    ]
    for r in results:
        label = f"{r['batch']}×{r['channels']}×{r['size']}², {r['modes']}"
        times = [_cell(r["median_seconds"][n], 1e3, ".2f") for n in names]
        ratios = [_cell(r["ratios"][f"ours_over_{n}"], 1, ".2f") for n in others]
        lines.append(f"| {label} | " + " | ".join(times + ratios) + " |")
    if any(v is not None for r in results for v in r["peak_memory_bytes"].values()):
        lines += [
            "",
            "Peak memory of one forward+backward (MiB; CUDA: allocator peak, CPU: growth of the peak resident set, "
            "each in a fresh process):",
            "",
            "| batch×channels×size, modes | " + " | ".join(names) + " | ours/straightforward |",
            "|---" * (2 + len(names)) + "|",
        ]
        for r in results:
            peaks = r["peak_memory_bytes"]
            ratio = (peaks["ours"] / peaks["straightforward"]
                     if peaks["ours"] is not None and peaks["straightforward"] else None)
            cells = [_cell(peaks[n], 2**-20, ".1f") for n in names] + [_cell(ratio, 1, ".2f")]
            lines.append(f"| {r['batch']}×{r['channels']}×{r['size']}², {r['modes']} | " + " | ".join(cells) + " |")
    return lines


def figure(record: dict[str, Any]) -> Any:
    """Per layer kind: forward+backward time and (where measured) peak memory, one bar per implementation."""
    plt = pyplot()
    layers = [layer for layer in LAYERS if any(r["layer"] == layer for r in record["results"])]
    with_memory = any(v is not None for r in record["results"] for v in r["peak_memory_bytes"].values())
    rows = [("median_seconds", 1e3, "forward+backward time (ms, median)")]
    if with_memory:
        rows.append(("peak_memory_bytes", 2**-20, "peak memory of one pass (MiB)"))
    fig, axes = plt.subplots(len(rows), len(layers), figsize=(5.5 * len(layers), 3.8 * len(rows) + 0.6),
                             squeeze=False, layout="constrained")
    for col, layer in enumerate(layers):
        results = [r for r in record["results"] if r["layer"] == layer]
        names = [n for n in IMPLEMENTATIONS if n in results[0]["median_seconds"]]
        shapes = [f"{r['batch']}×{r['channels']}×{r['size']}²\n{r['modes']} modes" for r in results]
        for row, (key, scale, ylabel) in enumerate(rows):
            ax = axes[row][col]
            series = [(name, [(r[key][name] or float("nan")) * scale for r in results], None) for name in names]
            bar_groups(ax, shapes, series, styles=[IMPLEMENTATIONS.index(name) for name in names])
            ax.set_xlabel("batch × channels × size², modes")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{ylabel.split(' (')[0]}\n{_LAYER_TITLES[layer].replace('`', '')}", fontsize=9)
    one_legend(fig, axes.flat, "implementation", order=IMPLEMENTATIONS)
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--shapes", type=parse_shapes, default=DEFAULT_SHAPES,
                   help="BATCHxCHANNELSxSIZExMODES, comma-separated")
    p.add_argument("--layers", type=comma_separated(LAYERS, "layer kinds"), default=",".join(LAYERS),
                   help=f"layer kinds, comma-separated: {', '.join(LAYERS)}")
    p.add_argument("--repeats", type=bounded_int(1, 100_000), default=20, help="timed runs per implementation")
    p.add_argument("--warmup", type=bounded_int(0, 1000), default=3, help="untimed runs first")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="dtype of layers and inputs")
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the peak memory of each implementation (on CPU one process each)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with command_threads(args.threads):
        return _main(args, argv)


def _main(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    device = resolve_device(args.device)
    prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
    dtype = getattr(torch, args.dtype)
    progress = Progress(
        len(args.layers) * len(args.shapes) * args.repeats, "spectral conv speed", enabled=not args.no_progress
    )
    start = time.perf_counter()
    results: list[dict] = []
    with keep_finished_runs(args.output_dir, STEM, lambda: record(args, device, argv, results), lambda: len(results)):
        for layer in args.layers:
            for shape in args.shapes:
                results.append(bench_shape(layer, shape, args.repeats, args.warmup, dtype, device, args.memory,
                                           progress))
    full = {**record(args, device, argv, results), "timings": {"total_seconds": time.perf_counter() - start}}
    publish(args.output_dir, STEM, full, markdown_report(full), figure,
            tracking=benchmark_tracking(args, STEM))
    return 0


def record(args: argparse.Namespace, device: torch.device, argv: Sequence[str] | None,
           results: list[dict]) -> dict[str, Any]:
    """The JSON record of the shapes measured so far."""
    return {
        "schema": SCHEMA,
        "environment": environment(device, MODULE, argv),
        "config": {
            "layers": args.layers,
            "shapes": [list(s) for s in args.shapes],
            "repeats": args.repeats,
            "warmup": args.warmup,
            "dtype": args.dtype,
            "neuralop_available": HAS_NEURALOPERATOR,
            "memory": args.memory,
        },
        "results": results,
    }


if __name__ == "__main__":
    sys.exit(run_cli(main))
