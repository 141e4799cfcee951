"""Does the best learning rate stay put as the kept modes K grow? The standard parametrization against μP
(Li, Yoo & Yang 2025), on Darcy flow (2-D) and Burgers' equation (1-D) with neuraloperator's FNO and its
``Trainer`` (``benchmarks.operator_training``: the same data, split, loss and schedule as
``benchmarks.operator_tasks``).

Per task, a grid of Adam learning rates × kept modes K (neuraloperator's ``n_modes`` per axis) × seeds, under
two parametrizations:

- ``standard``: the FNO as its constructor draws it (neuraloperator's ``init_std='auto'``), one learning rate
  for every parameter;
- ``mup``: the ``mup`` strategy with the task's smallest K as the base (``base_modes_of`` a model at that K),
  and ``mup_param_groups``: the spectral weights' rate × √(log N_b / log N), every other parameter at the rate.

At the base K the two coincide in E|w|² (neuraloperator's auto std is xavier's, = sqrt_in for in = out).
Reported per task and parametrization: the best rate at each K (the grid rate with the lowest mean over
seeds of log final test error), its drift across K in factors of 2 (log₂ of the best rate at the largest K
over the best at the base), and the cost of transferring: the error at the largest K with the base's best
rate over its error at its own best rate. Both with 95% bootstrap intervals over seeds (the seeds resampled
together, so every cell keeps its pairing; with 3 seeds the bootstrap has only 10 distinct resamples, so
read the intervals as coarse). A run whose error goes non-finite counts as infinitely bad.

    python -m benchmarks.lr_transfer                  # the committed run (20 min on 2 busy CPU cores)
    python -m benchmarks.lr_transfer --quick          # a smoke run
    python -m benchmarks.lr_transfer --tasks burgers --burgers-modes 8,16,32,64,128 --burgers-resolution 256
"""

# Over 400 lines because a study is one module: its flags, its runs, its statistics, its record's
# schema, Markdown report and figure together (benchmarks.replot finds a study by those names in one
# module, and replots a record from it without a list); what studies share is in machinery/.

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from spectral_init import initialize_, mup_param_groups
from spectral_init.strategies.mup import base_modes_of

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
    run_arguments,
    run_cli,
)
from .machinery.figures import one_legend, plain_log_ticks, pyplot, style
from .machinery.workers import (
    JOBS_HELP,
    add_executor_arguments,
    check_executor_flags,
    default_workers,
    results_of,
)
from .operator_training import TASK_DIMS, finite, fit, require_packages, task_data, task_split

SCHEMA = "spectral-init/lr-transfer/1"
MODULE, STEM = "benchmarks.lr_transfer", "lr_transfer"
PARAMETRIZATIONS = ("standard", "mup")
WEIGHT_DECAY = 1e-4  # as benchmarks.operator_tasks
N_LAYERS = 4
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Sizes:
    """Everything that sets a run's cost; ``--quick`` and the defaults are two of these."""

    darcy_resolution: int
    burgers_resolution: int
    darcy_modes: tuple[int, ...]
    burgers_modes: tuple[int, ...]
    lrs: tuple[float, ...]
    n_train: int
    n_test: int
    width: int
    epochs: int
    batch_size: int
    seeds: int

    def resolution(self, task: str) -> int:
        return self.darcy_resolution if task == "darcy" else self.burgers_resolution

    def modes(self, task: str) -> tuple[int, ...]:
        return self.darcy_modes if task == "darcy" else self.burgers_modes


def _powers_of_two(low: int, high: int, per_octave: int = 1) -> tuple[float, ...]:
    """2^low … 2^high, ``per_octave`` rates per factor of 2."""
    return tuple(2.0 ** (k / per_octave) for k in range(low * per_octave, high * per_octave + 1))


DEFAULT_SIZES = Sizes(darcy_resolution=32, burgers_resolution=128, darcy_modes=(4, 8, 16),
                      burgers_modes=(8, 16, 32, 64), lrs=_powers_of_two(-10, -3, 2), n_train=100, n_test=50, width=16,
                      epochs=10, batch_size=16, seeds=3)
