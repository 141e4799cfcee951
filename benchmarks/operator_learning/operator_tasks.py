"""Which init trains best on standard operator-learning tasks: every model × init × seed trained with
neuraloperator's own ``Trainer`` and relative-L2 ``LpLoss``, on Darcy flow (2-D) and Burgers' equation (1-D)
generated here (``benchmarks.pde_tasks``; cached under the output directory, so a rerun skips it).

Each task's data are fixed (``--data-seed``); a seed fixes the model's own weights, the spectral draw and the
batch order, so inits are compared paired by seed. Inputs and targets are standardized per grid point
(neuraloperator's ``UnitGaussianNormalizer``, fit on the training set); the loss is the relative L2 error in
standardized units, the test error the relative L2 error of the decoded prediction. Adam with weight decay
1e-4 and a cosine learning-rate schedule to 0 over the run. Per run: the test error per epoch (and before
training), its final and best values, the steps until it first reaches twice the best final error any init
reached on that model, the wall time, and the audit of the spectral weights at step 0. Paired differences
against each model's ``default`` (its own init) with 95% CIs.

Models (``benchmarks.operator_models``): fno, tfno-tucker, tfno-cp, tfno-tt (neuraloperator) on both tasks;
plain-fno-8 and ffno (this package's 2-D layers) on Darcy. Inits: ``default`` (the model's own),
``calibrated`` (sqrt_in, then ``calibrate_`` on the first training batch), any strategy name, and
``STRATEGY@GAIN`` (e.g. ``sqrt_in@0.1``: a small spectral branch). Runs go to ``--jobs`` worker processes of
one torch thread each, by default one per core (many tiny ops: on a CPU one thread per process uses the cores
best).

    python -m benchmarks.operator_tasks                       # the committed run: 19 min on 2 CPU cores
    python -m benchmarks.operator_tasks --quick               # every model and init, 2 seeds, tiny: a smoke run
    python -m benchmarks.operator_tasks --tasks darcy --models fno,tfno-tt --inits default,sqrt_in@0.1
"""

# Over 400 lines because a study is one module: its flags, its runs, its statistics, its record's
# schema, Markdown report and figure together (benchmarks.replot finds a study by those names in one
# module, and replots a record from it without a list); what studies share is in machinery/.

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from spectral_init import audit

from .machinery.common import (
    Progress,
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
    prepare_output_dir,
    publish,
    resolve_device,
    run_arguments,
    run_cli,
)
from .machinery.figures import bar_groups, merged_series, one_legend, plain_log_ticks, pyplot, style
from .machinery.stats import compare_strategies, mean_ci
from .machinery.workers import (
    JOBS_HELP,
    add_executor_arguments,
    check_executor_flags,
    default_workers,
    results_of,
)
from .operator_models import DEFAULT_INIT, MODELS, apply_init, build_model, init_label, parse_init
from .operator_training import TASK_DIMS, finite, fit, require_packages, task_data, task_split

SCHEMA = "spectral-init/operator-tasks/1"
MODULE, STEM = "benchmarks.operator_tasks", "operator_tasks"
DEFAULT_INITS = ("default", "sqrt_in", "xavier-complex", "kaiming-complex", "edge-of-chaos", "calibrated",
                 "sqrt_in@0.1", "sqrt_in@0.01")
METRICS = ("final_rel_l2", "best_rel_l2", "late_change", "wall_seconds")


@dataclass(frozen=True)
class Sizes:
    """Everything that sets a run's cost; ``--quick`` and the defaults are two of these."""

    darcy_resolution: int
    burgers_resolution: int
    n_train: int
    n_test: int
    width: int
    modes: int
    epochs: int
    batch_size: int
    seeds: int

    def resolution(self, task: str) -> int:
        return self.darcy_resolution if task == "darcy" else self.burgers_resolution


