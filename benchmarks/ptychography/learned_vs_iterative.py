"""The learned reconstruction against a converged iterative solver, on objects the generator never saw.

Per regime (photons a pattern × scan step) and seed, a generator is trained once on simulated objects of
``--train-kinds`` (default the "lines" family; ``ptycho_torch.training``, its default pipeline:
``real_space`` input, stitched loss), then each test scan — objects of every ``--kinds`` (``lines`` of
unseen seeds, a Siemens star, a random smooth object, natural images; ``ptycho_torch.simulation
.object_of_kind``), the training probe and photon scale — is reconstructed three ways, each scored by the
SSIM of its stitched object (phase offset and plane removed):

- ``generator``: one forward pass a pattern, stitched (``training.predict_patches``; the time per object
  includes the stitch, not the physics loss);
- ``iterative``: the ``--solver`` (rPIE of this package, or PtyLab's mPIE or ePIE) with the probe known,
  from a flat start, to convergence (``ptycho_torch.solvers``: stopped where neither SSIM moves by 0.002
  between 25, 50, … 1000 passes); its best checkpoint is kept too (``best_*``: where noise makes the
  solver fit it, the SSIM peaks early and falls);
- ``generator+iterative``: the same solver from the generator's object (its time adds the generator's).

The first test object of seed 0 of every regime and kind is kept as images for the side-by-side figure.

    python -m benchmarks.learned_vs_iterative --output-dir benchmarks/results/cpu-2core/learned-vs-iterative
"""

# One study: the training per regime, the three reconstructions, the rows, the report and the figure.

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from ptycho_torch.data.dataset import PtychoDataset
from ptycho_torch.evaluation import StitchedObject, evaluate_objects, stitch_objects
from ptycho_torch.simulation import OBJECT_KINDS, SimulationConfig, object_of_kind, simulate_dataset
from ptycho_torch.solvers import SOLVERS, ConvergedSolve, solve_with, solver_package, solver_problem, stitched_ssim
from ptycho_torch.training import TrainingConfig, predict_patches, train

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
from .machinery.object_grid import COLOUR_MAPS, decode_image, object_images
from .machinery.stats import mean_ci, paired_difference

SCHEMA = "spectral-init/learned-vs-iterative/1"
MODULE, STEM = "benchmarks.learned_vs_iterative", "learned_vs_iterative"
METHODS = ("generator", "iterative", "generator+iterative")
TEST_SEED = 90_000  # test objects: seeds TEST_SEED + 100·seed + i, far from training's (seed·2·MAX_IMAGES + i)


def training_config(args: argparse.Namespace, nphotons: float, step: int, seed: int) -> TrainingConfig:
    return TrainingConfig(
        data=SimulationConfig(N=args.N, nimgs_train=args.nimgs_train, nimgs_test=args.nimgs_test, offset=step,
                              nphotons=nphotons, object_kinds=args.train_kinds),
        model={"architecture": args.architecture, "fno_width": args.width, "fno_modes": args.modes,
               "fno_blocks": args.blocks},
        loss="poisson" if nphotons < args.poisson_below else "mae", nepochs=args.nepochs, lr=args.lr, seed=seed,
        device="cpu")


def test_scan(config: TrainingConfig, kind: str, seed: int, scale: float) -> PtychoDataset:
    objects = [object_of_kind(kind, config.data.canvas, TEST_SEED + 100 * seed + i)
               for i in range(config.data.nimgs_test)]
    return simulate_dataset(config.data, len(objects), seed=TEST_SEED + seed, intensity_scale=scale, objects=objects)


def scored(patches: torch.Tensor, data: PtychoDataset) -> tuple[dict[str, float | None], StitchedObject]:
    """The SSIM of amplitude and phase (``solvers.object_ssim``) and the first object stitched and aligned,
    for the picture: the objects stitched once for both."""
    stitched = evaluate_objects(patches, data)
    return stitched_ssim(stitched), stitched[0]


def best_checkpoint(solve: ConvergedSolve) -> dict[str, Any]:
    """The solver's checkpoint with the highest mean of the two SSIMs: its SSIMs and iterations."""
    best = max(solve.history, key=lambda h: h["ssim_amp"] + h["ssim_phase"])
    return {"best_ssim_amp": best["ssim_amp"], "best_ssim_phase": best["ssim_phase"],
            "best_iterations": best["iterations"]}