QUICK_SIZES = Sizes(darcy_resolution=16, burgers_resolution=64, darcy_modes=(4, 8), burgers_modes=(8, 16),
                    lrs=_powers_of_two(-9, -3)[::2], n_train=32, n_test=16, width=8, epochs=2, batch_size=16, seeds=1)


@dataclass(frozen=True)
class RunJob:
    """One training run, everything a worker process needs."""

    task: str
    data_file: str
    n_test: int
    modes: int
    base_modes: tuple[int, ...]  # the kept modes the base model's weights hold (base_modes_of)
    parametrization: str
    lr: float
    seed: int
    width: int
    epochs: int
    batch_size: int
    device: str


def _fno(dims: int, modes: int, width: int) -> torch.nn.Module:
    from neuralop.models import FNO

    return FNO(n_modes=(modes,) * dims, hidden_channels=width, in_channels=1, out_channels=1, n_layers=N_LAYERS)


def train_run(job: RunJob) -> dict[str, Any]:
    """Build, parametrize and train one FNO; its record (``diverged`` when an error went non-finite)."""
    start = time.perf_counter()
    data = task_split(job.data_file, job.n_test, TASK_DIMS[job.task])
    torch.manual_seed(job.seed)
    model = _fno(data.dims, job.modes, job.width)
    if job.parametrization == "mup":
        initialize_(model, {"strategy": "mup", "params": {"base_modes": job.base_modes}, "seed": job.seed})
        groups = mup_param_groups(model, job.lr, job.base_modes, weight_decay=WEIGHT_DECAY)
    else:
        groups = [{"params": list(model.parameters()), "lr": job.lr, "weight_decay": WEIGHT_DECAY}]
    spectral_rates = sorted({g["lr"] for g in groups} - {job.lr}) or [job.lr]
    model = model.to(job.device)
    curve, train_curve, _ = fit(model, torch.optim.Adam(groups), data, epochs=job.epochs, batch_size=job.batch_size,
                                seed=job.seed, device=job.device)
    record = {"task": job.task, "modes": job.modes, "parametrization": job.parametrization, "lr": job.lr,
              "seed": job.seed, "spectral_lr": spectral_rates[0], "test_curve": curve, "train_curve": train_curve,
              "wall_seconds": time.perf_counter() - start}
    if not (finite(curve) and finite(train_curve)):
        return {**record, "diverged": True}
    return {**record, "diverged": False, "final_rel_l2": curve[-1]}


def train_one(job: RunJob) -> dict[str, Any]:
    """``train_run``'s record, or one that says what the run raised: one failure does not cost the others."""
    try:
        return train_run(job)
    except Exception as exc:  # noqa: BLE001 - any failure of one run is reported with it, not raised
        return {"task": job.task, "modes": job.modes, "parametrization": job.parametrization, "lr": job.lr,
                "seed": job.seed, "diverged": True, "error": f"{type(exc).__name__}: {exc}"}


# --- analysis ------------------------------------------------------------------------------------


def _log_errors(runs: list[dict[str, Any]], task: str,
                parametrization: str) -> dict[tuple[int, float], dict[int, float]]:
    """(K, lr) → seed → log final error (inf for a run that diverged)."""
    cells: dict[tuple[int, float], dict[int, float]] = {}
    for r in runs:
        if r["task"] == task and r["parametrization"] == parametrization:
            value = math.inf if r["diverged"] else math.log(r["final_rel_l2"])
            cells.setdefault((r["modes"], r["lr"]), {})[r["seed"]] = value
    return cells


