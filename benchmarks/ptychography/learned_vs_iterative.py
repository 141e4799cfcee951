"""The learned reconstruction against a converged iterative solver, on objects the generator never saw.

Per regime (photons a pattern × scan step) and seed, a generator is trained once on the simulated "lines"
family (``ptycho_torch.training``, its default pipeline: ``real_space`` input, stitched loss), then each
test scan — objects of every ``--kinds`` (``lines`` of unseen seeds, a Siemens star, a random smooth
object; ``ptycho_torch.simulation.object_of_kind``), the training probe and photon scale — is
reconstructed three ways, each scored by the SSIM of its stitched object (phase offset and plane removed):

- ``generator``: one forward pass a pattern, stitched (the time per object includes the stitch);
- ``iterative``: rPIE with the probe known, from a flat start, to convergence (``ptycho_torch.solvers``:
  stopped where neither SSIM moves by 0.002 between 25, 50, … 1000 passes);
- ``generator+iterative``: the same rPIE from the generator's object (its time adds the generator's).

    python -m benchmarks.learned_vs_iterative --output-dir benchmarks/results/cpu-2core/learned-vs-iterative
"""

# One study: the training per regime, the three reconstructions, the rows, the report and the figure.

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from ptycho_torch.data.dataset import PtychoDataset
from ptycho_torch.evaluation import stitch_objects
from ptycho_torch.simulation import OBJECT_KINDS, SimulationConfig, object_of_kind, simulate_dataset
from ptycho_torch.solvers import object_ssim, solve_to_convergence
from ptycho_torch.training import TrainingConfig, predict, train

