"""Train the same physics-informed configuration once per strategy (× input transform) and seed, and compare.

A seed fixes the data, the local weights and the spectral draw, so variants
are compared paired by seed. Per run: the loss curve, the final training loss,
the test errors, the stitched test object's MAE, SSIM and FRC (amplitude and
phase), the steps until the (3-step running mean) loss first reaches a common
threshold, and each block's spectral participation ‖spectral‖/‖local‖ at the
start and at the end. Writes the loss curves (NAME.png) and one seed's
reconstructed objects per variant (NAME_objects.png). On a CPU the runs go to ``--jobs`` worker
processes of one torch thread each (or to a cluster: ``--executor``, docs/cluster.md); the record lists
them in one process's order whichever finished first.

    python -m benchmarks.training_comparison
    python -m benchmarks.training_comparison --strategies legacy,sqrt_in --seeds 5 --nepochs 20
    python -m benchmarks.training_comparison --strategies legacy,sqrt_in --input-transforms none,sqrt,log1p,instancenorm
"""

# Over 400 lines because a study is one module: its flags, its runs, its statistics, its record's
# schema, Markdown report and figure together (benchmarks.replot finds a study by those names in one
# module, and replots a record from it without a list); what studies share is in machinery/.

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

import pydantic
import torch

from ptycho_torch.anchor import ANCHOR_PACKAGE, anchor_available, iterative_reconstruction
from ptycho_torch.anchor import DEFAULT_ITERATIONS as ANCHOR_ITERATIONS
from ptycho_torch.evaluation import evaluate_objects, lattice_floor, reconstruction_metrics
from ptycho_torch.generators.blocks import InputTransformMode
from ptycho_torch.generators.config import ARCHITECTURES
from ptycho_torch.generators.diffraction_input import INPUT_LAYOUTS
from ptycho_torch.scan import tile_side
from ptycho_torch.simulation import SimulationConfig
from ptycho_torch.training import (
    DivergenceError,
    LossScope,
    TrainingConfig,
    TrainResult,
    check_finite_predictions,
    make_datasets,
    train,
)
from spectral_init.cli.progress import Progress
from spectral_init.cli.usage import EXIT_DIVERGED, format_validation_error
from spectral_init.initialize_model import spectral_layer_kinds

from .machinery.common import (
    CALIBRATED,
    UsageError,
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
    refuse_unused,
    resolve_device,
    run_arguments,
    run_cli,
    select_strategies,
    strategy_spec,
)
from .machinery.figures import merged_series, one_legend, pyplot, style
from .machinery.object_grid import object_grid, object_images
from .machinery.stats import compare_strategies, mean_ci, paired_difference
from .machinery.workers import (
    JOBS_HELP,
    add_executor_arguments,
    check_executor_flags,
    default_workers,
    results_of,
)

SCHEMA = "spectral-init/training-comparison/1"
MODULE, STEM = "benchmarks.training_comparison", "training_comparison"
METRICS = (
    "final_train_loss",
    "test_physics_loss",
    "test_amplitude_mae",
    "test_phase_mae",
    "steps_to_threshold",
    "participation_start",
    "participation_end",
)
SMOOTHING = 3
WITHIN_SCOPE = ("final_train_loss", "steps_to_threshold")  # measures of the training loss: Δ within a loss scope
# the stitched test object's quality (ptycho_torch.evaluation); PSNR is left out: infinite for a
# perfect object, it has no mean
RECONSTRUCTION_METRICS = ("mae_amp", "mae_phase", "ssim_amp", "ssim_phase", "frc_amp", "frc_phase",
                          "lattice_amp", "lattice_phase")
INPUT_TRANSFORMS = get_args(InputTransformMode)
LOSS_SCOPES = get_args(LossScope)
OBJECT_SCORES = ("ssim_amp", "ssim_phase", "lattice_amp", "lattice_phase")  # shown with the pictured object
PICTURED_SEED = 0  # whose first test object the objects figure shows


def input_label(variant: tuple[str, str, str], axes: Sequence[Sequence[str]]) -> str:
    """An input variant's name: its layout, transform and loss scope, each where several are compared
    (the transform alone where none is)."""
    parts = [value for value, axis in zip(variant, axes) if len(axis) > 1]
    return " · ".join(parts) or variant[1]


def variant_label(strategy: str, input_name: str, input_names: Sequence[str]) -> str:
    """A run's name in the summary: the strategy, with its input (layout · transform) where several are
    compared."""
    return strategy if len(input_names) == 1 else f"{strategy} · {input_name}"


class EveryRunDiverged(RuntimeError):
    """No run finished: nothing to compare."""

    def __init__(self, diverged: list[dict[str, Any]]) -> None:
        first = diverged[0]
        super().__init__(f"every run diverged ({len(diverged)}; the first, {first['variant']} seed {first['seed']}, "
                         f"at epoch {first['epoch']}, step {first['step']}: {first['what']}): lower --lr")


def steps_to_threshold(step_losses: Sequence[float], threshold: float) -> int | None:
    """First step (1-based) whose running mean over SMOOTHING steps is <= threshold."""
    for end in range(1, len(step_losses) + 1):
        window = step_losses[max(0, end - SMOOTHING) : end]
        if sum(window) / len(window) <= threshold:
            return end
    return None