def _best_rates(cells: dict[tuple[int, float], dict[int, float]], modes: Sequence[int], lrs: Sequence[float],
                seeds: Sequence[int]) -> tuple[dict[int, float | None], dict[tuple[int, float], float]]:
    """The best rate per K over ``seeds`` (repeats allowed: a bootstrap resample), and the mean log error per cell."""
    means = {}
    for k in modes:
        for lr in lrs:
            values = [cells.get((k, lr), {}).get(s, math.inf) for s in seeds]
            means[(k, lr)] = math.fsum(values) / len(values) if all(math.isfinite(v) for v in values) else math.inf
    best: dict[int, float | None] = {}
    for k in modes:
        lowest = min(lrs, key=lambda lr: means[(k, lr)])
        best[k] = lowest if math.isfinite(means[(k, lowest)]) else None
    return best, means


def _transfer(best: dict[int, float | None], means: dict[tuple[int, float], float],
              modes: Sequence[int]) -> tuple[float | None, float | None]:
    """(drift of the best rate from the base K to the largest, in factors of 2; error at the largest K with
    the base's best rate over the error at its own best rate)."""
    base, top = best[modes[0]], best[modes[-1]]
    if base is None or top is None:
        return None, None
    regret = math.exp(means[(modes[-1], base)] - means[(modes[-1], top)])
    return math.log2(top / base), (regret if math.isfinite(regret) else None)


def _interval(values: list[float | None]) -> dict[str, Any]:
    finite_values = sorted(v for v in values if v is not None and math.isfinite(v))
    if not finite_values:
        return {"low": None, "high": None, "undefined": len(values)}
    low = finite_values[int(0.025 * (len(finite_values) - 1))]
    high = finite_values[math.ceil(0.975 * (len(finite_values) - 1))]
    return {"low": low, "high": high, "undefined": len(values) - len(finite_values)}


def summarize(runs: list[dict[str, Any]], sizes: Sizes, tasks: Sequence[str], seed: int = 0) -> list[dict[str, Any]]:
    """Per task and parametrization: the mean log error per (K, lr), the best rate per K, the drift and the
    transfer cost, with bootstrap intervals over seeds."""
    out = []
    rng = random.Random(seed)
    for task in tasks:
        modes, lrs = list(sizes.modes(task)), list(sizes.lrs)
        for parametrization in PARAMETRIZATIONS:
            cells = _log_errors(runs, task, parametrization)
            if not cells:
                continue
            seeds = sorted({s for cell in cells.values() for s in cell})
            best, means = _best_rates(cells, modes, lrs, seeds)
            drift, regret = _transfer(best, means, modes)
            drifts, regrets = [], []
            for _ in range(BOOTSTRAP_RESAMPLES if len(seeds) > 1 else 0):
                resample = [rng.choice(seeds) for _ in seeds]
                b_best, b_means = _best_rates(cells, modes, lrs, resample)
                b_drift, b_regret = _transfer(b_best, b_means, modes)
                drifts.append(b_drift)
                regrets.append(b_regret)
            geometric = {str(k): [math.exp(means[(k, lr)]) if math.isfinite(means[(k, lr)]) else None for lr in lrs]
                         for k in modes}
            out.append({
                "task": task, "parametrization": parametrization, "modes": modes, "lrs": lrs, "seeds": len(seeds),
                "geometric_mean_error": geometric,
                "best_lr": {str(k): best[k] for k in modes},
                "drift_factors_of_2": drift, "drift_ci95": _interval(drifts) if drifts else None,
                "transfer_error_ratio": regret, "transfer_error_ratio_ci95": _interval(regrets) if regrets else None,
            })
    return out


# --- reports -------------------------------------------------------------------------------------


def _power_text(lr: float) -> str:
    """2^k, k to the nearest half (the default grid's step)."""
    return f"2^{round(2 * math.log2(lr)) / 2:g}"


def _lr_text(lr: float | None) -> str:
    return "—" if lr is None else f"{_power_text(lr)} = {lr:.3g}"


def _ci_text(value: float | None, ci: dict[str, Any] | None, fmt: str) -> str:
    if value is None:
        return "— (no finite best rate)"
    text = format(value, fmt)
    if ci and ci["low"] is not None:
        text += f" [{format(ci['low'], fmt)}, {format(ci['high'], fmt)}]"
    return text