DEFAULT_SIZES = Sizes(darcy_resolution=16, burgers_resolution=128, n_train=160, n_test=100, width=16, modes=12,
                      epochs=10, batch_size=16, seeds=5)
QUICK_SIZES = Sizes(darcy_resolution=16, burgers_resolution=64, n_train=64, n_test=32, width=8, modes=8, epochs=2,
                    batch_size=16, seeds=2)


@dataclass(frozen=True)
class RunJob:
    """One training run, everything a worker process needs."""

    task: str
    resolution: int
    data_file: str
    n_test: int  # the file's last n_test samples are the test set
    model: str
    init: str
    gain: float
    seed: int
    width: int
    modes: int
    epochs: int
    batch_size: int
    lr: float
    device: str

    @property
    def label(self) -> str:
        return init_label(self.init, self.gain)


# --- one run -------------------------------------------------------------------------------------


def _audit_summary(model: torch.nn.Module, rows: bool) -> dict[str, Any]:
    """The step-0 audit: E|w|² over sqrt_in's target (median over the model's spectral weights), flagged
    weights, and (``rows``) every weight's E|w|² and ratios."""
    report = audit(model)
    ratios = [r.ratios["sqrt_in"] for r in report.rows if r.ratios.get("sqrt_in") is not None]
    summary: dict[str, Any] = {
        "weights": len(report.rows),
        "flagged": len(report.flagged),
        "median_ratio_sqrt_in": statistics.median(ratios) if ratios else None,
    }
    if rows:
        summary["rows"] = [{"name": r.name, "kind": r.kind, "second_moment": r.second_moment, "ratios": r.ratios}
                           for r in report.rows]
    return summary


def train_one(job: RunJob) -> dict[str, Any]:
    """``train_run``'s record, or, when the run raised, one that says what it raised (``error``): one
    failing run (calibration refusing a batch, say) must not cost the runs finished before it."""
    try:
        return train_run(job)
    except Exception as exc:  # noqa: BLE001 - any failure of one run is reported with it, not raised
        return {"task": job.task, "model": job.model, "init": job.label, "seed": job.seed, "diverged": True,
                "error": f"{type(exc).__name__}: {exc}"}


def train_run(job: RunJob) -> dict[str, Any]:
    """Build, initialize, audit and train one model; its record (``diverged`` when an error went non-finite)."""
    start = time.perf_counter()
    data = task_split(job.data_file, job.n_test, TASK_DIMS[job.task])
    torch.manual_seed(job.seed)
    model = build_model(job.model, data.dims, job.width, job.modes)
    apply_init(model, job.init, job.gain, job.seed, job.resolution, MODELS[job.model].activation,
               lambda: data.first_batch(job.batch_size))
    step0 = _audit_summary(model, rows=job.seed == 0)
    model = model.to(job.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=job.lr, weight_decay=1e-4)
    curve, train_curve, steps_per_epoch = fit(model, optimizer, data, epochs=job.epochs, batch_size=job.batch_size,
                                              seed=job.seed, device=job.device)
    record = {
        "task": job.task, "model": job.model, "init": job.label, "seed": job.seed,
        "steps_per_epoch": steps_per_epoch, "test_curve": curve, "train_curve": train_curve,
        "audit_step0": step0, "wall_seconds": time.perf_counter() - start,
    }
    if not (finite(curve) and finite(train_curve)):
        return {**record, "diverged": True}
    return {**record, "diverged": False, "initial_rel_l2": curve[0], "final_rel_l2": curve[-1],
            "best_rel_l2": min(curve[1:]), "late_change": late_change(curve)}