from .machinery.common import (
    UsageError,
    benchmark_parser,
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
from .machinery.stats import mean_ci, paired_difference

SCHEMA = "spectral-init/learned-vs-iterative/1"
MODULE, STEM = "benchmarks.learned_vs_iterative", "learned_vs_iterative"
METHODS = ("generator", "iterative", "generator+iterative")
TEST_SEED = 90_000  # test objects: seeds TEST_SEED + 100·seed + i, far from training's (seed·2·MAX_IMAGES + i)


def training_config(args: argparse.Namespace, nphotons: float, step: int, seed: int) -> TrainingConfig:
    return TrainingConfig(
        data=SimulationConfig(N=args.N, nimgs_train=args.nimgs_train, nimgs_test=args.nimgs_test, offset=step,
                              nphotons=nphotons),
        model={"architecture": args.architecture, "fno_width": args.width, "fno_modes": args.modes,
               "fno_blocks": args.blocks},
        loss="poisson" if nphotons < args.poisson_below else "mae", nepochs=args.nepochs, lr=args.lr, seed=seed,
        device="cpu")


def test_scan(config: TrainingConfig, kind: str, seed: int, scale: float) -> PtychoDataset:
    objects = [object_of_kind(kind, config.data.canvas, TEST_SEED + 100 * seed + i)
               for i in range(config.data.nimgs_test)]
    return simulate_dataset(config.data, len(objects), seed=TEST_SEED + seed, intensity_scale=scale, objects=objects)


def reconstructions(model: torch.nn.Module, config: TrainingConfig, data: PtychoDataset,
                    seed: int) -> list[dict[str, Any]]:
    """The three reconstructions of one test scan: their SSIM, time per object and iterations."""
    objects = int(data.object_ids.max()) + 1
    start = time.perf_counter()
    patches, _ = predict(model, data, config, torch.device("cpu"))
    stitched, coverage = stitch_objects(patches, data)
    generator_seconds = (time.perf_counter() - start) / objects
    rows = [{"method": "generator", **object_ssim(patches, data), "seconds_per_object": generator_seconds,
             "iterations": None}]
    flat = solve_to_convergence(data, seed=seed)
    rows.append({"method": "iterative", **object_ssim(flat.patches, data),
                 "seconds_per_object": flat.seconds_per_object, "iterations": flat.iterations,
                 "converged": flat.converged})
    starts = [torch.where(c > 0, o, torch.ones_like(o)) for o, c in zip(stitched, coverage)]  # unlit: flat
    warm = solve_to_convergence(data, seed=seed, starts=starts)
    rows.append({"method": "generator+iterative", **object_ssim(warm.patches, data),
                 "seconds_per_object": generator_seconds + warm.seconds_per_object, "iterations": warm.iterations,
                 "converged": warm.converged})
    return rows


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    start = time.perf_counter()
    rows, trainings = [], []
    for nphotons in args.nphotons:
        for step in args.steps:
            for seed in range(args.seeds):
                config = training_config(args, nphotons, step, seed)
                result = train(config)
                trainings.append({"nphotons": nphotons, "step": step, "seed": seed,
                                  "seconds": result.timings["train_seconds"], "final_loss": result.epoch_losses[-1]})
                for kind in args.kinds:
                    data = test_scan(config, kind, seed, result.intensity_scale)
                    for row in reconstructions(result.model, config, data, seed):
                        rows.append({**row, "object_kind": kind, "nphotons": nphotons, "step": step, "seed": seed})
                    print(f"{nphotons:.0e} photons, step {step}, seed {seed}, {kind}: "
                          + ", ".join(f"{r['method']} {r['ssim_amp']:.3f}/{r['ssim_phase']:.3f} "
                                      f"{r['seconds_per_object']:.3g} s" for r in rows[-3:]), file=sys.stderr)
    return {"schema": SCHEMA, "environment": environment(torch.device("cpu"), MODULE, argv),
            "config": {"N": args.N, "architecture": args.architecture, "width": args.width, "modes": args.modes,
                       "blocks": args.blocks, "nepochs": args.nepochs, "lr": args.lr,
                       "poisson_below": args.poisson_below,
                       "nimgs_train": args.nimgs_train, "nimgs_test": args.nimgs_test, "seeds": args.seeds,
                       "nphotons": list(args.nphotons), "steps": list(args.steps), "kinds": list(args.kinds)},
            "trainings": trainings, "rows": rows, "summary": summarize(rows),
            "timings": {"total_seconds": time.perf_counter() - start}}


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per regime × object kind × method: mean ± 95% CI over seeds of SSIM and time per object."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["nphotons"], row["step"], row["object_kind"], row["method"]), []).append(row)
    return [{"nphotons": n, "step": s, "object_kind": k, "method": m,
             **{key: mean_ci([r[key] for r in group]) for key in ("ssim_amp", "ssim_phase", "seconds_per_object")},
             "iterations": (mean_ci([r["iterations"] for r in group]) if group[0]["iterations"] is not None
                            else None)}
            for (n, s, k, m), group in groups.items()]


def markdown_report(record: dict[str, Any]) -> str:
    cfg = record["config"]
    train_seconds = mean_ci([t["seconds"] for t in record["trainings"]])
    lines = [*markdown_header("The learned reconstruction against a converged iterative solver", record["environment"]),
             f"Generator: {cfg['architecture']}, width {cfg['width']}, {cfg['modes']} modes, {cfg['blocks']} blocks, "
             f"N = {cfg['N']}, trained once per regime and seed on {cfg['nimgs_train']} \"lines\" objects for "
             f"{cfg['nepochs']} epochs (lr {cfg['lr']:g}; Poisson loss below {cfg['poisson_below']:.0e} photons, "
             f"else the amplitude MAE; {train_seconds['mean']:.0f} s a training), then tested on "
             f"{cfg['nimgs_test']} unseen object(s) of each kind. Iterative: rPIE, probe known, to convergence. "
             f"Mean ± 95% CI over {cfg['seeds']} seed(s); seconds per object on this CPU.", "",
             "| photons | step (px) | object kind | method | SSIM amplitude | SSIM phase | seconds per object "
             "| iterations |", "|---|---|---|---|---|---|---|---|"]
    for s in record["summary"]:
        iterations = "" if s["iterations"] is None else format_ci(s["iterations"]["mean"], s["iterations"]["ci95"], 4)
        lines.append(f"| {s['nphotons']:.0e} | {s['step']} | {s['object_kind']} | {s['method']} | "
                     f"{format_ci(s['ssim_amp']['mean'], s['ssim_amp']['ci95'])} | "
                     f"{format_ci(s['ssim_phase']['mean'], s['ssim_phase']['ci95'])} | "
                     f"{format_ci(s['seconds_per_object']['mean'], s['seconds_per_object']['ci95'])} | {iterations} |")
    return "\n".join(lines + against_the_solver(record)) + "\n"


def against_the_solver(record: dict[str, Any]) -> list[str]:
    """The generator, and the generator's start, against the converged solver from a flat start: SSIM
    differences paired by seed (mean ± 95% CI) and how many times faster, per regime and object kind."""
    by = {(r["nphotons"], r["step"], r["object_kind"], r["method"], r["seed"]): r for r in record["rows"]}
    lines = ["", "Against the converged solver (`iterative`), paired by seed: Δ SSIM = method − iterative "
             "(amplitude / phase), and the solver's time over the method's.", "",
             "| photons | step (px) | object kind | generator Δ SSIM | generator: × faster "
             "| generator+iterative Δ SSIM |", "|---|---|---|---|---|---|"]
    for s in (s for s in record["summary"] if s["method"] == "iterative"):
        key = (s["nphotons"], s["step"], s["object_kind"])
        seeds = sorted(seed for (*k, m, seed) in by if tuple(k) == key and m == "iterative")
        solver = [by[(*key, "iterative", seed)] for seed in seeds]
        cells = []
        for method in ("generator", "generator+iterative"):
            mine = [by[(*key, method, seed)] for seed in seeds]
            deltas = [paired_difference([m[k] for m in mine], [t[k] for t in solver])
                      for k in ("ssim_amp", "ssim_phase")]
            cells.append(" / ".join(format_ci(d["mean"], d["ci95"], 2) for d in deltas))
        speed = mean_ci([t["seconds_per_object"] / m["seconds_per_object"]
                         for t, m in zip(solver, (by[(*key, "generator", seed)] for seed in seeds))])
        lines.append(f"| {key[0]:.0e} | {key[1]} | {key[2]} | {cells[0]} | {speed['mean']:.1f} | {cells[1]} |")
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


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--N", type=bounded_int(4, 1024), default=32, help="patch size (default: 32)")
    p.add_argument("--nphotons", type=comma_numbers(positive_float), default=(1e9,),
                   help="photons a pattern, one regime each, e.g. 1e4,1e6,1e9 (default: 1e9)")
    p.add_argument("--steps", type=comma_numbers(bounded_int(1, 1024)), default=(8,),
                   help="scan steps in px, one regime each (default: 8)")
    p.add_argument("--kinds", type=comma_separated(tuple(OBJECT_KINDS), "object kinds"), default=tuple(OBJECT_KINDS),
                   help=f"test object kinds (default: {','.join(OBJECT_KINDS)})")
    p.add_argument("--seeds", type=bounded_int(1, 100), default=1, help="seeds 0, 1, … (default: 1)")
    p.add_argument("--architecture", choices=("ffno", "fno"), default="ffno", help="generator (default: ffno)")
    p.add_argument("--width", type=bounded_int(1, 512), default=32, help="generator width (default: 32)")
    p.add_argument("--modes", type=bounded_int(1, 512), default=12, help="kept modes (default: 12)")
    p.add_argument("--blocks", type=bounded_int(1, 64), default=4, help="blocks (default: 4)")
    p.add_argument("--nepochs", type=bounded_int(1, 100_000), default=60, help="training epochs (default: 60)")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="Adam rate (default: 0.003)")
    p.add_argument("--poisson-below", type=positive_float, default=1e7,
                   help="regimes with fewer photons a pattern train with the Poisson loss, the others with the "
                   "amplitude MAE (default: 1e7)")
    p.add_argument("--nimgs-train", type=bounded_int(1, 1000), default=8, help="training objects (default: 8)")
    p.add_argument("--nimgs-test", type=bounded_int(1, 1000), default=2, help="test objects a kind (default: 2)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.device == "cuda":
        raise UsageError("--device cuda: the times per object compared here are the CPU's (the GPU step lives in "
                         "gpu_sweep.sh)")
    if args.N % 2 or args.modes > args.N // 2:
        raise UsageError(f"--N must be even and --modes <= N // 2; got N = {args.N}, modes = {args.modes}")
    with command_threads(args.threads):
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args, argv)
        publish(args.output_dir, STEM, record, markdown_report(record), figure)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
