"""Which change makes the learned reconstruction better on objects it never saw: the generator of
``learned_vs_iterative`` trained as it is (``baseline``) and with one change at a time, in one regime,
each change scored by its SSIM difference from the baseline paired by seed on the same unseen test scans.

The changes (``VARIANTS``; each relative to the flags, which set the baseline):

- ``more-data``: 4× the training objects;
- ``diverse``: the training objects alternate "lines" and random smooth objects (``smooth`` is then no
  longer an unseen kind; the Siemens star and the natural images still are);
- ``longer``: 3× the epochs;
- ``wider``: 2× the width (channels);
- ``other-architecture``: the FNO generator (PtychoBlocks) where the baseline is the FFNO, and back;
- ``other-loss``: the Poisson loss where the baseline trains with the amplitude MAE (at or above
  ``--poisson-below`` photons), and back.

Beside them, rPIE to convergence on the baseline's test scans (``ptycho_torch.solvers``), the gap every
variant is trying to close.

    python -m benchmarks.generator_variants --output-dir benchmarks/results/cpu-2core/generator-variants
"""

# One study: the trainings per variant and seed, the generator's and the solver's scores, the paired
# differences, the report and the figure.

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ptycho_torch.simulation import OBJECT_KINDS
from ptycho_torch.solvers import object_ssim, solve_to_convergence
from ptycho_torch.training import predict_patches, train

from .learned_vs_iterative import add_generator_arguments, check_study_flags, test_scan, training_config
from .machinery.common import (
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    comma_separated,
    command_threads,
    environment,
    format_ci,
    keep_finished_runs,
    markdown_header,
    positive_float,
    prepare_output_dir,
    publish,
    run_cli,
)
from .machinery.figures import one_legend, pyplot, style
from .machinery.stats import mean_ci, paired_difference

SCHEMA = "spectral-init/generator-variants/1"
MODULE, STEM = "benchmarks.generator_variants", "generator_variants"
BASELINE = "baseline"

# name: (what changes, the flags it overrides as a function of the baseline's)
VARIANTS: dict[str, tuple[str, Callable[[argparse.Namespace], dict[str, Any]]]] = {
    BASELINE: ("as the flags set it", lambda a: {}),
    "more-data": ("4× the training objects", lambda a: {"nimgs_train": 4 * a.nimgs_train}),
    "diverse": ("training objects alternate lines and smooth", lambda a: {"train_kinds": ["lines", "smooth"]}),
    "longer": ("3× the epochs", lambda a: {"nepochs": 3 * a.nepochs}),
    "wider": ("2× the width", lambda a: {"width": 2 * a.width}),
    "other-architecture": ("the other generator (fno ↔ ffno)",
                           lambda a: {"architecture": "fno" if a.architecture == "ffno" else "ffno"}),
    # the baseline's loss is Poisson below --poisson-below photons: a threshold of 0 or ∞ picks the other one
    "other-loss": ("the other physics loss (Poisson ↔ amplitude MAE)",
                   lambda a: {"poisson_below": 0.0 if a.nphotons < a.poisson_below else float("inf")}),
}
SCORES = ("ssim_amp", "ssim_phase")


def variant_arguments(args: argparse.Namespace, variant: str) -> argparse.Namespace:
    """The flags with ``variant``'s change applied."""
    return argparse.Namespace(**{**vars(args), **VARIANTS[variant][1](args)})