def late_change(curve: Sequence[float]) -> float:
    """Relative change of the test error over the last quarter of the epochs (at least one): near 0 when
    training has flattened, negative while it still improves."""
    back = max(1, (len(curve) - 1) // 4)
    return (curve[-1] - curve[-1 - back]) / curve[-1 - back]


# --- the grid ------------------------------------------------------------------------------------


def _refusal(task: str, resolution: int, model: str, init: str, gain: float, width: int, modes: int) -> str | None:
    """Why ``init`` cannot set ``model``'s weights for ``task`` (a strategy that does not model that
    layer, e.g. edge-of-chaos on 1-D layers), tried on a throwaway model; None when it can."""
    dims = TASK_DIMS[task]
    trial = build_model(model, dims, width, modes)
    batch = torch.randn(2, 1, *(resolution,) * dims)
    try:
        apply_init(trial, init, gain, 0, resolution, MODELS[model].activation, lambda: batch)
    except ValueError as exc:
        return str(exc)
    return None


def plan_jobs(args: argparse.Namespace, sizes: Sizes, data_files: dict[str, Path],
              device: str) -> tuple[list[RunJob], list[dict[str, str]]]:
    """Every run of the grid, and the (task, model, init) left out with the reason: a model that does not
    run on the task's rank, an init that refuses the model's layers."""
    jobs, skipped = [], []
    for task in args.tasks:
        resolution = sizes.resolution(task)
        for model in args.models:
            if TASK_DIMS[task] not in MODELS[model].dims:
                skipped.append({"task": task, "model": model, "init": "*",
                                "reason": f"{model} has no {TASK_DIMS[task]}-D layers"})
                continue
            for init, gain in args.inits:
                refusal = _refusal(task, resolution, model, init, gain, sizes.width, sizes.modes)
                if refusal is not None:
                    skipped.append({"task": task, "model": model, "init": init_label(init, gain), "reason": refusal})
                    continue
                for seed in range(sizes.seeds):
                    jobs.append(RunJob(task, resolution, str(data_files[task]), sizes.n_test, model, init, gain, seed,
                                       sizes.width, sizes.modes, sizes.epochs, sizes.batch_size, args.lr, device))
    return jobs, skipped


# Imported once by the fork server that CPU workers start from (benchmarks.machinery.workers): torch, neuraloperator and
# torch._dynamo, which every worker's first Adam step imports.
_WORKER_PRELOAD = ("benchmarks.machinery.common", "benchmarks.operator_models", "torch._dynamo")


def steps_to_reach(curve: Sequence[float], steps_per_epoch: int, threshold: float) -> int | None:
    """Adam steps until the test error (evaluated after each epoch; ``curve[0]`` before training) is first
    ≤ ``threshold``; None if never."""
    for epoch, value in enumerate(curve):
        if value <= threshold:
            return epoch * steps_per_epoch
    return None


def summarize(runs: list[dict[str, Any]], inits: list[str]) -> list[dict[str, Any]]:
    """Per task and model: every init's metrics over seeds, paired differences and error ratios against
    ``default``, and the steps to twice the best final error."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        if not run["diverged"]:
            groups.setdefault((run["task"], run["model"]), []).append(run)
    out = []
    for (task, model), group in groups.items():
        threshold = 2 * min(r["final_rel_l2"] for r in group)
        per_init: dict[str, dict[int, dict[str, float]]] = {}
        steps: dict[str, list[int | None]] = {}
        for r in sorted(group, key=lambda r: r["seed"]):
            per_init.setdefault(r["init"], {})[r["seed"]] = {m: r[m] for m in METRICS}
            steps.setdefault(r["init"], []).append(steps_to_reach(r["test_curve"], r["steps_per_epoch"], threshold))
        ordered = {name: per_init[name] for name in inits if name in per_init}
        compared = compare_strategies(ordered, METRICS, DEFAULT_INIT)
        base = ordered.get(DEFAULT_INIT, {})
        for name, by_seed in ordered.items():
            shared = [s for s in by_seed if s in base]
            ratio = None
            if name != DEFAULT_INIT and shared:
                logs = mean_ci([math.log(by_seed[s]["final_rel_l2"] / base[s]["final_rel_l2"]) for s in shared])
                half = logs["ci95"]
                ratio = {"n": logs["n"], "geometric_mean": math.exp(logs["mean"]),
                         "low": None if half is None else math.exp(logs["mean"] - half),
                         "high": None if half is None else math.exp(logs["mean"] + half)}
            reached = [s for s in steps[name] if s is not None]
            compared[name]["final_ratio_vs_default"] = ratio
            compared[name]["steps_to_2x_best"] = {"reached": len(reached), "of": len(steps[name]),
                                                  **(mean_ci(reached) if reached else {})}
        out.append({"task": task, "model": model, "threshold_rel_l2": threshold, "inits": compared})
    return out


# --- reports -------------------------------------------------------------------------------------


def _ratio_text(ratio: dict[str, Any] | None) -> str:
    if ratio is None:
        return "—"
    if ratio["low"] is None:
        return f"{ratio['geometric_mean']:.2f}×"
    return f"{ratio['geometric_mean']:.2f}× [{ratio['low']:.2f}, {ratio['high']:.2f}]"


def _steps_text(steps: dict[str, Any]) -> str:
    if not steps["reached"]:
        return f"never (0/{steps['of']})"
    text = format_ci(steps["mean"], steps.get("ci95"), 3)
    return text if steps["reached"] == steps["of"] else f"{text} ({steps['reached']}/{steps['of']})"


def _audit_by_variant(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Seed 0's step-0 audit summary per (task, model, init)."""
    return {(r["task"], r["model"], r["init"]): r["audit_step0"] for r in runs if r["seed"] == 0 and "error" not in r}


def markdown_report(record: dict[str, Any]) -> str:
    env, cfg = record["environment"], record["config"]
    lines = [
        *markdown_header("Operator-learning tasks: test relative L2 error per init", env,
                         f"neuralop {env['versions'].get('neuralop')}", f"{cfg['workers']} worker processes"),
        "",
        f"Darcy {cfg['darcy_resolution']}², Burgers {cfg['burgers_resolution']}; {cfg['n_train']} training and "
        f"{cfg['n_test']} test samples; width {cfg['width']}, modes {cfg['modes']}; {cfg['epochs']} epochs of batch "
        f"{cfg['batch_size']} (Adam, lr {cfg['lr']}, cosine to 0); {cfg['seeds']} seeds; mean ± 95% CI over seeds. "
        "×default: the geometric mean over seeds of final error / the same seed's default final error, with its "
        "95% CI (below 1: better than the model's own init). Steps: Adam steps until the test error first reaches "
        "twice the best final error of any init on that model (evaluated once per epoch). Last-quarter change: "
        "the relative change of the test error over the last quarter of the epochs, mean over seeds (near 0: "
        "flattened). Step-0 E|w|²: the "
        "median over the model's spectral weights of E|w|² / sqrt_in's target, before training.",
        "",
    ]
    audits = _audit_by_variant(record["runs"])
    for group in record["summary"]:
        spec = MODELS[group["model"]]
        untrained = min(r["initial_rel_l2"] for r in record["runs"] if not r["diverged"]
                        and (r["task"], r["model"]) == (group["task"], group["model"]))
        threshold = f"Threshold for steps: {group['threshold_rel_l2']:.3g}"
        if untrained <= group["threshold_rel_l2"]:
            threshold += f" (the untrained model's {untrained:.3g} is already below it: the steps say nothing here)"
        lines += [f"## {group['task']} · {group['model']}", "",
                  f"{spec.description}; default: {spec.default}. {threshold}.", "",
                  "| init | final rel. L2 | ×default | Δ final vs default | best rel. L2 | steps to 2× best | "
                  "last-quarter change | step-0 E\\|w\\|²/sqrt_in | wall s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, stats in group["inits"].items():
            m, vs = stats["metrics"], stats["vs_baseline"]
            delta = "—" if vs is None else format_ci(vs["final_rel_l2"]["mean"], vs["final_rel_l2"]["ci95"], 2)
            step0 = audits.get((group["task"], group["model"], name), {}).get("median_ratio_sqrt_in")
            lines.append(
                f"| {name} | {format_ci(m['final_rel_l2']['mean'], m['final_rel_l2']['ci95'])} | "
                f"{_ratio_text(stats['final_ratio_vs_default'])} | {delta} | "
                f"{format_ci(m['best_rel_l2']['mean'], m['best_rel_l2']['ci95'])} | "
                f"{_steps_text(stats['steps_to_2x_best'])} | {m['late_change']['mean']:+.1%} | "
                f"{'—' if step0 is None else f'{step0:.3g}'} | "
                f"{m['wall_seconds']['mean']:.1f} |"
            )
        lines.append("")
    for skip in record["config"]["skipped"]:
        lines.append(f"Not run: {skip['task']} · {skip['model']} · {skip['init']}: {skip['reason'].split('. ')[0]}.")
    if record["diverged"]:
        lines.append(f"Diverged or failed (kept out of the statistics): {len(record['diverged'])} runs: "
                     + ", ".join(f"{d['task']}·{d['model']}·{d['init']} seed {d['seed']}"
                                 + (f" ({d['error']})" if "error" in d else "") for d in record["diverged"]))
    return "\n".join(lines) + "\n"


def _groups_by_task(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_task: dict[str, list[dict[str, Any]]] = {}
    for group in record["summary"]:
        by_task.setdefault(group["task"], []).append(group)
    return by_task


def figure(record: dict[str, Any]) -> Any:
    """Test error per epoch, mean over seeds: one panel per task × model, one line per init."""
    plt = pyplot()
    by_task = _groups_by_task(record)
    if not by_task:
        return None
    inits = record["config"]["inits"]
    columns = max(len(groups) for groups in by_task.values())
    fig, axes = plt.subplots(len(by_task), columns, figsize=(3.2 * columns, 2.9 * len(by_task)), squeeze=False,
                             layout="constrained")
    def mean_curve(task: str, model: str, name: str) -> list[float]:
        curves = [r["test_curve"] for r in record["runs"] if not r["diverged"] and r["task"] == task
                  and r["model"] == model and r["init"] == name]
        return [statistics.fmean(values) for values in zip(*curves)]

    # inits share a line (and one label "a = b") only where their curves are equal in every panel that has
    # them both, so that one name has one label and one colour throughout
    panels = [(task, group) for task, groups in by_task.items() for group in groups]
    everywhere = [(name, [x for task, group in panels if name in group["inits"]
                          for x in mean_curve(task, group["model"], name)]) for name in inits]
    members = {index: label for label, _, index in merged_series(everywhere)}
    for row, (task, groups) in zip(axes, by_task.items()):
        for ax, group in zip(row, groups):
            for index, label in members.items():
                name = inits[index]
                if name in group["inits"]:
                    mean = mean_curve(task, group["model"], name)
                    ax.plot(range(len(mean)), mean, label=label, linewidth=1.2, **style(index))
            ax.set_yscale("log")
            low, high = ax.get_ylim()  # the curves' range: the threshold is drawn inside it, not widening it
            ax.axhline(group["threshold_rel_l2"], color="gray", linewidth=0.8, linestyle=":")
            ax.set_ylim(low, high)
            plain_log_ticks(ax)
            ax.set_title(f"{task} · {group['model']}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel("test relative L2")
            ax.tick_params(labelsize=7)
        for ax in row[len(groups):]:
            ax.set_visible(False)
    one_legend(fig, axes.flat, "init (mean over seeds; dotted: twice the best final error)",
               order=list(members.values()), columns=4)
    return fig


def final_errors_figure(record: dict[str, Any]) -> Any:
    """Final test error per model (groups) and init (marks), mean ± 95% CI over seeds, one panel per task."""
    plt = pyplot()
    by_task = _groups_by_task(record)
    if not by_task:
        return None
    inits = record["config"]["inits"]
    fig, axes = plt.subplots(1, len(by_task), figsize=(6.5 * len(by_task), 4.2), squeeze=False, layout="constrained")
    for ax, (task, groups) in zip(axes[0], by_task.items()):
        shown = [name for name in inits if any(name in g["inits"] for g in groups)]
        series = []
        for name in shown:
            stats = [g["inits"].get(name, {}).get("metrics", {}).get("final_rel_l2") for g in groups]
            series.append((name, [s["mean"] if s else math.nan for s in stats],
                           [(s["ci95"] or 0.0) if s else 0.0 for s in stats]))
        bar_groups(ax, [g["model"] for g in groups], series, styles=[inits.index(n) for n in shown])
        ax.set_title(f"{task}: final test relative L2", fontsize=9)
        ax.set_ylabel("test relative L2 (mean ± 95% CI)")
        ax.tick_params(axis="x", labelsize=7)
    one_legend(fig, axes.flat, "init", order=inits, columns=4)
    return fig


EXTRA_FIGURES = {"final": final_errors_figure}


# --- command line --------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


def _inits_argument(text: str) -> list[tuple[str, float]]:
    items = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not items:
        raise argparse.ArgumentTypeError("give at least one init")
    parsed = []
    for item in items:
        try:
            parsed.append(parse_init(item))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (allowed: default, calibrated, a strategy, STRATEGY@GAIN)") \
                from None
    return list(dict.fromkeys(parsed))


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__, resumable=True)
    p.add_argument("--tasks", type=comma_separated(tuple(TASK_DIMS), "tasks"), default=list(TASK_DIMS),
                   help=f"comma-separated, of {', '.join(TASK_DIMS)}")
    p.add_argument("--models", type=comma_separated(tuple(MODELS), "models"), default=list(MODELS),
                   help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--inits", type=_inits_argument, default=_inits_argument(",".join(DEFAULT_INITS)),
                   help=f"comma-separated (default: {','.join(DEFAULT_INITS)})")
    p.add_argument("--quick", action="store_true",
                   help="small sizes for a smoke run ("
                        + ", ".join(f"{k} {v}" for k, v in asdict(QUICK_SIZES).items())
                        + "); explicit size options still win")
    for field, value in asdict(DEFAULT_SIZES).items():
        high = 10_000 if field in ("n_train", "n_test") else 1000
        p.add_argument(f"--{field.replace('_', '-')}", type=bounded_int(1, high), default=None,
                       help=f"(default: {value}; with --quick {getattr(QUICK_SIZES, field)})")
    p.add_argument("--lr", type=_positive_float, default=3e-3, help="Adam's learning rate")
    p.add_argument("--data-seed", type=bounded_int(0, 2**31 - 1), default=0, help="seed of the generated data")
    p.add_argument("--jobs", type=bounded_int(1, os.cpu_count() or 1), default=None, help=JOBS_HELP)
    add_executor_arguments(p)
    return p


def resolve_sizes(args: argparse.Namespace) -> Sizes:
    base = QUICK_SIZES if args.quick else DEFAULT_SIZES
    sizes = Sizes(**{f: getattr(args, f) if getattr(args, f) is not None else v for f, v in asdict(base).items()})
    if sizes.darcy_resolution < 8 or sizes.burgers_resolution < 8:
        raise UsageError("--darcy-resolution and --burgers-resolution must be at least 8")
    for task in args.tasks:
        resolution = sizes.resolution(task)
        if sizes.modes // 2 > resolution // 2:
            raise UsageError(f"--modes {sizes.modes} keeps frequencies up to {sizes.modes // 2}; {task}'s "
                             f"resolution {resolution} has {resolution // 2}: lower --modes or raise the resolution")
    if sizes.modes < 2:
        raise UsageError(f"--modes must be at least 2 (this package's layers keep modes // 2); got {sizes.modes}")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_executor_flags(args)
    require_packages()
    sizes = resolve_sizes(args)
    inits = [init_label(name, gain) for name, gain in args.inits]
    if not any(TASK_DIMS[t] in MODELS[m].dims for t in args.tasks for m in args.models):
        models = ", ".join(f"{m}: " + "/".join(f"{d}-D" for d in MODELS[m].dims) for m in args.models)
        tasks = ", ".join(f"{t}: {TASK_DIMS[t]}-D" for t in args.tasks)
        raise UsageError(f"no model of --models runs on a task of --tasks ({models}; {tasks})")
    device = resolve_device(args.device)
    workers = args.jobs or default_workers(args.threads, device.type)
    with command_threads(args.threads, quiet=workers > 1):
        previous = prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite, resume=args.resume,
                                      arguments=run_arguments(args))
        argv_used = sys.argv[1:] if argv is None else list(argv)
        record = run(args, sizes, inits, device, workers, argv_used, previous)
        publish(args.output_dir, STEM, record, markdown_report(record), figure, EXTRA_FIGURES,
                tracking=benchmark_tracking(args, STEM))
    return 0


def run(args: argparse.Namespace, sizes: Sizes, inits: list[str], device: torch.device, workers: int,
        argv: list[str], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generate (or read) the data, train the grid, summarize; on Ctrl-C the finished runs are written.
    The runs of an interrupted ``previous`` record are kept, not run again."""
    start = time.perf_counter()
    data_files, generation = {}, {}
    for task in args.tasks:
        resolution = sizes.resolution(task)
        t0 = time.perf_counter()
        path, made = task_data(task, resolution, sizes.n_train + sizes.n_test, args.data_seed,
                               args.output_dir / "data")
        data_files[task] = path
        generation[task] = {"file": path.name, "generated": made, "seconds": time.perf_counter() - t0}
    jobs, skipped = plan_jobs(args, sizes, data_files, str(device))
    if not jobs:
        raise UsageError("nothing to run: " + "; ".join(f"{s['task']} · {s['model']} · {s['init']}: {s['reason']}"
                                                         for s in skipped))
    config = {**asdict(sizes), "tasks": args.tasks, "models": args.models, "inits": inits, "lr": args.lr,
              "data_seed": args.data_seed, "workers": workers, "data": generation, "skipped": skipped}
    runs: list[dict[str, Any]] = list(previous["runs"]) if previous else []
    kept = {(r["task"], r["model"], r["init"], r["seed"]) for r in runs}
    todo = [j for j in jobs if (j.task, j.model, init_label(j.init, j.gain), j.seed) not in kept]

    def record() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, argv), "config": config, "runs": runs,
                "diverged": [{k: r[k] for k in ("task", "model", "init", "seed", "error") if k in r}
                             for r in runs if r["diverged"]]}

    progress = Progress(len(jobs), "operator tasks", enabled=not args.no_progress, initial=len(jobs) - len(todo))
    with keep_finished_runs(args.output_dir, STEM, record, lambda: len(runs), run_arguments(args)):
        for result in results_of(train_one, todo, workers, device.type, _WORKER_PRELOAD, args.executor,
                                 args.executor_config):
            runs.append(result)
            progress.step(f"{result['task']} {result['model']} {result['init']} seed {result['seed']}")
    progress.close()
    runs.sort(key=lambda r: (args.tasks.index(r["task"]), args.models.index(r["model"]), inits.index(r["init"]),
                             r["seed"]))
    if all(r["diverged"] for r in runs):
        errors = [r["error"] for r in runs if "error" in r]
        raise UsageError(f"every run diverged or failed ({len(runs)}): "
                         + (f"the first raised {errors[0]}" if errors else "lower --lr"))
    return {**record(), "summary": summarize(runs, inits), "timings": {"total_seconds": time.perf_counter() - start}}


if __name__ == "__main__":
    sys.exit(run_cli(main))