def default_threshold(runs: list[dict[str, Any]]) -> float:
    """Halfway, in log scale, between the median first-step and the median last-step loss of all runs;
    halfway in linear scale where a loss is not positive (the Poisson loss drops its constant term and
    runs negative, and a geometric mean of two negative losses would be a positive threshold)."""
    first = statistics.median(r["step_losses"][0] for r in runs)
    last = statistics.median(r["step_losses"][-1] for r in runs)
    return math.sqrt(first * last) if first > 0 and last > 0 else (first + last) / 2


def input_variants(args: argparse.Namespace) -> dict[str, tuple[str, str, str]]:
    """Each input variant's name → (layout, transform, loss_on): the layouts crossed with the transforms
    and the loss scopes (``TrainingConfig.loss_on``)."""
    axes = (args.input_layouts, args.input_transforms, args.losses_on)
    return {input_label(variant, axes): variant for variant in itertools.product(*axes)}


def training_config(args: argparse.Namespace, strategy: str, layout: str, transform: str, loss_on: str,
                    seed: int, device: str) -> TrainingConfig:
    """One run of the comparison; pydantic checks every flag that reaches it."""
    return TrainingConfig(
        model=dict(  # N and C come from the data
            architecture=args.architecture, fno_width=args.width, fno_modes=args.modes,
            fno_blocks=args.blocks, spectral_backend=args.backend, input_layout=layout, input_transform=transform,
            spectral_init=strategy_spec(strategy, seed, args.N, "relu" if args.architecture == "plain_fno" else "gelu"),
        ),
        data=SimulationConfig(N=args.N, nimgs_train=args.nimgs_train, nimgs_test=args.nimgs_test,
                              object_size=args.object_size, offset=args.offset, nphotons=args.nphotons,
                              probe_defocus=args.probe_defocus, scan=args.scan),
        nepochs=args.nepochs, batch_size=args.batch_size, lr=args.lr, loss=args.loss, loss_on=loss_on, seed=seed,
        device=device, test_each_epoch=args.test_each_epoch,
    )


def run_scores(result: TrainResult) -> dict[str, Any]:
    """One finished run as the record keeps it, beside its variant and seed."""
    return {
        "patterns": {"train": result.n_train, "test": result.n_test},
        "pattern_dynamic_range": result.pattern_dynamic_range,
        "epoch_losses": result.epoch_losses,
        "epoch_test_losses": result.epoch_test_losses,
        "step_losses": result.step_losses,
        "test": result.test,
        "reconstruction": result.reconstruction,
        "participation": result.participation,
        "seconds": result.timings["total_seconds"],
        "inference_seconds_per_object": result.timings["inference_seconds_per_object"],
    }


def record_config(args: argparse.Namespace, strategies: list[str], baseline: str,
                  input_names: list[str]) -> dict[str, Any]:
    """What was compared, and the training every run shared."""
    shared = ("architecture", "N", "width", "modes", "blocks", "nepochs", "batch_size", "lr", "loss", "nimgs_train",
              "nimgs_test", "object_size", "offset", "nphotons", "probe_defocus", "scan")
    return {"strategies": strategies, "input_transforms": args.input_transforms, "input_layouts": args.input_layouts,
            "losses_on": args.losses_on, "inputs": input_names, "seeds": list(range(args.seeds)),
            "baseline": baseline, **{name: getattr(args, name) for name in shared},
            "backend": args.backend, "test_each_epoch": args.test_each_epoch}


@dataclass(frozen=True)
class TrainingJob:
    """One variant and seed trained and tested: the work of one worker call. ``variant``: its strategy,
    input (layout, transform, loss scope), label and seed, as the record keeps them."""

    variant: dict[str, Any]
    config: TrainingConfig
    keep_picture: bool  # the first test object kept as images, for the objects figure


@dataclass(frozen=True)
class AnchorJob:
    """One seed's test scan reconstructed iteratively (``--anchor``)."""

    seed: int
    config: TrainingConfig
    iterations: int
    device: str
    keep_picture: bool


def run_job(job: TrainingJob | AnchorJob) -> dict[str, Any]:
    """A worker call: the job's finished run (or, for a training that diverged, where it did) as plain data."""
    return anchor_run(job) if isinstance(job, AnchorJob) else train_run(job)


def train_run(job: TrainingJob) -> dict[str, Any]:
    """``{"run": …}`` or ``{"diverged": …}``, with the model's spectral layer kinds and, when kept, its picture."""
    try:
        result = train(job.config)
        check_finite_predictions(result.test_predictions, job.config.nepochs, len(result.step_losses))
    except DivergenceError as exc:  # a finding about this variant, not the end of the others
        return {"diverged": {**job.variant, "epoch": exc.epoch, "step": exc.step, "what": exc.what}}
    picture = None
    if job.keep_picture and result.stitched:  # the first test object
        first = result.stitched[0]
        picture = {"truth": object_images(first.truth),
                   "variant": {"strategy": job.variant["strategy"], "input": job.variant["input"],
                               "images": object_images(first.reconstruction),
                               **{k: first.metrics[k] for k in OBJECT_SCORES}}}
    return {"run": {**job.variant, **run_scores(result)}, "kinds": spectral_layer_kinds(result.model),
            "picture": picture}


# Imported once by the fork server that CPU workers start from (benchmarks.machinery.workers), not by each worker.
_WORKER_PRELOAD = ("ptycho_torch.training", "ptycho_torch.evaluation", "ptycho_torch.anchor",
                   "benchmarks.machinery.object_grid")