def reconstructions(model: torch.nn.Module, config: TrainingConfig, data: PtychoDataset, seed: int,
                    solver: str = "rpie") -> tuple[list[dict[str, Any]], dict[str, StitchedObject]]:
    """The three reconstructions of one test scan: their SSIM, time per object and iterations; and the
    first object of each (and the truth's), aligned, for the picture."""
    objects = int(data.object_ids.max()) + 1
    start = time.perf_counter()
    patches = predict_patches(model, data, config.infer_batch_size, torch.device("cpu"))
    stitched, coverage = stitch_objects(patches, data)
    generator_seconds = (time.perf_counter() - start) / objects
    scores, first = scored(patches, data)
    rows = [{"method": "generator", **scores, "seconds_per_object": generator_seconds,
             "patterns_per_second": len(data) / objects / generator_seconds, "iterations": None}]
    firsts = {"generator": first}
    flat = solve_with(solver, data, seed=seed)
    scores, firsts["iterative"] = scored(flat.patches, data)
    rows.append({"method": "iterative", **scores, "seconds_per_object": flat.seconds_per_object,
                 "iterations": flat.iterations, "converged": flat.converged, **best_checkpoint(flat)})
    starts = [torch.where(c > 0, o, torch.ones_like(o)) for o, c in zip(stitched, coverage)]  # unlit: flat
    warm = solve_with(solver, data, seed=seed, starts=starts)
    scores, firsts["generator+iterative"] = scored(warm.patches, data)
    rows.append({"method": "generator+iterative", **scores,
                 "seconds_per_object": generator_seconds + warm.seconds_per_object, "iterations": warm.iterations,
                 "converged": warm.converged, **best_checkpoint(warm)})
    return rows, firsts


def pictures(firsts: dict[str, StitchedObject]) -> dict[str, Any]:
    """The truth and each method's object as images (``object_grid.object_images``) with their SSIMs."""
    return {"truth": object_images(firsts["generator"].truth),
            **{method: {"images": object_images(o.reconstruction),
                        **{k: o.metrics[k] for k in ("ssim_amp", "ssim_phase")}} for method, o in firsts.items()}}


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    start = time.perf_counter()
    rows, trainings, objects = [], [], []
    for nphotons in args.nphotons:
        for step in args.steps:
            for seed in range(args.seeds):
                config = training_config(args, nphotons, step, seed)
                result = train(config)
                trainings.append({"nphotons": nphotons, "step": step, "seed": seed,
                                  "seconds": result.timings["train_seconds"], "final_loss": result.epoch_losses[-1]})
                for kind in args.kinds:
                    data = test_scan(config, kind, seed, result.intensity_scale)
                    found, firsts = reconstructions(result.model, config, data, seed, args.solver)
                    rows += [{**row, "object_kind": kind, "nphotons": nphotons, "step": step, "seed": seed}
                             for row in found]
                    if seed == 0:
                        objects.append({"object_kind": kind, "nphotons": nphotons, "step": step,
                                        **pictures(firsts)})
                    print(f"{nphotons:.0e} photons, step {step}, seed {seed}, {kind}: "
                          + ", ".join(f"{r['method']} {r['ssim_amp']:.3f}/{r['ssim_phase']:.3f} "
                                      f"{r['seconds_per_object']:.3g} s" for r in rows[-3:]), file=sys.stderr)
    return {"schema": SCHEMA, "environment": environment(torch.device("cpu"), MODULE, argv),
            "config": {"N": args.N, "architecture": args.architecture, "width": args.width, "modes": args.modes,
                       "blocks": args.blocks, "nepochs": args.nepochs, "lr": args.lr,
                       "poisson_below": args.poisson_below,
                       "nimgs_train": args.nimgs_train, "nimgs_test": args.nimgs_test, "seeds": args.seeds,
                       "nphotons": list(args.nphotons), "steps": list(args.steps), "kinds": list(args.kinds),
                       "train_kinds": list(args.train_kinds), "solver": args.solver,
                       "solver_package": solver_package(args.solver)},
            "trainings": trainings, "rows": rows, "summary": summarize(rows), "objects": objects,
            "timings": {"total_seconds": time.perf_counter() - start}}


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per regime × object kind × method: mean ± 95% CI over seeds of SSIM, time per object, and (where
    the method has them) iterations, the best checkpoint's SSIMs and iterations, patterns a second."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["nphotons"], row["step"], row["object_kind"], row["method"]), []).append(row)
    optional = ("iterations", "best_ssim_amp", "best_ssim_phase", "best_iterations", "patterns_per_second")
    return [{"nphotons": n, "step": s, "object_kind": k, "method": m,
             **{key: mean_ci([r[key] for r in group]) for key in ("ssim_amp", "ssim_phase", "seconds_per_object")},
             **{key: (mean_ci([r[key] for r in group]) if group[0].get(key) is not None else None)
                for key in optional}}
            for (n, s, k, m), group in groups.items()]


