"""Is the iterative anchor converged? The object's SSIM against iterations for solvers with the probe
known — rPIE of this package (``ptycho_torch.solvers``, α = 0.1), CDTools (``ptycho_torch.anchor``, the
anchor of the training comparisons: Adam at 0.05, minibatches of 5) and, where PtyLab is installed, its
mPIE and ePIE (``ptycho_torch.solvers.ptylab``, object step 0.25) — on the test scans the training
comparisons reconstruct (the same seed gives the same patterns, noise and positions), each run until
neither SSIM changes by ``--tolerance`` between checkpoints (25, 50, … 1000 iterations), with its time per
object to get there. CDTools restarts from a flat object at each checkpoint (its optimizer state is its
own); rPIE and PtyLab go on from where they stood. Scoring is not timed. ``--cdtools-lrs`` tries CDTools at other
Adam rates (rows ``cdtools@RATE``), to find the rate at which it converges.

    python -m benchmarks.iterative_convergence --output-dir benchmarks/results/cpu-2core/iterative-convergence
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from ptycho_torch.anchor import DEFAULT_LR, anchor_available, iterative_reconstruction
from ptycho_torch.data.dataset import PtychoDataset
from ptycho_torch.simulation import SimulationConfig
from ptycho_torch.solvers import (
    CHECKPOINTS,
    TOLERANCE,
    has_converged,
    object_ssim,
    solve_with,
    solver_package,
    solver_problem,
)
from ptycho_torch.solvers import SOLVERS as ITERATIVE_SOLVERS
from ptycho_torch.training import TrainingConfig
from ptycho_torch.training.config import make_datasets

from .machinery.common import (
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    comma_numbers,
    comma_separated,
    command_threads,
    environment,
    format_ci,
    markdown_header,
    positive_float,
    prepare_output_dir,
    publish,
    run_cli,
)
from .machinery.figures import pyplot
from .machinery.stats import mean_ci

SCHEMA = "spectral-init/iterative-convergence/1"
MODULE, STEM = "benchmarks.iterative_convergence", "iterative_convergence"
SOLVERS = {**ITERATIVE_SOLVERS, "cdtools": "CDTools (Adam)"}


def solver_runs(solvers: Sequence[str], cdtools_lrs: Sequence[float]) -> list[tuple[str, float | None]]:
    """(name, Adam rate) of every run: rPIE and PtyLab's engines, and CDTools at each rate ("cdtools" at
    the anchor's own)."""
    return [(name, None) for name in solvers if name != "cdtools"] + [
        ("cdtools" if lr == DEFAULT_LR else f"cdtools@{lr:g}", lr) for lr in cdtools_lrs if "cdtools" in solvers]


def label(solver: str) -> str:
    """A run's name in the report: "CDTools (Adam 0.01)" for ``cdtools@0.01``."""
    name, _, lr = solver.partition("@")
    return SOLVERS[name] if not lr else f"CDTools (Adam {lr})"


def test_scan(args: argparse.Namespace, seed: int) -> PtychoDataset:
    """The test scan ``benchmarks.training_comparison`` reconstructs for this seed and these data flags."""
    config = TrainingConfig(data=SimulationConfig(N=args.N, nimgs_train=args.nimgs_train, nimgs_test=args.nimgs_test,
                                                  offset=args.offset, nphotons=args.nphotons, scan=args.scan),
                            model={"fno_modes": 1}, seed=seed, device="cpu")  # no model is built: any valid one
    return make_datasets(config)[1]


def cdtools_history(data: PtychoDataset, checkpoints: Sequence[int], tolerance: float,
                    seed: int, lr: float = DEFAULT_LR) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    for at in checkpoints:
        result = iterative_reconstruction(data, iterations=at, lr=lr, seed=seed)
        history.append({"iterations": at, **object_ssim(result.patches, data),
                        "seconds_per_object": result.seconds_per_object})
        if has_converged(history, tolerance):
            break
    return history