def markdown_report(record: dict[str, Any]) -> str:
    env, cfg = record["environment"], record["config"]
    lines = [
        *markdown_header("Learning-rate transfer across kept modes: standard parametrization vs μP", env,
                         f"neuralop {env['versions'].get('neuralop')}", f"{cfg['workers']} worker processes"),
        "",
        f"neuraloperator FNO, {N_LAYERS} layers, width {cfg['width']}; Darcy {cfg['darcy_resolution']}², Burgers "
        f"{cfg['burgers_resolution']}; {cfg['n_train']} training and {cfg['n_test']} test samples; {cfg['epochs']} "
        f"epochs of batch {cfg['batch_size']} (Adam, weight decay {WEIGHT_DECAY:g}, cosine to 0); {cfg['seeds']} "
        "seeds. K: neuraloperator's n_modes per axis; μP's base is each task's smallest K. Best rate: the grid "
        "rate with the lowest mean log final test error over seeds. Drift: log₂(best rate at the largest K / best "
        "rate at the base), in factors of 2 (0: the rate transfers). Transfer cost: error at the largest K with "
        "the base's best rate / error at its own best rate (1: nothing lost). [95% bootstrap interval over "
        "seeds.]",
        "",
        "| task | parametrization | best rate per K | drift (factors of 2) | transfer cost at the largest K |",
        "|---|---|---|---|---|",
    ]
    for s in record["summary"]:
        rates = ", ".join(f"K={k}: {_lr_text(s['best_lr'][str(k)])}" for k in s["modes"])
        lines.append(f"| {s['task']} | {s['parametrization']} | {rates} | "
                     f"{_ci_text(s['drift_factors_of_2'], s['drift_ci95'], '+.1f')} | "
                     f"{_ci_text(s['transfer_error_ratio'], s['transfer_error_ratio_ci95'], '.3f')}× |")
    lines.append("")
    for s in record["summary"]:
        lines += [f"## {s['task']} · {s['parametrization']}: final test relative L2 (geometric mean over seeds)", "",
                  "| K | " + " | ".join(_power_text(lr) for lr in s["lrs"]) + " |",
                  "|---|" + "---|" * len(s["lrs"])]
        for k in s["modes"]:
            row = s["geometric_mean_error"][str(k)]
            best = s["best_lr"][str(k)]
            cells = ["diverged" if v is None else (f"**{v:.4f}**" if lr == best else f"{v:.4f}")
                     for lr, v in zip(s["lrs"], row)]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append("")
    if record["diverged"]:
        lines.append(f"Diverged or failed (counted as infinitely bad): {len(record['diverged'])} runs: "
                     + ", ".join(f"{d['task']} {d['parametrization']} K={d['modes']} lr={d['lr']:.3g} seed {d['seed']}"
                                 + (f" ({d['error']})" if "error" in d else "") for d in record["diverged"]))
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """Final test error against the learning rate, one curve per K, one panel per task × parametrization;
    a dot marks each K's best rate (the paper's figure)."""
    plt = pyplot()
    summary = record["summary"]
    if not summary:
        return None
    tasks = list(dict.fromkeys(s["task"] for s in summary))
    every_k = sorted({k for s in summary for k in s["modes"]})  # one colour per K across the panels
    fig, axes = plt.subplots(len(tasks), len(PARAMETRIZATIONS), figsize=(4.2 * len(PARAMETRIZATIONS), 3.3 * len(tasks)),
                             squeeze=False, layout="constrained", sharey="row")
    for row, task in zip(axes, tasks):
        for ax, parametrization in zip(row, PARAMETRIZATIONS):
            s = next((x for x in summary if x["task"] == task and x["parametrization"] == parametrization), None)
            if s is None:
                ax.set_visible(False)
                continue
            for k in s["modes"]:
                index = every_k.index(k)
                values = [math.nan if v is None else v for v in s["geometric_mean_error"][str(k)]]
                ax.plot(s["lrs"], values, marker=".", label=f"K = {k}", linewidth=1.2, **style(index))
                best = s["best_lr"][str(k)]
                if best is not None:
                    ax.plot([best], [values[s["lrs"].index(best)]], "o", markersize=7, color=style(index)["color"])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{task} · {parametrization}", fontsize=9)
            ax.set_xlabel("Adam learning rate")
            ax.set_ylabel("final test relative L2")
            ax.tick_params(labelsize=7)
    for ax in axes.flat:  # once every panel of a row has drawn: the rows share their y axis
        if ax.get_visible():
            plain_log_ticks(ax)
    one_legend(fig, axes.flat, "kept modes K (geometric mean over seeds; dot: best rate)",
               order=[f"K = {k}" for k in every_k], columns=6)
    return fig