def run(args: argparse.Namespace, rows: list[dict[str, Any]], trainings: list[dict[str, Any]]) -> None:
    """Every variant and seed trained and scored into ``rows`` and ``trainings``; the solver's rows on the
    baseline's scans."""
    for seed in range(args.seeds):
        for variant in args.variants:
            config = training_config(variant_arguments(args, variant), args.nphotons, args.step, seed)
            result = train(config)
            trainings.append({"variant": variant, "seed": seed, "seconds": result.timings["train_seconds"],
                              "final_loss": result.epoch_losses[-1]})
            for kind in args.kinds:
                data = test_scan(config, kind, seed, result.intensity_scale)
                start = time.perf_counter()
                patches = predict_patches(result.model, data, config.infer_batch_size, torch.device("cpu"))
                seconds = time.perf_counter() - start
                rows.append({"method": "generator", "variant": variant, "object_kind": kind, "seed": seed,
                             **object_ssim(patches, data), "seconds_per_object": seconds / config.data.nimgs_test})
                if variant == BASELINE:
                    solve = solve_to_convergence(data, seed=seed)
                    rows.append({"method": "iterative", "variant": None, "object_kind": kind, "seed": seed,
                                 **object_ssim(solve.patches, data), "seconds_per_object": solve.seconds_per_object,
                                 "iterations": solve.iterations})
                print(f"seed {seed}, {variant}, {kind}: " + ", ".join(
                    f"{r['method']} {r['ssim_amp']:.3f}/{r['ssim_phase']:.3f}"
                    for r in rows[-(2 if variant == BASELINE else 1):]), file=sys.stderr)


def summarize(rows: list[dict[str, Any]], variants: Sequence[str], kinds: Sequence[str]) -> list[dict[str, Any]]:
    """Per variant (and the solver) × kind, and over every kind ("all"): mean ± 95% CI of each SSIM over
    seeds (or seed × kind), and the paired difference from the baseline (the solver: the baseline's gap)."""
    def pick(method: str, variant: str | None, kind: str) -> dict[tuple[int, str], dict[str, Any]]:
        return {(r["seed"], r["object_kind"]): r for r in rows
                if r["method"] == method and r["variant"] == variant and kind in ("all", r["object_kind"])}

    out = []
    for kind in [*kinds, "all"]:
        base = pick("generator", BASELINE, kind)
        for method, variant in [*(("generator", v) for v in variants), ("iterative", None)]:
            mine = pick(method, variant, kind)
            pairs = sorted(set(mine) & set(base))
            out.append({"method": method, "variant": variant, "object_kind": kind,
                        **{key: mean_ci([mine[p][key] for p in sorted(mine)]) for key in SCORES},
                        "vs_baseline": (None if variant == BASELINE or not pairs else
                                        {key: paired_difference([mine[p][key] for p in pairs],
                                                                [base[p][key] for p in pairs]) for key in SCORES})})
    return out