def markdown_report(record: dict[str, Any]) -> str:
    cfg = record["config"]
    train_seconds = mean_ci([t["seconds"] for t in record["trainings"]])
    lines = [*markdown_header("The learned reconstruction against a converged iterative solver", record["environment"]),
             f"Generator: {cfg['architecture']}, width {cfg['width']}, {cfg['modes']} modes, {cfg['blocks']} blocks, "
             f"N = {cfg['N']}, trained once per regime and seed on {cfg['nimgs_train']} \"lines\" objects for "
             f"{cfg['nepochs']} epochs (lr {cfg['lr']:g}; Poisson loss below {cfg['poisson_below']:.0e} photons, "
             f"else the amplitude MAE; {train_seconds['mean']:.0f} s a training), then tested on "
             f"{cfg['nimgs_test']} unseen object(s) of each kind. Iterative: {_solver(cfg)}, probe known, to "
             "convergence. "
             f"Mean ± 95% CI over {cfg['seeds']} seed(s); seconds per object on this CPU. The solver's best "
             "checkpoint: its SSIMs where their mean peaked (an oracle's early stop, the truth in hand), and the "
             "iterations there.", "",
             "| photons | step (px) | object kind | method | SSIM amplitude | SSIM phase | seconds per object "
             "| iterations | best checkpoint: SSIM (iterations) |", "|---|---|---|---|---|---|---|---|---|"]
    for s in record["summary"]:
        iterations = "" if s["iterations"] is None else format_ci(s["iterations"]["mean"], s["iterations"]["ci95"], 4)
        best = ("" if s.get("best_ssim_amp") is None else
                f"{s['best_ssim_amp']['mean']:.3f} / {s['best_ssim_phase']['mean']:.3f} "
                f"({s['best_iterations']['mean']:.0f})")
        lines.append(f"| {s['nphotons']:.0e} | {s['step']} | {s['object_kind']} | {s['method']} | "
                     f"{format_ci(s['ssim_amp']['mean'], s['ssim_amp']['ci95'])} | "
                     f"{format_ci(s['ssim_phase']['mean'], s['ssim_phase']['ci95'])} | "
                     f"{format_ci(s['seconds_per_object']['mean'], s['seconds_per_object']['ci95'])} | {iterations} "
                     f"| {best} |")
    return "\n".join(lines + against_the_solver(record)) + "\n"


GOAL_SSIM, GOAL_SPEEDUP = 0.05, 100  # issue 43: within 0.05 SSIM of the converged solver at >= 100x its speed