# --- command line --------------------------------------------------------------------------------


def _numbers(kind: type, what: str, minimum: int = 2) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            values = tuple(kind(t) for t in text.split(",") if t.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be comma-separated {kind.__name__}s; got {text!r}") from None
        if len(set(values)) < minimum:
            raise argparse.ArgumentTypeError(f"give at least {minimum} different {what}; got {text!r}")
        if any(not (math.isfinite(v) and v > 0) for v in values):
            raise argparse.ArgumentTypeError(f"every one of {what} must be a finite number > 0; got {text!r}")
        return tuple(sorted(set(values)))
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__, resumable=True)
    p.add_argument("--tasks", type=comma_separated(tuple(TASK_DIMS), "tasks"), default=list(TASK_DIMS),
                   help=f"comma-separated, of {', '.join(TASK_DIMS)}")
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run; explicit size options still win")
    p.add_argument("--lrs", type=_numbers(float, "learning rates", 3), default=None,
                   help="Adam learning rates, comma-separated (default: 2^-10 … 2^-3 in factors of √2)")
    for task in TASK_DIMS:
        p.add_argument(f"--{task}-modes", type=_numbers(int, f"{task} modes"), default=None,
                       help=f"kept modes K per axis, comma-separated; the smallest is μP's base (default: "
                            f"{','.join(map(str, DEFAULT_SIZES.modes(task)))})")
    for field in ("darcy_resolution", "burgers_resolution", "n_train", "n_test", "width", "epochs", "batch_size",
                  "seeds"):
        value = getattr(DEFAULT_SIZES, field)
        high = 10_000 if field in ("n_train", "n_test") else 1000
        p.add_argument(f"--{field.replace('_', '-')}", type=bounded_int(1, high), default=None,
                       help=f"(default: {value}; with --quick {getattr(QUICK_SIZES, field)})")
    p.add_argument("--data-seed", type=bounded_int(0, 2**31 - 1), default=0, help="seed of the generated data")
    p.add_argument("--jobs", type=bounded_int(1, os.cpu_count() or 1), default=None, help=JOBS_HELP)
    add_executor_arguments(p)
    return p


def resolve(args: argparse.Namespace) -> tuple[list[str], Sizes]:
    """The tasks and sizes the options ask for; a UsageError naming what is wrong."""
    tasks = args.tasks
    base = QUICK_SIZES if args.quick else DEFAULT_SIZES
    sizes = Sizes(**{f: getattr(args, f) if getattr(args, f, None) is not None else v for f, v in asdict(base).items()})
    for task in tasks:
        resolution, modes = sizes.resolution(task), sizes.modes(task)
        if modes[0] < 2:
            raise UsageError(f"--{task}-modes: μP needs K ≥ 2 (one kept mode has log K = 0); got {modes[0]}")
        if modes[-1] > resolution:
            raise UsageError(f"--{task}-modes {modes[-1]} keeps frequencies up to {modes[-1] // 2}; the resolution "
                             f"{resolution} has {resolution // 2}: lower the modes or raise --{task}-resolution")
    if sizes.batch_size > sizes.n_train:
        raise UsageError(f"--batch-size {sizes.batch_size} is larger than --n-train {sizes.n_train}")
    return tasks, sizes


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_executor_flags(args)
    require_packages()
    tasks, sizes = resolve(args)
    device = resolve_device(args.device)
    workers = args.jobs or default_workers(args.threads, device.type)
    with command_threads(args.threads, quiet=workers > 1):
        previous = prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite, resume=args.resume,
                                      arguments=run_arguments(args))
        argv_used = sys.argv[1:] if argv is None else list(argv)
        record = run(args, tasks, sizes, device, workers, argv_used, previous)
        publish(args.output_dir, STEM, record, markdown_report(record), figure,
                tracking=benchmark_tracking(args, STEM))
    return 0