def markdown_report(record: dict[str, Any]) -> str:
    cfg = record["config"]
    seconds = {v: mean_ci([t["seconds"] for t in record["trainings"] if t["variant"] == v])["mean"]
               for v in cfg["variants"]}
    lines = [*markdown_header("Which change makes the generator better on unseen objects", record["environment"]),
             f"Regime: {cfg['nphotons']:.0e} photons a pattern, scan step {cfg['step']} px, N = {cfg['N']}. "
             f"Baseline: {cfg['architecture']}, width {cfg['width']}, {cfg['modes']} modes, {cfg['blocks']} blocks, "
             f"{cfg['nimgs_train']} lines objects, {cfg['nepochs']} epochs, lr {cfg['lr']:g}; each variant changes "
             f"one thing. Test: {cfg['nimgs_test']} unseen object(s) of each kind a seed, {cfg['seeds']} seeds. "
             "Δ: the variant's SSIM minus the baseline's on the same scans, paired by seed (by seed and kind "
             "over all kinds), mean ± 95% CI; for rPIE to convergence, the baseline's gap to it.", "",
             "| variant | change | object kind | SSIM amplitude | SSIM phase | Δ amplitude | Δ phase "
             "| training s |", "|---|---|---|---|---|---|---|---|"]
    for s in record["summary"]:
        name = s["variant"] or "rPIE (converged)"
        change = VARIANTS[s["variant"]][0] if s["variant"] else "—"
        delta = s["vs_baseline"] or {}
        cells = [format_ci(delta[k]["mean"], delta[k]["ci95"], 2) if k in delta else "" for k in SCORES]
        train_s = f"{seconds[s['variant']]:.3g}" if s["variant"] else ""
        lines.append(f"| {name} | {change} | {s['object_kind']} | "
                     f"{format_ci(s['ssim_amp']['mean'], s['ssim_amp']['ci95'])} | "
                     f"{format_ci(s['ssim_phase']['mean'], s['ssim_phase']['ci95'])} | {cells[0]} | {cells[1]} "
                     f"| {train_s} |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Δ SSIM from the baseline (amplitude, phase) per test kind and over all: one mark per variant (and
    the converged solver), with its 95% CI."""
    plt = pyplot()
    kinds = [*record["config"]["kinds"], "all"]
    entries = [s for s in record["summary"] if s["vs_baseline"] is not None]
    names = list(dict.fromkeys(s["variant"] or "rPIE (converged)" for s in entries))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    width = 0.8 / max(len(names), 1)
    for ax, key, label in zip(axes, SCORES, ("amplitude", "phase")):
        for i, name in enumerate(names):
            points = {s["object_kind"]: s["vs_baseline"][key] for s in entries
                      if (s["variant"] or "rPIE (converged)") == name}
            xs = [g + (i - (len(names) - 1) / 2) * width for g, k in enumerate(kinds) if k in points]
            ax.errorbar(xs, [points[k]["mean"] for k in kinds if k in points],
                        yerr=[points[k]["ci95"] or 0 for k in kinds if k in points], fmt="o", capsize=2,
                        label=name, color=style(i)["color"])
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.set_xticks(range(len(kinds)), kinds)
        ax.set_xlabel("unseen test objects (all: every kind, paired by seed and kind)")
        ax.set_ylabel(f"Δ SSIM of the {label} from the baseline")
        ax.set_title(f"{label.capitalize()}: each change's paired difference, 95% CI", fontsize=9)
    one_legend(fig, axes, "variant (rPIE: the baseline's gap to the converged solver)")
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--variants", type=comma_separated(tuple(VARIANTS), "variants"), default=list(VARIANTS),
                   help=f"the changes to try, the baseline always among them (default: {','.join(VARIANTS)})")
    p.add_argument("--nphotons", type=positive_float, default=1e6, help="photons a pattern (default: 1e6)")
    p.add_argument("--step", type=bounded_int(1, 1024), default=8, help="scan step in px (default: 8)")
    p.add_argument("--kinds", type=comma_separated(tuple(OBJECT_KINDS), "object kinds"),
                   default=[k for k in OBJECT_KINDS if k != "lines"],
                   help="test object kinds (default: every kind but lines, which the baseline trains on)")
    p.add_argument("--seeds", type=bounded_int(1, 100), default=3, help="seeds 0, 1, … (default: 3)")
    p.add_argument("--N", type=bounded_int(4, 1024), default=32, help="patch size (default: 32)")
    add_generator_arguments(p)  # the baseline's; more-data, longer and wider scale --nimgs-train, --nepochs, --width
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.variants = [BASELINE, *(v for v in args.variants if v != BASELINE)]
    args.train_kinds = ["lines"]
    check_study_flags(args)
    rows: list[dict[str, Any]] = []
    trainings: list[dict[str, Any]] = []
    start = time.perf_counter()

    def record() -> dict[str, Any]:
        config = {k: getattr(args, k) for k in ("variants", "nphotons", "step", "kinds", "seeds", "N", "architecture",
                                                 "width", "modes", "blocks", "nepochs", "lr", "poisson_below",
                                                 "nimgs_train", "nimgs_test")}
        return {"schema": SCHEMA, "environment": environment(torch.device("cpu"), MODULE, argv), "config": config,
                "trainings": trainings, "rows": rows,
                "timings": {"total_seconds": time.perf_counter() - start}}

    with command_threads(args.threads):
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        with keep_finished_runs(args.output_dir, STEM, record, lambda: len(trainings)):
            run(args, rows, trainings)
        full = {**record(), "summary": summarize(rows, args.variants, args.kinds)}
        publish(args.output_dir, STEM, full, markdown_report(full), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