def comparison_jobs(args: argparse.Namespace, strategies: list[str], baseline: str,
                    device: torch.device) -> list[TrainingJob | AnchorJob]:
    """Every strategy × input × seed, and with --anchor each seed's iterative reconstruction, in the order
    one process runs them: seed by seed, the variants interleaved within it, so load drifts hit them alike."""
    inputs = input_variants(args)
    input_names = list(inputs)
    jobs: list[TrainingJob | AnchorJob] = []
    for seed in range(args.seeds):
        for strategy in strategies:
            for input_name, (layout, input_transform, loss_on) in inputs.items():
                variant = {"strategy": strategy, "input_transform": input_transform, "input_layout": layout,
                           "loss_on": loss_on, "input": input_name,
                           "variant": variant_label(strategy, input_name, input_names), "seed": seed}
                config = training_config(args, strategy, layout, input_transform, loss_on, seed, device.type)
                jobs.append(TrainingJob(variant, config, keep_picture=seed == PICTURED_SEED))
        if args.anchor:
            config = training_config(args, baseline, *next(iter(inputs.values())), seed, "cpu")
            jobs.append(AnchorJob(seed, config, args.anchor_iterations, str(device), seed == PICTURED_SEED))
    return jobs


def run_comparison(
    args: argparse.Namespace, jobs: list[TrainingJob | AnchorJob], strategies: list[str], baseline: str,
    device: torch.device, workers: int = 1, previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``jobs`` (``comparison_jobs``): every strategy × input × seed trained and tested (and, with
    --anchor, each seed's iterative reconstruction), in this process, on ``workers`` worker processes or on
    the --executor's cluster (the numbers do not depend on where); the runs of an interrupted ``previous``
    record are kept, not run again."""
    inputs = input_variants(args)
    input_names = list(inputs)  # the input axis: every (layout, transform, loss scope) compared
    previous = previous or {}
    runs: list[dict[str, Any]] = list(previous.get("runs", []))
    diverged: list[dict[str, Any]] = list(previous.get("diverged", []))  # out of the statistics, counted beside
    anchor: list[dict[str, Any]] = list(previous.get("anchor", []))
    objects: dict[str, Any] = previous.get("objects") or {"seed": PICTURED_SEED, "truth": None, "variants": []}
    kinds: dict[str, int] = previous.get("spectral_layers", {})
    done = {(r["variant"], r["seed"]) for r in runs + diverged} | {("iterative", a["seed"]) for a in anchor}
    todo = [job for job in jobs if _job_key(job) not in done]
    progress = Progress(len(jobs), "training comparison", enabled=not args.no_progress,
                        initial=len(jobs) - len(todo))
    start = time.perf_counter()

    def partial() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, args.argv),
                "config": {"strategies": strategies, "input_transforms": args.input_transforms,
                           "input_layouts": args.input_layouts, "losses_on": args.losses_on, "inputs": input_names,
                           "baseline": baseline, "workers": workers},
                "runs": runs, "diverged": diverged, "anchor": anchor, "objects": objects, "spectral_layers": kinds}

    with keep_finished_runs(args.output_dir, STEM, partial, lambda: len(runs) + len(anchor), run_arguments(args)):
        for finished in results_of(run_job, todo, workers, device.type, _WORKER_PRELOAD, args.executor,
                                   args.executor_config):
            if "anchor" in finished:
                anchor.append(finished["anchor"])
                if finished["picture"]:
                    objects["iterative"] = finished["picture"]
                progress.step(f"iterative seed {finished['anchor']['seed']}")
            elif "diverged" in finished:
                diverged.append(finished["diverged"])
                progress.step(f"{finished['diverged']['variant']} seed {finished['diverged']['seed']} diverged")
            else:
                runs.append(finished["run"])
                kinds = kinds or finished["kinds"]
                if finished["picture"]:
                    objects["truth"] = objects["truth"] or finished["picture"]["truth"]
                    objects["variants"].append(finished["picture"]["variant"])
                progress.step(f"{finished['run']['variant']} seed {finished['run']['seed']}")
    progress.close()
    if not runs:
        raise EveryRunDiverged(diverged)
    # the order of one process, whichever finished first
    order = {_job_key(job): index for index, job in enumerate(jobs)}
    runs.sort(key=lambda r: order[r["variant"], r["seed"]])
    diverged.sort(key=lambda r: order[r["variant"], r["seed"]])
    anchor.sort(key=lambda a: a["seed"])
    objects["variants"].sort(key=lambda v: order[variant_label(v["strategy"], v["input"], input_names), PICTURED_SEED])
    thresholds, total_steps, summary = summarize(runs, diverged, inputs, strategies, baseline, args.loss_threshold)
    return {
        "schema": SCHEMA, "environment": environment(device, MODULE, args.argv),
        "config": {**record_config(args, strategies, baseline, input_names), "patterns": runs[0]["patterns"],
                   # one threshold per loss scope: a stitched and a per-patch loss differ in kind
                   "loss_threshold": thresholds, "total_steps": total_steps, "workers": workers},
        "spectral_layers": {args.architecture: kinds}, "runs": runs, "diverged": diverged, "summary": summary,
        "anchor": {"runs": anchor, "summary": anchor_summary(anchor)} if anchor else None,
        "objects": objects if objects["truth"] is not None else None,
        "timings": {"total_seconds": time.perf_counter() - start,
                    "median_seconds_per_run": statistics.median(r["seconds"] for r in runs)},
    }


def _job_key(job: TrainingJob | AnchorJob) -> tuple[str, int]:
    return ("iterative", job.seed) if isinstance(job, AnchorJob) else (job.variant["variant"], job.variant["seed"])


def summarize(runs: list[dict[str, Any]], diverged: list[dict[str, Any]], inputs: dict[str, tuple[str, str, str]],
              strategies: list[str], baseline: str, threshold: float | None,
              ) -> tuple[dict[str, float], list[int], dict[str, Any]]:
    """The thresholds (``threshold``, else ``default_threshold``, per loss scope), the step counts and the
    summary of finished ``runs`` (each run's ``steps_to_threshold`` set).

    A training loss and the steps it takes to a threshold mean something only within one loss scope (the
    stitched loss of the same patches can be 700× below the per-patch one): their Δ pairs each variant with
    the baseline strategy's first input of the same scope, and a variant of another scope has none. The
    per-patch test loss and the object's scores are one measure for every scope: Δ against the baseline."""
    input_names = list(inputs)
    scopes = list(dict.fromkeys(loss_on for _, _, loss_on in inputs.values()))
    thresholds = {scope: threshold if threshold is not None else
                  default_threshold([r for r in runs if r["loss_on"] == scope]) for scope in scopes
                  if any(r["loss_on"] == scope for r in runs)}
    total_steps = sorted({len(r["step_losses"]) for r in runs})  # one count per loss scope
    per_seed: dict[str, dict[int, dict[str, float]]] = {}
    for run in runs:
        reached = steps_to_threshold(run["step_losses"], thresholds[run["loss_on"]])
        run["steps_to_threshold"] = reached
        values = per_seed.setdefault(run["variant"], {})[run["seed"]] = {
            "final_train_loss": run["epoch_losses"][-1],
            "test_physics_loss": run["test"]["physics_loss"],
            "test_amplitude_mae": run["test"]["amplitude_mae"],
            "test_phase_mae": run["test"]["phase_mae"],
            # never reached: counted as the run's length, a lower bound (see reached_threshold)
            "steps_to_threshold": float(reached if reached is not None else len(run["step_losses"])),
        }
        if run["participation"]["start"]:  # a plain FNO has no local branch to compare with
            values.update(participation_start=statistics.fmean(run["participation"]["start"]),
                          participation_end=statistics.fmean(run["participation"]["end"]))
        values.update({f"reconstruction_{name}": run["reconstruction"][name] for name in RECONSTRUCTION_METRICS
                       if run["reconstruction"][name] is not None})
    metrics = METRICS if all(r["participation"]["start"] for r in runs) else METRICS[:-2]
    reconstruction = tuple(f"reconstruction_{name}" for name in RECONSTRUCTION_METRICS
                           if all(r["reconstruction"][name] is not None for r in runs))
    summary = compare_strategies(per_seed, metrics + reconstruction,
                                 variant_label(baseline, input_names[0], input_names))
    for scope in scopes:  # the training loss's own measures, Δ within their scope only
        names = [n for n in input_names if inputs[n][2] == scope]
        labels = {variant_label(strategy, n, input_names) for strategy in strategies for n in names}
        within = compare_strategies({label: v for label, v in per_seed.items() if label in labels}, WITHIN_SCOPE,
                                    variant_label(baseline, names[0], input_names))
        for label, entry in within.items():
            if summary[label]["vs_baseline"] is not None:
                summary[label]["vs_baseline"].update(
                    {m: None if entry["vs_baseline"] is None else entry["vs_baseline"][m] for m in WITHIN_SCOPE})
    for strategy in strategies:
        # the input's own effect: each input variant against the first, the init held fixed
        same_init = {label: per_seed[label] for label in (variant_label(strategy, t, input_names) for t in input_names)
                     if label in per_seed}
        by_transform = compare_strategies(same_init, ("test_physics_loss", *reconstruction),
                                          variant_label(strategy, input_names[0], input_names))
        for input_name in input_names:
            label = variant_label(strategy, input_name, input_names)
            if label not in summary:  # every seed of it diverged
                continue
            entry = summary[label]
            layout, input_transform, loss_on = inputs[input_name]
            entry.update(strategy=strategy, input_transform=input_transform, input_layout=layout, loss_on=loss_on,
                         input=input_name,
                         vs_first_transform=by_transform[label]["vs_baseline"],
                         diverged=sum(d["variant"] == label for d in diverged))
            entry["reached_threshold"] = sum(r["steps_to_threshold"] is not None for r in runs
                                             if r["variant"] == label)
            entry["mean_epoch_losses"] = [
                statistics.fmean(v) for v in zip(*(r["epoch_losses"] for r in runs if r["variant"] == label))
            ]
    return thresholds, total_steps, summary


def anchor_run(job: AnchorJob) -> dict[str, Any]:
    """The iterative reconstruction (CDTools, probe known) of one seed's test scan — the same patterns,
    noise and positions the generators are tested on — scored like theirs: ``{"anchor": …, "picture": …}``."""
    _, test_set = make_datasets(job.config)
    result = iterative_reconstruction(test_set, iterations=job.iterations, device=torch.device(job.device),
                                      seed=job.seed)
    stitched = evaluate_objects(result.patches, test_set)
    picture = None
    if job.keep_picture and stitched:
        picture = {"images": object_images(stitched[0].reconstruction),
                   **{k: stitched[0].metrics[k] for k in OBJECT_SCORES}}
    return {"anchor": {"seed": job.seed, "package": result.package, "iterations": result.iterations,
                       "seconds": result.seconds, "seconds_per_object": result.seconds_per_object,
                       "reconstruction": reconstruction_metrics(stitched)},
            "picture": picture}


def anchor_summary(anchor: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± 95% CI over the seeds of the anchor's object metrics and time per object."""
    names = [n for n in RECONSTRUCTION_METRICS if all(a["reconstruction"][n] is not None for a in anchor)]
    return {"metrics": {**{f"reconstruction_{n}": mean_ci([a["reconstruction"][n] for a in anchor]) for n in names},
                        "seconds_per_object": mean_ci([a["seconds_per_object"] for a in anchor])},
            "iterations": anchor[0]["iterations"], "package": anchor[0]["package"]}


def _cell(stat: dict[str, Any], digits: int = 3) -> str:
    return format_ci(stat["mean"], stat["ci95"], digits)


def markdown_report(record: dict[str, Any]) -> str:
    env, cfg = record["environment"], record["config"]
    lines = [
        *markdown_header("Training comparison per init strategy", env,
                         *([f"{cfg['workers']} worker processes of 1 thread"] if cfg.get("workers", 1) > 1 else [])),
        f"{cfg['architecture']}, N={cfg['N']}, width {cfg['width']}, {cfg['blocks']} blocks, {cfg['modes']} modes; "
        f"{cfg['nimgs_train']} training image(s){_patterns(cfg)}, "
        f"{cfg['nepochs']} epochs = {_steps(cfg)} Adam steps "
        f"(lr {cfg['lr']}, batch {cfg['batch_size']}{_stitched_batch(cfg)}), loss `{cfg['loss']}`, "
        f"seeds {cfg['seeds']}. "
        f"Mean ± 95% CI half-width over seeds; Δ paired by seed against `{_baseline_variant(record)}`. "
        f"Threshold for 'steps': {_thresholds_text(cfg['loss_threshold'])}."
        + (f" Inputs (layout · transform): {', '.join(_transforms(record))}." if len(_transforms(record)) > 1 else "")
        + f" Input layout: {', '.join(cfg.get('input_layouts', ['centred']))}; physics loss on "
        + f"{', '.join(cfg.get('losses_on', ['patches']))}; scan {cfg.get('scan', 'grid')}.",
        *_diverged_line(record),
        "",
        "| variant | final train loss | test loss | test amplitude MAE | test phase MAE (rad) "
        "| steps to threshold (reached) | spectral/local start | spectral/local end "
        "| Δ final train loss | Δ test loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for strategy, entry in record["summary"].items():
        m, vs = entry["metrics"], entry["vs_baseline"]
        # no Δ for the baseline, nor for a training-loss measure of another loss scope than its baseline's
        delta = lambda name, vs=vs: "—" if vs is None or vs[name] is None else _cell(vs[name])  # noqa: E731
        lines.append(
            f"| {strategy} | {_cell(m['final_train_loss'])} | {_cell(m['test_physics_loss'])} "
            f"| {_cell(m['test_amplitude_mae'])} | {_cell(m['test_phase_mae'])} "
            f"| {_cell(m['steps_to_threshold'])} ({entry['reached_threshold']}/{m['steps_to_threshold']['n']}) "
            f"| {_cell(m['participation_start']) if 'participation_start' in m else '—'} "
            f"| {_cell(m['participation_end']) if 'participation_end' in m else '—'} "
            f"| {delta('final_train_loss')} | {delta('test_physics_loss')} |"
        )
    lines += _reconstruction_table(record)
    lines += _transform_table(record)
    return "\n".join(lines) + "\n"


def _thresholds_text(thresholds: float | dict[str, float]) -> str:
    """One threshold (records before loss scopes), or one per loss scope."""
    if not isinstance(thresholds, dict):
        return f"{thresholds:.4g}"
    if len(thresholds) == 1:
        return f"{next(iter(thresholds.values())):.4g}"
    return (", ".join(f"{value:.4g} ({scope} loss)" for scope, value in thresholds.items())
            + "; a training loss's Δ (final loss, steps) is taken within its loss scope only")


def _steps(cfg: dict[str, Any]) -> str:
    """The Adam steps of a run: one count, or (loss scopes stepping differently) the lowest and highest."""
    steps = cfg["total_steps"] if isinstance(cfg["total_steps"], list) else [cfg["total_steps"]]
    return str(steps[0]) if len(steps) == 1 else f"{steps[0]}–{steps[-1]}"


def _stitched_batch(cfg: dict[str, Any]) -> str:
    """What a step of the stitched loss holds, where it ran: whole objects, or tiles of a larger scan."""
    if "stitched" not in cfg.get("losses_on", []):
        return ""
    per_object = cfg["patterns"]["train"] // cfg["nimgs_train"]
    tile = tile_side(cfg["batch_size"], math.isqrt(per_object))
    if tile is None:
        objects = max(1, round(cfg["batch_size"] / per_object))
        return f"; stitched: {objects} whole object{'s' if objects > 1 else ''} of {per_object} patterns a step"
    return f"; stitched: tiles of {tile} × {tile} neighbouring patterns a step"


def _patterns(cfg: dict[str, Any]) -> str:
    patterns = cfg.get("patterns")  # records before it was kept lack it
    return f" ({patterns['train']} patterns; {patterns['test']} to test)" if patterns else ""


def _diverged_line(record: dict[str, Any]) -> list[str]:
    diverged = record.get("diverged") or []
    if not diverged:
        return []
    return ["", f"Diverged, kept out of the statistics ({len(diverged)}): " + "; ".join(
        f"{d['variant']} seed {d['seed']} at epoch {d['epoch']}, step {d['step']}: {d['what']}" for d in diverged)
        + "."]


def _transforms(record: dict[str, Any]) -> list[str]:
    """The input variants compared (records before layouts: the transforms; before transforms: none)."""
    cfg = record["config"]
    return cfg.get("inputs") or cfg.get("input_transforms", ["none"])


def _baseline_variant(record: dict[str, Any]) -> str:
    transforms = _transforms(record)
    return variant_label(record["config"]["baseline"], transforms[0], transforms)


def _transform_table(record: dict[str, Any]) -> list[str]:
    """Each input transform against the first, the init held fixed: the transform's own effect."""
    transforms = _transforms(record)
    if len(transforms) < 2:
        return []
    names = ["test_physics_loss"] + [f"reconstruction_{n}" for n in ("ssim_amp", "ssim_phase", "lattice_amp",
                                                                      "lattice_phase", "mae_amp", "mae_phase")]
    names = [n for n in names if all(n in e["metrics"] for e in record["summary"].values())]
    lines = ["", f"Input against `{transforms[0]}`, the init held fixed (Δ paired by seed):", "",
             "| strategy | input | " + " | ".join(f"Δ {n.removeprefix('reconstruction_')}" for n in names)
             + " |", "|---|---|" + "---|" * len(names)]
    for entry in record["summary"].values():
        vs = entry["vs_first_transform"]
        if vs is not None:
            lines.append(f"| {entry['strategy']} | {entry.get('input', entry['input_transform'])} | "
                         + " | ".join(_cell(vs[n]) for n in names) + " |")
    return lines


def _reconstruction_table(record: dict[str, Any]) -> list[str]:
    """The stitched test object per strategy (records made before it was measured have none), the
    iterative anchor's last where it ran, and each one's time per object."""
    names = [n for n in RECONSTRUCTION_METRICS
             if all(f"reconstruction_{n}" in e["metrics"] for e in record["summary"].values())]
    if not names:
        return []
    lines = ["", f"Stitched test object (phase offset and plane removed; FRC: ½-bit threshold, cycles/px; "
             "lattice: the share of the error's power that repeats with the scan step, "
             f"{_lattice_floor_text(record)}); Δ SSIM paired by seed against `{_baseline_variant(record)}`; "
             "time: per test object, the generator's inference or the iterative solver's reconstruction:", "",
             "| variant | " + " | ".join(names) + " | Δ ssim_amp | Δ ssim_phase | time per object (s) |",
             "|---|" + "---|" * (len(names) + 3)]
    for strategy, entry in record["summary"].items():
        m, vs = entry["metrics"], entry["vs_baseline"]
        deltas = ["—" if vs is None or f"reconstruction_{n}" not in vs else _cell(vs[f"reconstruction_{n}"])
                  for n in ("ssim_amp", "ssim_phase")]
        times = [r["inference_seconds_per_object"] for r in record["runs"]
                 if r.get("variant", r["strategy"]) == strategy and "inference_seconds_per_object" in r]
        lines.append(f"| {strategy} | " + " | ".join(_cell(m[f"reconstruction_{n}"]) for n in names)
                     + f" | {' | '.join(deltas)} | {_cell(mean_ci(times)) if times else '—'} |")
    anchor = record.get("anchor")
    if anchor:
        m = anchor["summary"]["metrics"]
        lines.append(f"| iterative ({anchor['summary']['package']}, {anchor['summary']['iterations']} iterations) | "
                     + " | ".join(_cell(m[f"reconstruction_{n}"]) if f"reconstruction_{n}" in m else "—"
                                  for n in names)
                     + f" | — | — | {_cell(m['seconds_per_object'])} |")
        lines += _against_the_anchor(record)
    return lines


def _against_the_anchor(record: dict[str, Any]) -> list[str]:
    """Each variant's object against the iterative one of the same seed (the same test scan): paired Δ."""
    names = ("ssim_amp", "ssim_phase", "mae_amp", "mae_phase")
    iterative = {a["seed"]: a["reconstruction"] for a in record["anchor"]["runs"]}
    lines = ["", "Each variant's object against the iterative reconstruction of the same scan (Δ = variant − "
             "iterative, paired by seed; SSIM: below 0 is worse, MAE: above 0 is worse):", "",
             "| variant | " + " | ".join(f"Δ {n}" for n in names) + " |", "|---|" + "---|" * len(names)]
    for label in record["summary"]:
        runs = [r for r in record["runs"] if r.get("variant", r["strategy"]) == label and r["seed"] in iterative]
        cells = []
        for n in names:
            pairs = [(r["reconstruction"][n], iterative[r["seed"]][n]) for r in runs]
            pairs = [(v, b) for v, b in pairs if v is not None and b is not None]
            cells.append(_cell(paired_difference(*zip(*pairs))) if pairs else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _lattice_floor_text(record: dict[str, Any]) -> str:
    """The lattice share an error unrelated to the scan would have, from the first stored object's box."""
    objects = record.get("objects")
    if not objects:
        return "its floor for independent noise is (step² − 1)/(pixels − 1)"
    height, width = objects["truth"]["amplitude"]["shape"]
    cfg = record["config"]
    step = cfg.get("offset") or max(1, cfg["N"] // 4)
    return f"{lattice_floor((height, width), step):.3f} for independent noise on this {height} × {width} px box"


def _variant_style(record: dict[str, Any], label: str) -> dict[str, Any]:
    """Colour by strategy, line style by input, so that either reads across the curves; with one strategy,
    colour by input too (one colour for every curve would leave the dashes alone to tell them apart)."""
    entry = record["summary"][label]
    strategies = list(dict.fromkeys(e.get("strategy", name) for name, e in record["summary"].items()))
    transform_index = _transforms(record).index(entry.get("input", entry.get("input_transform", "none")))
    colour = strategies.index(entry.get("strategy", label)) if len(strategies) > 1 else transform_index
    return style(colour, dash=transform_index)


def _mean_and_range(series: list[list[float]]) -> tuple[tuple[float, ...], ...]:
    return (tuple(statistics.fmean(v) for v in zip(*series)), tuple(min(v) for v in zip(*series)),
            tuple(max(v) for v in zip(*series)))


def figure(record: dict[str, Any]) -> Any:
    """Training loss per step (and test loss per epoch, where it was measured) per variant: mean over
    seeds, the seeds' range shaded; equal curves drawn once."""
    plt = pyplot()
    variant = lambda run: run.get("variant", run["strategy"])  # noqa: E731  (records before variants)
    tested = all(r.get("epoch_test_losses") and None not in r["epoch_test_losses"] for r in record["runs"])
    fig, axes = plt.subplots(1, 2 if tested else 1, figsize=(12 if tested else 7.5, 4.8), layout="constrained",
                             squeeze=False)
    scopes = record["config"].get("losses_on") or ["patches"]
    panels = [("step_losses", "Adam step", f"training loss ({record['config']['loss']}, per step, on "
               f"{' or '.join(scopes)})")]
    if tested:
        panels.append(("epoch_test_losses", "epoch", f"test loss ({record['config']['loss']}, per patch)"))
    for ax, (key, xlabel, ylabel) in zip(axes[0], panels):
        curves = {label: _mean_and_range([r[key] for r in record["runs"] if variant(r) == label])
                  for label in record["summary"]}
        for label, _, index in merged_series((name, curve[0]) for name, curve in curves.items()):
            name = list(curves)[index]
            mean, low, high = curves[name]
            x = range(1, len(mean) + 1)
            drawn = _variant_style(record, name)
            ax.plot(x, mean, label=label, **drawn)
            ax.fill_between(x, low, high, alpha=0.12, color=drawn["color"])
        if key == "step_losses":
            thresholds = record["config"]["loss_threshold"]
            thresholds = thresholds if isinstance(thresholds, dict) else {"": thresholds}
            for (scope, value), dots in zip(thresholds.items(), (":", "-.")):
                ax.axhline(value, color="gray", linestyle=dots, linewidth=1,
                           label="threshold for 'steps'" + (f" ({scope} loss)" if len(thresholds) > 1 else ""))
        if all(v > 0 for r in record["runs"] for v in r[key]):  # the Poisson loss runs negative: linear then
            ax.set_yscale("log")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{record['config']['architecture']}: {ylabel.split(' (')[0]}, mean over "
                     f"{len(record['config']['seeds'])} seeds, range shaded", fontsize=9)
    one_legend(fig, axes[0], "variant", columns=5 if tested else 3)  # one panel: a narrower figure
    return fig


def objects_figure(record: dict[str, Any]) -> Any:
    """One seed's stitched test objects per variant (records without them: None, no file)."""
    if not record.get("objects"):
        return None
    cfg = record["config"]
    strategies = list(dict.fromkeys(e.get("strategy", n) for n, e in record["summary"].items()))
    return object_grid(record["objects"], strategies, _transforms(record),
                       f"{cfg['architecture']}, N={cfg['N']}, {cfg['nepochs']} epochs: seed "
                       f"{record['objects']['seed']}'s first test object, phase offset and plane removed; "
                       "every panel on the truth's colour scale")


EXTRA_FIGURES = {"objects": objects_figure}  # NAME_objects.png


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__, resumable=True)
    p.add_argument("--strategies", default=None, help="comma-separated (default: every registered one)")
    p.add_argument("--seeds", type=bounded_int(1, 1000), default=3, help="seeds per strategy")
    p.add_argument("--baseline", default="legacy", help="strategy the paired differences are taken against")
    p.add_argument(
        "--architecture", choices=ARCHITECTURES, default="fno", help=f"generator to train: {', '.join(ARCHITECTURES)}"
    )
    p.add_argument("--N", type=int, default=64, help="patch size (even)")
    p.add_argument("--width", type=int, default=32, help="channels in the spectral blocks (fno_width)")
    p.add_argument("--modes", type=int, default=12, help="kept modes, at most N // 2 (fno_modes)")
    p.add_argument("--blocks", type=int, default=4, help="spectral blocks (fno_blocks; plain_fno: depth)")
    p.add_argument("--nepochs", type=int, default=6, help="passes over the training patches")
    p.add_argument("--batch-size", type=int, default=16, help="patches per Adam step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--loss", choices=("mae", "poisson"), default="mae", help="physics loss")
    p.add_argument("--nimgs-train", type=int, default=4, help="simulated objects to train on")
    p.add_argument("--nimgs-test", type=int, default=1, help="simulated objects to test on")
    p.add_argument("--object-size", type=int, default=None, help="object canvas in px (default 2·N)")
    p.add_argument("--offset", type=int, default=None,
                   help="scan step in px (default N // 4); patterns per object: ((object size − N) // offset + 1)²")
    p.add_argument(
        "--loss-threshold",
        type=positive_float,
        default=None,
        help="absolute training-loss threshold (default: halfway in log scale between median first and last loss)",
    )
    p.add_argument(
        "--backend",
        choices=("fallback", "neuralop"),
        default="fallback",
        help="2-D spectral layer: fallback = this package's SpectralConv2d",
    )
    p.add_argument(
        "--input-transforms",
        type=comma_separated(INPUT_TRANSFORMS, "input transforms"),
        default="none",
        help=f"comma-separated, crossed with the strategies ({', '.join(INPUT_TRANSFORMS)}); "
        "the first is the one the others are compared with",
    )
    p.add_argument(
        "--input-layouts",
        type=comma_separated(INPUT_LAYOUTS, "input layouts"),
        default="real_space",
        help=f"comma-separated, crossed with the strategies and transforms ({', '.join(INPUT_LAYOUTS)}); "
        "centred is the input before the scan-lattice fix",
    )
    p.add_argument(
        "--losses-on",
        type=comma_separated(LOSS_SCOPES, "loss scopes"),
        default="stitched",
        help=f"comma-separated, crossed with the layouts ({', '.join(LOSS_SCOPES)}): what the physics loss "
        "compares, the patches re-extracted from each stitched object or each patch alone (the loss before "
        "the scan-lattice fix)",
    )
    p.add_argument("--scan", choices=("grid", "random", "spiral"), default="grid",
                   help="scan positions: a square grid of step --offset, or as many at its density drawn at "
                   "random or on a Fermat spiral (sub-pixel)")
    p.add_argument("--nphotons", type=float, default=1e9, help="mean photons per diffraction pattern")
    p.add_argument("--probe-defocus", type=float, default=0.0,
                   help="the disk probe's quadratic phase in rad at its edge (0: flat), |d| <= π·N/8")
    p.add_argument("--anchor", action="store_true",
                   help=f"also reconstruct each seed's test scan iteratively with CDTools ({ANCHOR_PACKAGE}, "
                   "the 'anchor' extra), the probe known: the 'iterative' row")
    p.add_argument("--anchor-iterations", type=bounded_int(1, 100_000), default=ANCHOR_ITERATIONS,
                   help="passes of CDTools' Adam reconstructor over each object's patterns (its epochs)")
    p.add_argument("--test-each-epoch", action="store_true",
                   help="also the test loss after every epoch (to see whether it has flattened)")
    p.add_argument(
        "--calibrated",
        action="store_true",
        help="add the variant 'calibrated': sqrt_in, then calibrate_ on the first training batch",
    )
    p.add_argument("--jobs", type=bounded_int(1, os.cpu_count() or 1), default=None, help=JOBS_HELP)
    add_executor_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    check_executor_flags(args)
    if not args.anchor:
        refuse_unused(parser, args, ("--anchor-iterations",), "without --anchor")
    strategies, baseline = select_strategies(args.strategies, args.baseline)
    if args.calibrated:
        strategies.append(CALIBRATED)
    device = resolve_device(args.device)
    # a worker call trains one variant at one seed (or reconstructs one seed's scan): never more workers than those
    units = (len(strategies) * len(input_variants(args)) + args.anchor) * args.seeds
    workers = min(args.jobs or default_workers(args.threads, device.type), units)
    with command_threads(args.threads, quiet=workers > 1):
        return _main(args, strategies, baseline, device, workers)


def _main(args: argparse.Namespace, strategies: list[str], baseline: str, device: torch.device,
          workers: int) -> int:
    if args.anchor and not anchor_available():
        raise UsageError(f"--anchor needs CDTools: pip install '{ANCHOR_PACKAGE}' (or the 'anchor' extra)")
    if args.loss_threshold is not None and len(args.losses_on) > 1:
        raise UsageError("--loss-threshold is one absolute training loss, and the loss scopes of --losses-on "
                         f"({', '.join(args.losses_on)}) measure different things: leave it out (each scope gets "
                         "its own default threshold), or compare one scope")
    try:  # every run's configuration, before any training starts
        jobs = comparison_jobs(args, strategies, baseline, device)
    except pydantic.ValidationError as exc:
        raise UsageError(format_validation_error(exc, "training configuration")) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    previous = prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite, resume=args.resume,
                                  arguments=run_arguments(args))
    try:
        record = run_comparison(args, jobs, strategies, baseline, device, workers, previous)
    except EveryRunDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    markdown = markdown_report(record)
    publish(args.output_dir, STEM, record, markdown, figure, EXTRA_FIGURES,
            tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