def against_the_solver(record: dict[str, Any]) -> list[str]:
    """The generator, and the generator's start, against the converged solver from a flat start: SSIM
    differences paired by seed (mean ± 95% CI), how many times faster, the generator against the solver's
    best checkpoint, and whether the goal is met, per regime and object kind."""
    by = {(r["nphotons"], r["step"], r["object_kind"], r["method"], r["seed"]): r for r in record["rows"]}
    lines = ["", "Against the converged solver (`iterative`), paired by seed: Δ SSIM = method − iterative "
             "(amplitude / phase), the solver's time over the method's, and the generator against the solver's "
             f"best checkpoint. Goal: both Δ ≥ −{GOAL_SSIM} at ≥ {GOAL_SPEEDUP}× the speed.", "",
             "| photons | step (px) | object kind | generator Δ SSIM | generator: × faster "
             "| generator+iterative Δ SSIM | generator − best checkpoint | goal |", "|---|---|---|---|---|---|---|---|"]
    for s in (s for s in record["summary"] if s["method"] == "iterative"):
        key = (s["nphotons"], s["step"], s["object_kind"])
        seeds = sorted(seed for (*k, m, seed) in by if tuple(k) == key and m == "iterative")
        solver = [by[(*key, "iterative", seed)] for seed in seeds]
        generator = [by[(*key, "generator", seed)] for seed in seeds]
        cells, means = [], []
        for method in ("generator", "generator+iterative"):
            mine = [by[(*key, method, seed)] for seed in seeds]
            deltas = [paired_difference([m[k] for m in mine], [t[k] for t in solver])
                      for k in ("ssim_amp", "ssim_phase")]
            cells.append(" / ".join(format_ci(d["mean"], d["ci95"], 2) for d in deltas))
            means.append([d["mean"] for d in deltas])
        speed = mean_ci([t["seconds_per_object"] / m["seconds_per_object"] for t, m in zip(solver, generator)])
        best = ("" if solver[0].get("best_ssim_amp") is None else " / ".join(
            format_ci(d["mean"], d["ci95"], 2) for d in (
                paired_difference([g[k] for g in generator], [t[f"best_{k}"] for t in solver])
                for k in ("ssim_amp", "ssim_phase"))))
        met = min(means[0]) >= -GOAL_SSIM and speed["mean"] >= GOAL_SPEEDUP
        lines.append(f"| {key[0]:.0e} | {key[1]} | {key[2]} | {cells[0]} | {speed['mean']:.1f} | {cells[1]} "
                     f"| {best} | {'met' if met else 'not met'} |")
    return lines


def figure(record: dict[str, Any]) -> Any:
    """SSIM (amplitude, phase) against seconds per object: every method, kind and regime a point."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    markers = {kind: m for kind, m in zip(OBJECT_KINDS, "osD^v")}
    for ax, key, name in zip(axes, ("ssim_amp", "ssim_phase"), ("amplitude", "phase")):
        for c, method in enumerate(METHODS):
            for kind in record["config"]["kinds"]:
                points = [s for s in record["summary"] if s["method"] == method and s["object_kind"] == kind]
                ax.scatter([p["seconds_per_object"]["mean"] for p in points], [p[key]["mean"] for p in points],
                           color=f"C{c}", marker=markers.get(kind, "o"), label=f"{method}, {kind}")
        ax.set_xscale("log")
        ax.set_xlabel("seconds per object (this CPU)")
        ax.set_ylabel(f"SSIM of the stitched object's {name}")
        ax.set_title(f"{name.capitalize()}: quality against time, unseen objects", fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncols=3)
    return fig


def objects_figure(record: dict[str, Any]) -> Any:
    """Seed 0's first test object of every kind (column triples: truth, generator, converged solver) in
    every regime (rows), phase on the truth's colour scale (records without objects: None, no file)."""
    if not record.get("objects"):
        return None
    plt = pyplot()
    regimes = list(dict.fromkeys((o["nphotons"], o["step"]) for o in record["objects"]))
    kinds = list(dict.fromkeys(o["object_kind"] for o in record["objects"]))
    cell = {(o["nphotons"], o["step"], o["object_kind"]): o for o in record["objects"]}
    columns = [(kind, method) for kind in kinds for method in ("truth", "generator", "iterative")]
    fig, axes = plt.subplots(len(regimes), len(columns), figsize=(1.1 * len(columns) + 0.6, 1.2 * len(regimes) + 0.9),
                             squeeze=False, layout="constrained")
    for row, regime in enumerate(regimes):
        for col, (kind, method) in enumerate(columns):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            entry = cell.get((*regime, kind))
            if entry is None:
                ax.set_axis_off()
                continue
            truth = decode_image(entry["truth"]["phase"])
            image = truth if method == "truth" else decode_image(entry[method]["images"]["phase"])
            ax.imshow(image, cmap=COLOUR_MAPS["phase"], vmin=truth.min(), vmax=truth.max())
            if method != "truth":
                ax.set_xlabel(f"SSIM {entry[method]['ssim_phase']:.2f}", fontsize=7, labelpad=1)
            if row == 0:
                ax.set_title(f"{kind}: {method}", fontsize=7)
            if col == 0:
                ax.set_ylabel(f"{regime[0]:.0e} ph\nstep {regime[1]}", fontsize=7)
    fig.supxlabel("Unseen objects' phase (seed 0, first object, offset and plane removed): the generator and "
                  f"{_solver(record['config'])} to convergence beside the truth, per regime (photons a pattern, "
                  "scan step in px)", fontsize=8)
    return fig


