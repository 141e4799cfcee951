"""Train the same short physics-informed configuration once per strategy and seed, and compare.

A seed fixes the data, the local weights and the spectral draw, so strategies
are compared paired by seed. Per run: the loss curve, the final training loss,
the test errors, the steps until the (3-step running mean) loss first reaches a
common threshold, and each block's spectral participation ‖spectral‖/‖local‖
at the start and at the end.

    python -m benchmarks.training_comparison
    python -m benchmarks.training_comparison --strategies legacy,sqrt_in --seeds 5 --nepochs 20
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from ptycho_torch.config import ARCHITECTURES
from ptycho_torch.progress import Progress
from ptycho_torch.simulation import SimulationConfig
from ptycho_torch.training import TrainingConfig, train
from spectral_init import spectral_layer_kinds

from .common import (
    CALIBRATED,
    UsageError,
    benchmark_parser,
    bounded_int,
    command_threads,
    environment,
    format_ci,
    keep_finished_runs,
    markdown_header,
    prepare_output_dir,
    publish,
    resolve_device,
    run_cli,
    select_strategies,
    strategy_spec,
)
from .figures import merged_series, pyplot, style
from .stats import compare_strategies

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
# the stitched test object's quality (ptycho_torch.evaluation), where every run has it (SSIM and PSNR
# need scikit-image); PSNR is left out: infinite for a perfect object, it has no mean
RECONSTRUCTION_METRICS = ("mae_amp", "mae_phase", "ssim_amp", "ssim_phase", "frc_amp", "frc_phase")


def steps_to_threshold(step_losses: Sequence[float], threshold: float) -> int | None:
    """First step (1-based) whose running mean over SMOOTHING steps is <= threshold."""
    for end in range(1, len(step_losses) + 1):
        window = step_losses[max(0, end - SMOOTHING) : end]
        if sum(window) / len(window) <= threshold:
            return end
    return None


def default_threshold(runs: list[dict[str, Any]]) -> float:
    """Halfway, in log scale, between the median first-step and the median last-step loss of all runs."""
    first = statistics.median(r["step_losses"][0] for r in runs)
    last = statistics.median(r["step_losses"][-1] for r in runs)
    return math.sqrt(first * last)


def training_config(args: argparse.Namespace, strategy: str, seed: int, device: str) -> TrainingConfig:
    """One run of the comparison; pydantic checks every flag that reaches it."""
    return TrainingConfig(
        model=dict(  # N and C come from the data
            architecture=args.architecture, fno_width=args.width, fno_modes=args.modes,
            fno_blocks=args.blocks, spectral_backend=args.backend,
            spectral_init=strategy_spec(strategy, seed, args.N, "relu" if args.architecture == "plain_fno" else "gelu"),
        ),
        data=SimulationConfig(N=args.N, nimgs_train=args.nimgs_train, nimgs_test=args.nimgs_test),
        nepochs=args.nepochs, batch_size=args.batch_size, lr=args.lr, loss=args.loss, seed=seed, device=device,
    )


def run_comparison(
    args: argparse.Namespace, strategies: list[str], baseline: str, device: torch.device
) -> dict[str, Any]:
    progress = Progress(len(strategies) * args.seeds, "training comparison", enabled=not args.no_progress)
    runs = []
    kinds: dict[str, int] = {}
    start = time.perf_counter()

    def partial() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, args.argv),
                "config": {"strategies": strategies, "baseline": baseline}, "runs": runs}

    with keep_finished_runs(args.output_dir, STEM, partial, lambda: len(runs)):
        for seed in range(args.seeds):
            for strategy in strategies:  # interleaved within a seed: load drifts hit strategies alike
                result = train(training_config(args, strategy, seed, device.type))
                kinds = kinds or spectral_layer_kinds(result.model)
                runs.append(
                    {
                        "strategy": strategy,
                        "seed": seed,
                        "epoch_losses": result.epoch_losses,
                        "step_losses": result.step_losses,
                        "test": result.test,
                        "reconstruction": result.reconstruction,
                        "participation": result.participation,
                        "seconds": result.timings["total_seconds"],
                    }
                )
                progress.step(f"{strategy} seed {seed}")
    threshold = args.loss_threshold if args.loss_threshold is not None else default_threshold(runs)
    total_steps = len(runs[0]["step_losses"])
    per_seed: dict[str, dict[int, dict[str, float]]] = {}
    for run in runs:
        reached = steps_to_threshold(run["step_losses"], threshold)
        run["steps_to_threshold"] = reached
        per_seed.setdefault(run["strategy"], {})[run["seed"]] = {
            "final_train_loss": run["epoch_losses"][-1],
            "test_physics_loss": run["test"]["physics_loss"],
            "test_amplitude_mae": run["test"]["amplitude_mae"],
            "test_phase_mae": run["test"]["phase_mae"],
            # never reached: counted as the run's length, a lower bound (see reached_threshold)
            "steps_to_threshold": float(reached if reached is not None else total_steps),
        }
        if run["participation"]["start"]:  # a plain FNO has no local branch to compare with
            per_seed[run["strategy"]][run["seed"]].update(
                participation_start=statistics.fmean(run["participation"]["start"]),
                participation_end=statistics.fmean(run["participation"]["end"]),
            )
    for run in runs:
        for name in RECONSTRUCTION_METRICS:
            if run["reconstruction"][name] is not None:
                per_seed[run["strategy"]][run["seed"]][f"reconstruction_{name}"] = run["reconstruction"][name]
    metrics = METRICS if all(r["participation"]["start"] for r in runs) else METRICS[:-2]
    metrics += tuple(f"reconstruction_{name}" for name in RECONSTRUCTION_METRICS
                     if all(r["reconstruction"][name] is not None for r in runs))
    summary = compare_strategies(per_seed, metrics, baseline)
    for strategy, entry in summary.items():
        entry["reached_threshold"] = sum(r["steps_to_threshold"] is not None for r in runs if r["strategy"] == strategy)
        entry["mean_epoch_losses"] = [
            statistics.fmean(values) for values in zip(*(r["epoch_losses"] for r in runs if r["strategy"] == strategy))
        ]
    return {
        "schema": SCHEMA,
        "environment": environment(device, MODULE, args.argv),
        "config": {
            "strategies": strategies,
            "seeds": list(range(args.seeds)),
            "baseline": baseline,
            "architecture": args.architecture,
            "N": args.N,
            "width": args.width,
            "modes": args.modes,
            "blocks": args.blocks,
            "nepochs": args.nepochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "loss": args.loss,
            "nimgs_train": args.nimgs_train,
            "nimgs_test": args.nimgs_test,
            "backend": args.backend,
            "loss_threshold": threshold,
            "total_steps": total_steps,
        },
        "spectral_layers": {args.architecture: kinds},
        "runs": runs,
        "summary": summary,
        "timings": {
            "total_seconds": time.perf_counter() - start,
            "median_seconds_per_run": statistics.median(r["seconds"] for r in runs),
        },
    }


def _cell(stat: dict[str, Any], digits: int = 3) -> str:
    return format_ci(stat["mean"], stat["ci95"], digits)


def markdown_report(record: dict[str, Any]) -> str:
    env, cfg = record["environment"], record["config"]
    lines = [
        *markdown_header("Training comparison per init strategy", env),
        f"{cfg['architecture']}, N={cfg['N']}, width {cfg['width']}, {cfg['blocks']} blocks, {cfg['modes']} modes; "
        f"{cfg['nimgs_train']} training image(s), {cfg['nepochs']} epochs = {cfg['total_steps']} Adam steps "
        f"(lr {cfg['lr']}, batch {cfg['batch_size']}), loss `{cfg['loss']}`, seeds {cfg['seeds']}. "
        f"Mean ± 95% CI half-width over seeds; Δ paired by seed against `{cfg['baseline']}`. "
        f"Threshold for 'steps': {cfg['loss_threshold']:.4g}.",
        "",
        "| strategy | final train loss | test loss | test amplitude MAE | test phase MAE (rad) "
        "| steps to threshold (reached) | spectral/local start | spectral/local end "
        "| Δ final train loss | Δ test loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for strategy, entry in record["summary"].items():
        m, vs = entry["metrics"], entry["vs_baseline"]
        delta = lambda name, vs=vs: "—" if vs is None else _cell(vs[name])  # noqa: E731
        lines.append(
            f"| {strategy} | {_cell(m['final_train_loss'])} | {_cell(m['test_physics_loss'])} "
            f"| {_cell(m['test_amplitude_mae'])} | {_cell(m['test_phase_mae'])} "
            f"| {_cell(m['steps_to_threshold'])} ({entry['reached_threshold']}/{m['steps_to_threshold']['n']}) "
            f"| {_cell(m['participation_start']) if 'participation_start' in m else '—'} "
            f"| {_cell(m['participation_end']) if 'participation_end' in m else '—'} "
            f"| {delta('final_train_loss')} | {delta('test_physics_loss')} |"
        )
    lines += _reconstruction_table(record)
    return "\n".join(lines) + "\n"


def _reconstruction_table(record: dict[str, Any]) -> list[str]:
    """The stitched test object per strategy (records made before it was measured have none)."""
    names = [n for n in RECONSTRUCTION_METRICS
             if all(f"reconstruction_{n}" in e["metrics"] for e in record["summary"].values())]
    if not names:
        return []
    lines = ["", f"Stitched test object (phase offset and plane removed; FRC: ½-bit threshold, cycles/px); "
             f"Δ SSIM paired by seed against `{record['config']['baseline']}`:", "",
             "| strategy | " + " | ".join(names) + " | Δ ssim_amp | Δ ssim_phase |",
             "|---|" + "---|" * (len(names) + 2)]
    for strategy, entry in record["summary"].items():
        m, vs = entry["metrics"], entry["vs_baseline"]
        deltas = ["—" if vs is None or f"reconstruction_{n}" not in vs else _cell(vs[f"reconstruction_{n}"])
                  for n in ("ssim_amp", "ssim_phase")]
        lines.append(f"| {strategy} | " + " | ".join(_cell(m[f"reconstruction_{n}"]) for n in names)
                     + f" | {' | '.join(deltas)} |")
    return lines


def figure(record: dict[str, Any]) -> Any:
    """Loss curves per strategy: mean over seeds, the seeds' range shaded; equal curves drawn once."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    curves = {}
    for strategy in record["summary"]:
        runs = [r["step_losses"] for r in record["runs"] if r["strategy"] == strategy]
        curves[strategy] = (
            tuple(statistics.fmean(v) for v in zip(*runs)),
            tuple(min(v) for v in zip(*runs)),
            tuple(max(v) for v in zip(*runs)),
        )
    names = list(curves)
    for label, _, index in merged_series(curves.items()):
        mean, low, high = curves[names[index]]
        steps = range(1, len(mean) + 1)
        ax.plot(steps, mean, label=label, **style(index))
        ax.fill_between(steps, low, high, alpha=0.15, color=style(index)["color"])
    ax.axhline(
        record["config"]["loss_threshold"], color="gray", linestyle=":", linewidth=1, label="threshold for 'steps'"
    )
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel(f"training loss ({record['config']['loss']}, per step)")
    ax.set_title(
        f"{record['config']['architecture']}: mean over {len(record['config']['seeds'])} seeds, range shaded",
        fontsize=9,
    )
    ax.legend(fontsize=7, title="strategy", title_fontsize=7)
    return fig


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
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
    p.add_argument(
        "--loss-threshold",
        type=float,
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
        "--calibrated",
        action="store_true",
        help="add the variant 'calibrated': sqrt_in, then calibrate_ on the first training batch",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    with command_threads(args.threads):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    strategies, baseline = select_strategies(args.strategies, args.baseline)
    if args.calibrated:
        strategies.append(CALIBRATED)
    device = resolve_device(args.device)
    try:  # the whole configuration, once, before any training starts
        training_config(args, baseline, 0, device.type)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    prepare_output_dir(args.output_dir)
    record = run_comparison(args, strategies, baseline, device)
    markdown = markdown_report(record)
    publish(args.output_dir, STEM, record, markdown, figure)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