def solve(solver: str, lr: float | None, data: PtychoDataset, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    if lr is None:
        history = solve_with(solver, data, args.checkpoints, args.tolerance, seed=seed).history
    else:
        history = cdtools_history(data, args.checkpoints, args.tolerance, seed, lr)
    last = history[-1]
    return {"solver": solver, "seed": seed, "history": history, "converged": has_converged(history, args.tolerance),
            "iterations": last["iterations"], "ssim_amp": last["ssim_amp"], "ssim_phase": last["ssim_phase"],
            "seconds_per_object": last["seconds_per_object"]}


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    start = time.perf_counter()
    rows = []
    warm = test_scan(args, 0)  # a first call pays for lazy imports and allocator warm-up: not a solver's time
    runs = solver_runs(args.solvers, args.cdtools_lrs)
    for solver, lr in runs:
        solve(solver, lr, warm, argparse.Namespace(**{**vars(args), "checkpoints": (1,)}), 0)
    for seed in range(args.seeds):
        data = test_scan(args, seed)
        for solver, lr in runs:
            rows.append(solve(solver, lr, data, args, seed))
            print(f"seed {seed} {solver}: {rows[-1]['iterations']} iterations, SSIM {rows[-1]['ssim_amp']:.4f} / "
                  f"{rows[-1]['ssim_phase']:.4f}", file=sys.stderr)
    summary = {}
    for solver, _ in runs:
        mine = [r for r in rows if r["solver"] == solver]
        summary[solver] = {key: mean_ci([r[key] for r in mine])
                           for key in ("ssim_amp", "ssim_phase", "seconds_per_object", "iterations")}
        summary[solver]["converged"] = sum(r["converged"] for r in mine)
    return {"schema": SCHEMA, "environment": environment(torch.device("cpu"), MODULE, argv),
            "config": {"N": args.N, "offset": args.offset or args.N // 4, "nphotons": args.nphotons,
                       "scan": args.scan, "nimgs_train": args.nimgs_train, "nimgs_test": args.nimgs_test,
                       "seeds": args.seeds, "checkpoints": list(args.checkpoints), "tolerance": args.tolerance,
                       "solvers": list(args.solvers), "cdtools_lrs": list(args.cdtools_lrs),
                       "packages": {name: solver_package(name) for name in args.solvers if name != "cdtools"}},
            "rows": rows, "summary": summary, "timings": {"total_seconds": time.perf_counter() - start}}


def markdown_report(record: dict[str, Any]) -> str:
    cfg = record["config"]
    lines = [*markdown_header("Is the iterative anchor converged? SSIM against iterations", record["environment"]),
             f"Test scans of `benchmarks.training_comparison` (N = {cfg['N']}, {cfg['scan']} scan of step "
             f"{cfg['offset']} px, {cfg['nphotons']:.0e} photons a pattern, {cfg['nimgs_test']} object(s) a seed, "
             f"seeds 0–{cfg['seeds'] - 1}), probe known. Each solver stops at the first checkpoint "
             f"({', '.join(map(str, cfg['checkpoints']))}) where neither SSIM moved by {cfg['tolerance']} since "
             "the one before. Mean ± 95% CI over seeds.", "",
             "| solver | converged (seeds) | iterations | SSIM amplitude | SSIM phase | seconds per object |",
             "|---|---|---|---|---|---|"]
    for solver, s in record["summary"].items():
        lines.append(f"| {label(solver)} | {s['converged']}/{cfg['seeds']} | "
                     f"{format_ci(s['iterations']['mean'], s['iterations']['ci95'], 4)} | "
                     f"{format_ci(s['ssim_amp']['mean'], s['ssim_amp']['ci95'], 4)} | "
                     f"{format_ci(s['ssim_phase']['mean'], s['ssim_phase']['ci95'], 4)} | "
                     f"{format_ci(s['seconds_per_object']['mean'], s['seconds_per_object']['ci95'])} |")
    lines += ["", "Every checkpoint (SSIM amplitude / phase, seconds per object):", "",
              "| solver | seed | " + " | ".join(str(c) for c in cfg["checkpoints"]) + " |",
              "|---|---|" + "---|" * len(cfg["checkpoints"])]
    for row in record["rows"]:
        at = {h["iterations"]: h for h in row["history"]}
        cells = [f"{at[c]['ssim_amp']:.3f} / {at[c]['ssim_phase']:.3f}, {at[c]['seconds_per_object']:.2g} s"
                 if c in at else "" for c in cfg["checkpoints"]]
        lines.append(f"| {label(row['solver'])} | {row['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """SSIM against iterations and against seconds per object, every seed, both solvers."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    for k, solver in enumerate(record["summary"]):
        for row in (r for r in record["rows"] if r["solver"] == solver):
            h = row["history"]
            for key, style in (("ssim_amp", "-"), ("ssim_phase", "--")):
                name = (f"{label(solver)}, {'amplitude' if key == 'ssim_amp' else 'phase'}"
                        if row["seed"] == 0 else None)
                axes[0].plot([p["iterations"] for p in h], [p[key] for p in h], style, marker="o", markersize=3,
                             color=f"C{k}", label=name)
                axes[1].plot([p["seconds_per_object"] for p in h], [p[key] for p in h], style, marker="o",
                             markersize=3, color=f"C{k}")
    for ax, xlabel in zip(axes, ("iterations (passes over the scan)", "seconds per object (this CPU)")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("SSIM of the stitched object")
    axes[0].set_title("SSIM against iterations, each seed, to convergence", fontsize=9)
    axes[1].set_title("SSIM against time", fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncols=4)
    return fig


def _checkpoints(text: str) -> tuple[int, ...]:
    values = comma_numbers(bounded_int(1, 1_000_000))(text)
    if list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"expected increasing iteration counts; got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--N", type=bounded_int(4, 1024), default=32, help="patch size (default: 32, the comparisons')")
    p.add_argument("--offset", type=bounded_int(1, 1024), default=None, help="scan step in px (default: N // 4)")
    p.add_argument("--nphotons", type=positive_float, default=1e9, help="photons a pattern (default: 1e9)")
    p.add_argument("--scan", choices=("grid", "random", "spiral"), default="grid", help="scan (default: grid)")
    p.add_argument("--nimgs-train", type=bounded_int(1, 1000), default=8,
                   help="training objects of the comparison (they set the photon scale; default: 8)")
    p.add_argument("--nimgs-test", type=bounded_int(1, 1000), default=2, help="test objects a seed (default: 2)")
    p.add_argument("--seeds", type=bounded_int(1, 100), default=3, help="seeds 0, 1, … (default: 3)")
    p.add_argument("--checkpoints", type=_checkpoints, default=CHECKPOINTS,
                   help=f"iterations at which the object is scored (default: {','.join(map(str, CHECKPOINTS))})")
    p.add_argument("--tolerance", type=positive_float, default=TOLERANCE,
                   help=f"converged: neither SSIM moved by this between checkpoints (default: {TOLERANCE})")
    p.add_argument("--solvers", type=comma_separated(tuple(SOLVERS), "solvers"), default=("rpie", "cdtools"),
                   help=f"comma-separated from {', '.join(SOLVERS)} (default: rpie,cdtools; the ptylab ones need "
                   "pip install ptylab)")
    p.add_argument("--cdtools-lrs", type=comma_numbers(positive_float), default=(DEFAULT_LR,),
                   help=f"CDTools' Adam rates, a run each (default: {DEFAULT_LR:g}, the training comparisons' anchor)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.device == "cuda":
        raise UsageError("--device cuda: the solvers' time per object is measured on the CPU here")
    if args.N % 2:
        raise UsageError(f"--N must be even; got {args.N}")
    if "cdtools" in args.solvers and not anchor_available():
        raise UsageError("CDTools is not installed (pip install cdtools-py, or the 'anchor' extra); "
                         "--solvers rpie runs without it")
    for solver in (s for s in args.solvers if s != "cdtools"):
        if (problem := solver_problem(solver)) is not None:
            raise UsageError(f"--solvers: {problem}")
    with command_threads(args.threads):
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args, argv)
        publish(args.output_dir, STEM, record, markdown_report(record), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