def _solver(cfg: dict[str, Any]) -> str:
    """The iterative solver's name in the report (rPIE in a record from before ``--solver``)."""
    return SOLVERS[cfg.get("solver", "rpie")].removesuffix(" (this package)")


EXTRA_FIGURES = {"objects": objects_figure}  # learned_vs_iterative_objects.png


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--N", type=bounded_int(4, 1024), default=32, help="patch size (default: 32)")
    p.add_argument("--nphotons", type=comma_numbers(positive_float), default=(1e9,),
                   help="photons a pattern, one regime each, e.g. 1e4,1e6,1e9 (default: 1e9)")
    p.add_argument("--steps", type=comma_numbers(bounded_int(1, 1024)), default=(8,),
                   help="scan steps in px, one regime each (default: 8)")
    p.add_argument("--kinds", type=comma_separated(tuple(OBJECT_KINDS), "object kinds"), default=tuple(OBJECT_KINDS),
                   help=f"test object kinds (default: {','.join(OBJECT_KINDS)})")
    p.add_argument("--train-kinds", type=comma_separated(tuple(OBJECT_KINDS), "object kinds"), default=("lines",),
                   help="the training objects' kinds, taken in turn (default: lines)")
    p.add_argument("--seeds", type=bounded_int(1, 100), default=1, help="seeds 0, 1, … (default: 1)")
    p.add_argument("--solver", choices=tuple(SOLVERS), default="rpie",
                   help="the iterative solver run to convergence: rPIE of this package, or PtyLab's mPIE or ePIE "
                   "(pip install ptylab) (default: rpie)")
    add_generator_arguments(p)
    return p


def add_generator_arguments(p: argparse.ArgumentParser) -> None:
    """The generator and its training, as this study and ``generator_variants`` (its baseline) take them."""
    p.add_argument("--architecture", choices=("ffno", "fno"), default="ffno", help="generator (default: ffno)")
    p.add_argument("--width", type=bounded_int(1, 256), default=32, help="generator width (default: 32)")
    p.add_argument("--modes", type=bounded_int(1, 512), default=12, help="kept modes (default: 12)")
    p.add_argument("--blocks", type=bounded_int(1, 64), default=4, help="blocks (default: 4)")
    p.add_argument("--nepochs", type=bounded_int(1, 30_000), default=60, help="training epochs (default: 60)")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="Adam rate (default: 0.003)")
    p.add_argument("--poisson-below", type=positive_float, default=1e7,
                   help="fewer photons a pattern train with the Poisson loss, more with the amplitude MAE "
                   "(default: 1e7)")
    p.add_argument("--nimgs-train", type=bounded_int(1, 1000), default=8, help="training objects (default: 8)")
    p.add_argument("--nimgs-test", type=bounded_int(1, 1000), default=2, help="test objects a kind (default: 2)")


def check_study_flags(args: argparse.Namespace) -> None:
    """What this study and ``generator_variants`` refuse before any work: the GPU (the times compared are
    the CPU's), an odd N or modes beyond N // 2, the natural kind without scikit-image."""
    if args.device == "cuda":
        raise UsageError("--device cuda: the times per object compared here are the CPU's (the GPU step lives in "
                         "gpu_sweep.sh)")
    if "natural" in {*args.kinds, *args.train_kinds} and importlib.util.find_spec("skimage") is None:
        raise UsageError("the natural object kind draws on scikit-image's bundled images: pip install scikit-image, "
                         "or leave natural out of --kinds and --train-kinds")
    if args.N % 2 or args.modes > args.N // 2:
        raise UsageError(f"--N must be even and --modes <= N // 2; got N = {args.N}, modes = {args.modes}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_study_flags(args)
    if (problem := solver_problem(args.solver)) is not None:
        raise UsageError(f"--solver: {problem}")
    with command_threads(args.threads):
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args, argv)
        publish(args.output_dir, STEM, record, markdown_report(record), figure, EXTRA_FIGURES,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