_WORKER_PRELOAD = ("benchmarks.machinery.common", "benchmarks.operator_training", "neuralop.models", "torch._dynamo")


def run(args: argparse.Namespace, tasks: list[str], sizes: Sizes, device: torch.device, workers: int,
        argv: list[str], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generate (or read) the data, train the grid, summarize; on Ctrl-C the finished runs are written.
    The runs of an interrupted ``previous`` record are kept, not run again."""
    start = time.perf_counter()
    jobs = []
    for task in tasks:
        path, _ = task_data(task, sizes.resolution(task), sizes.n_train + sizes.n_test, args.data_seed,
                            args.output_dir / "data")
        modes = sizes.modes(task)
        base = base_modes_of(_fno(TASK_DIMS[task], modes[0], sizes.width))  # read once, not in every run
        # the largest K first: the slowest runs start while there is still work to balance them
        for k in reversed(modes):
            for parametrization in PARAMETRIZATIONS:
                for lr in sizes.lrs:
                    for seed in range(sizes.seeds):
                        jobs.append(RunJob(task, str(path), sizes.n_test, k, base, parametrization, lr, seed,
                                           sizes.width, sizes.epochs, sizes.batch_size, str(device)))
    config = {**asdict(sizes), "tasks": tasks, "data_seed": args.data_seed, "workers": workers, "n_layers": N_LAYERS,
              "weight_decay": WEIGHT_DECAY}
    runs: list[dict[str, Any]] = list(previous["runs"]) if previous else []
    key = lambda r: (r["task"], r["modes"], r["parametrization"], r["lr"], r["seed"])  # noqa: E731
    kept = {key(r) for r in runs}
    todo = [j for j in jobs if key(asdict(j)) not in kept]

    def record() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, argv), "config": config, "runs": runs,
                "diverged": [{k: r[k] for k in ("task", "modes", "parametrization", "lr", "seed", "error") if k in r}
                             for r in runs if r["diverged"]]}

    progress = Progress(len(jobs), "lr transfer", enabled=not args.no_progress, initial=len(jobs) - len(todo))
    with keep_finished_runs(args.output_dir, STEM, record, lambda: len(runs), run_arguments(args)):
        for result in results_of(train_one, todo, workers, device.type, _WORKER_PRELOAD, args.executor,
                                 args.executor_config):
            runs.append(result)
            progress.step(f"{result['task']} K={result['modes']} {result['parametrization']} lr={result['lr']:.3g} "
                          f"seed {result['seed']}")
    progress.close()
    runs.sort(key=lambda r: (tasks.index(r["task"]), r["modes"], PARAMETRIZATIONS.index(r["parametrization"]),
                             r["lr"], r["seed"]))
    errors = [r["error"] for r in runs if "error" in r]
    if errors and len(errors) == len(runs):
        raise UsageError(f"every run failed ({len(runs)}): the first raised {errors[0]}")
    walls = [r["wall_seconds"] for r in runs if "wall_seconds" in r]
    return {**record(), "summary": summarize(runs, sizes, tasks),
            "timings": {"total_seconds": time.perf_counter() - start,
                        "median_run_seconds": statistics.median(walls) if walls else None}}


if __name__ == "__main__":
    sys.exit(run_cli(main))
