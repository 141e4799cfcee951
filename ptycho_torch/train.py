"""``python -m ptycho_torch.train``: the reference plan's FNO smoke run, single-process or under torchrun.

    python -m ptycho_torch.train --N 64 --gridsize 1 --architecture fno --nepochs 5 \\
        --nimgs-train 1 --nimgs-test 1 --torch-infer-batch-size 8 --output-dir runs/smoke
    torchrun --standalone --nproc_per_node 2 -m ptycho_torch.train --output-dir runs/ddp ...

Values come from ``--config FILE`` (TOML or JSON, the fields of
``TrainingConfig``: top-level training fields, a ``[model]`` and a ``[data]``
table), overridden by the flags given. Writes ``checkpoint.pt`` after every
epoch (atomically) and ``metrics.json`` at the end, to the output directory
(rank 0 only); ``--resume`` continues from the checkpoint there. Exit status:
0 done, 2 bad input (found before any work), 3 diverged, 130 interrupted (Ctrl-C or
SIGTERM: the last epoch's checkpoint is kept for ``--resume``).
"""

# One module of about 500 lines because it is one flow: the checks before any work (flags, config, files,
# output directory, resume), the run with its progress, interrupts and divergence, and the files at the
# end, each step needing the previous one's results. The work itself is the library's (``training``).

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydantic
import torch
import torch.distributed as dist

from spectral_init.cli.model_flags import ModelFlags
from spectral_init.cli.output_files import (
    claim_output_directory,
    ensure_writable_directory,
    move_aside,
    release_output_directory,
    write_atomically,
)
from spectral_init.cli.progress import Progress
from spectral_init.cli.threads import (
    THREADS_HELP,
    ThreadChoice,
    announce_threads,
    command_threads,
    positive_thread_count,
    thread_record,
)
from spectral_init.cli.usage import (
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ArgumentParser,
    UsageError,
    check_spectral_init_environment,
    format_validation_error,
    interrupts_raise_keyboard_interrupt,
    output_directory_argument,
    stop_signals_ignored,
)
from spectral_init.config_files import read_config_file
from spectral_init.plugins import normalize_name

from .data.scan_files import DataFileError, write_object_file
from .evaluation import lattice_note, stitch_objects
from .evaluation.figures import draw_object, draw_reconstruction
from .generators.spectral_conv import resolve_backend
from .simulation import load_probe
from .tracking import Tracking, flat_metrics, flat_params, log_run, tracking_from
from .training import (
    DistributedContext,
    DivergenceError,
    TrainingConfig,
    TrainResult,
    loss_labels,
    make_checkpoint,
    pick_device,
    process_group,
    resolved_spectral_init,
    train,
)
from .training.checkpoint import CheckpointError, CheckpointWriter, check_resumable, read_checkpoint
from .training.record import run_record

__all__ = [
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "build_parser",
    "main",
]

# The names the config fields' flags have always had (the reference's among them), beside the
# ``--path.to.field`` every field gets from the model: field's flag → its other names.
TRACKING_EXPERIMENT = "ptycho_torch.train"  # the MLflow experiment a run is logged to unless --experiment
_SHORT_NAMES: dict[str, str | tuple[str, ...]] = {
    "files.train-path": "train-data",
    "files.test-path": "test-data",
    "data.N": "N",
    "data.gridsize": "gridsize",
    "nepochs": "torch-epochs",
    "data.nimgs-train": "nimgs-train",
    "data.nimgs-test": "nimgs-test",
    "infer-batch-size": "torch-infer-batch-size",
    "model.architecture": "architecture",
    "model.spectral-init": "spectral-init",
    "model.spectral-backend": "spectral-backend",
    "model.fno-width": "fno-width",
    "model.fno-modes": "fno-modes",
    "model.fno-blocks": "fno-blocks",
    "model.fno-cnn-blocks": "fno-cnn-blocks",
    "model.input-layout": "input-layout",
    "model.input-transform": "input-transform",
    "model.output-mode": "output-mode",
    "data.object-size": "object-size",
    "data.offset": "offset",
    "data.scan": "scan",
    "data.nphotons": "nphotons",
    "data.probe-path": "probe",
    "data.probe-defocus": "probe-defocus",
    "files.propagation": "propagation",
    "files.focus-distance": "focus-distance",
}


def _check_spectral_init_text(value: Any) -> None:
    """--spectral-init's value that is neither a strategy name nor a JSON object (which pydantic-settings
    has read into a dict)."""
    if value is None or isinstance(value, dict):
        return
    if not isinstance(value, str):  # other JSON: a list, a number
        raise UsageError(f"--spectral-init: expected a strategy name or a JSON object of settings fields; got "
                         f"{json.dumps(value)}")
    if value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--spectral-init: not a JSON object ({exc.msg} at character {exc.pos}): "
                             f"{value!r}") from None
        raise UsageError(f"--spectral-init: expected a JSON object of settings fields; got {json.dumps(parsed)}")
    if normalize_name(value) == "calibrated":
        raise UsageError("--spectral-init: 'calibrated' is not a strategy but sqrt_in followed by calibration on "
                         "the first batch: add --calibrate (with --spectral-init NAME for another strategy)")


def build_parser() -> argparse.ArgumentParser:
    return _parser_and_fields()[0]


def _parser_and_fields() -> tuple[argparse.ArgumentParser, ModelFlags]:
    p = ArgumentParser(prog="python -m ptycho_torch.train", description=__doc__,
                       usage="%(prog)s --output-dir DIR [--config FILE] [config field flags] [options]",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="TOML or JSON file of TrainingConfig fields (top-level training "
                   "fields, a [model] and a [data] table); the flags given override it")
    p.add_argument("--output-dir", type=output_directory_argument, required=True,
                   help="where checkpoint.pt and metrics.json go (created, and locked while the run lasts; an "
                   "earlier run there is kept unless --resume or --overwrite)")
    p.add_argument("--calibrate", action="store_true",
                   help="rescale each spectral layer to unit output second moment on the first batch "
                   "(sets model.spectral_init.calibrate, with --spectral-init's strategy; default off)")
    p.add_argument("--no-figure", action="store_true",
                   help="write no reconstruction.png (drawing it takes about a second)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or final progress line on stderr")
    p.add_argument("--threads", type=positive_thread_count, default=None, help=THREADS_HELP)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt when there is one, else start fresh (in a "
                   "directory without earlier run files)")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an OUTPUT_DIR that holds one: its files are first moved into "
                   "OUTPUT_DIR/replaced-<time>/")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: continue although the checkpoint's config differs from the flags")
    p.add_argument("--tracking-uri", default=None,
                   help="log the finished run to MLflow there (a file store: file:./mlruns or a path; a server: "
                   "http://HOST:PORT); also asked by MLFLOW_TRACKING_URI; needs the 'tracking' extra "
                   "(default: not logged)")
    p.add_argument("--experiment", default=TRACKING_EXPERIMENT,
                   help=f"the MLflow experiment of the run (default: {TRACKING_EXPERIMENT})")
    fields = ModelFlags(p, TrainingConfig, title="config fields", shortcuts=_SHORT_NAMES, description=(
        "every field of TrainingConfig, --path.to.field (a table also whole as a JSON object); each flag given "
        "overrides --config's value; --spectral-init takes a strategy name or a JSON object such as "
        '\'{"strategy": "legacy", "gain": 2}\''))
    return p, fields


def _merged(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``given`` laid over it table by table (a value that is not a table replaces); a
    spectral_init named by a strategy and completed by a table (--calibrate, --model.spectral-init.gain)
    becomes that table's strategy."""
    out = dict(base)
    for key, value in given.items():
        old = out.get(key)
        if key == "spectral_init" and isinstance(old, str) and isinstance(value, dict):
            old = {"strategy": old}
        out[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def assemble_config(args: argparse.Namespace, fields: ModelFlags) -> TrainingConfig:
    """File values, then the flags given; the config fills model.N and model.C from the data."""
    raw = read_config_file(args.config, "--config") if args.config else {}
    given = fields.given(args)
    model = given.get("model")
    if isinstance(model, dict):  # else (--model -1) pydantic names what the table must be
        _check_spectral_init_text(model.get("spectral_init"))
    merged = _merged(raw, given)
    if args.calibrate:
        merged = _merged(merged, {"model": {"spectral_init": {"calibrate": True}}})
    return TrainingConfig.model_validate(merged)


RUN_FILES = ("metrics.json", "checkpoint.pt", "reconstruction.png", "object.npz")


def check_environment() -> None:
    """The ``SPECTRAL_INIT_*`` variables and ``PTYCHO_SPECTRAL_BACKEND``, before any work."""
    check_spectral_init_environment()
    try:
        resolve_backend()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def warn_small_scan(config: TrainingConfig) -> None:
    """Say so when the scan gives fewer training patterns than one batch: every step then sees them all;
    for measured files, say what reading them converted or assumed."""
    if config.files is not None:
        for note in config.files.notes():
            print(f"note: {note}", file=sys.stderr)
        return
    data = config.data
    patterns = data.patches_per_object * data.nimgs_train
    if patterns < config.batch_size:
        print(f"warning: the scan (step {data.step} px on a {data.canvas} px object, N = {data.N}) gives "
              f"{data.patches_per_object} patch{'es' if data.patches_per_object != 1 else ''} per object, "
              f"{patterns} training pattern{'s' if patterns != 1 else ''} in all: fewer than --batch-size "
              f"{config.batch_size}, so every step sees the same ones (a smaller --offset gives more)",
              file=sys.stderr)


def load_checkpoint(path: Path, config: TrainingConfig, allow_config_change: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None when there is none; a bad one is refused and left in place."""
    if not path.exists():
        return None
    try:  # the library's reader: what the path is instead, never torch's advice to load it unsafely
        checkpoint = read_checkpoint(path)
    except CheckpointError as exc:
        raise UsageError(f"cannot resume from {str(path)!r}: {exc}; the file is left as it is") from None
    try:
        check_resumable(checkpoint, config, allow_config_change)
    except CheckpointError as exc:
        raise UsageError(f"cannot resume from {str(path)!r}: {exc}") from None
    return checkpoint


def load_config(args: argparse.Namespace, fields: ModelFlags) -> TrainingConfig:
    try:
        config = assemble_config(args, fields)
    except pydantic.ValidationError as exc:
        # a scan file's problem is the file's, not the configuration's: said as the reader says it
        file_errors = [e["ctx"]["error"] for e in exc.errors() if isinstance(e.get("ctx", {}).get("error"),
                                                                             DataFileError)]
        if file_errors:
            raise UsageError(f"data file {file_errors[0]}") from None
        raise UsageError(format_validation_error(exc, "training configuration", TrainingConfig)) from None
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    try:  # what would otherwise fail only after the data are simulated
        if config.data.probe_path is not None:
            load_probe(config.data.probe_path, config.data.N)
        if config.model.architecture != "ffno":
            resolve_backend(config.model.spectral_backend)
        resolved_spectral_init(config)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    return config


def prepare_output_dir(path: Path, *, resume: bool, overwrite: bool, claim: bool) -> bool:
    """Create ``path``, prove it writable and (``claim``) lock it; refuse to mix two runs' files.

    Returns whether this call claimed it. A fresh run needs an empty directory or ``--overwrite``;
    ``--resume`` needs a checkpoint, or no earlier run files, or ``--overwrite``.
    """
    try:
        claimed = claim_output_directory(path) if claim else (ensure_writable_directory(path) or False)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    existing = [name for name in RUN_FILES if (path / name).exists()]
    if overwrite or not existing:
        return claimed
    if not resume:
        message = (f"--output-dir {str(path)!r} already holds a run ({', '.join(existing)}); pass --resume "
                   "to continue it or --overwrite to start a new one there")
    elif "checkpoint.pt" not in existing:
        message = (f"--resume: --output-dir {str(path)!r} holds {', '.join(existing)} of an earlier run but no "
                   "checkpoint.pt to continue from; pass --overwrite to start a new run there (the earlier "
                   "files are moved aside)")
    else:
        return claimed
    if claimed:
        release_output_directory(path)
    raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 done, 2 bad input (nothing trained, nothing overwritten), 3 diverged, 130 interrupted."""
    parser, fields = _parser_and_fields()
    args = parser.parse_args(argv)
    ctx = DistributedContext.from_env()
    started = threading.Event()  # set once the run may have written something
    with interrupts_raise_keyboard_interrupt(), command_threads(args.threads) as threads:
        try:
            return _checked_run(args, fields, argv, ctx, threads, started)
        except KeyboardInterrupt:
            if started.is_set():  # a second signal while the run was ending
                print(f"interrupted while the run was ending; what it wrote is in {str(args.output_dir)!r} "
                      "(rerun with --resume to continue from its checkpoint)", file=sys.stderr)
            else:
                print("interrupted before training started; nothing was written", file=sys.stderr)
            return EXIT_INTERRUPTED


def _checked_run(args: argparse.Namespace, fields: ModelFlags, argv: Sequence[str] | None, ctx: DistributedContext,
                 threads: ThreadChoice, started: threading.Event) -> int:
    """Every check before any work, then the run, holding the output directory (rank 0) throughout."""
    claimed = False
    try:
        if args.allow_config_change and not args.resume:
            raise UsageError("--allow-config-change has no effect without --resume (a fresh run has no checkpoint "
                             "to compare): drop it")
        check_environment()
        tracking = tracking_from(args.tracking_uri, args.experiment, run_name=args.output_dir.name)
        config = load_config(args, fields)
        if ctx.active and (config.learn_probe or config.refine_positions or config.learn_background):
            raise UsageError("--learn-probe, --refine-positions and --learn-background train in one process: under "
                             "torchrun each rank would learn its own probe, positions or background")
        warn_small_scan(config)
        device = pick_device(config.device, ctx)
        # every rank checks alike, so that no rank waits for a group that one of them has left
        claimed = prepare_output_dir(args.output_dir, resume=args.resume, overwrite=args.overwrite,
                                     claim=ctx.is_main)
        checkpoint_path = args.output_dir / "checkpoint.pt"
        resume = load_checkpoint(checkpoint_path, config, args.allow_config_change) if args.resume else None
        if resume is not None and resume["epoch"] == config.nepochs and (args.output_dir / "metrics.json").exists():
            # a finished run: nothing to train, and its results (their timings too) are not to be rewritten
            if ctx.is_main:
                print(f"--resume: the run in {str(args.output_dir)!r} is complete ({resume['epoch']} of "
                      f"{config.nepochs} epochs); its metrics.json and checkpoint are kept as they are (a larger "
                      "--nepochs trains on)")
            if claimed:
                release_output_directory(args.output_dir)
            return 0
    except (UsageError, ValueError) as exc:  # ValueError: pick_device
        if claimed:
            release_output_directory(args.output_dir)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if ctx.is_main:
        announce_threads()  # the input is checked, the training begins
    try:
        started.set()
        if args.overwrite and resume is None and ctx.is_main:
            moved = move_aside(args.output_dir, RUN_FILES)
            if moved is not None:
                print(f"moved the earlier run's files to {moved}")
        with process_group(ctx, device):
            code = _run(args, argv, config, ctx, device, checkpoint_path, resume, threads, tracking)
            if ctx.active and code == 0:
                dist.barrier()  # rank 0 has written the run's files before any rank leaves the group
            return code
    finally:
        if claimed:
            release_output_directory(args.output_dir)


def _run(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    config: TrainingConfig,
    ctx: DistributedContext,
    device: torch.device,
    checkpoint_path: Path,
    resume: dict[str, Any] | None,
    threads: ThreadChoice,
    tracking: Tracking | None = None,
) -> int:
    progress: Progress | None = None
    # the epoch in progress (0-based) and the steps done, for the message of an interrupted run
    position = {"epoch": resume["epoch"] if resume else 0, "step": resume["step"] if resume else 0}
    show = ctx.is_main and not args.no_progress
    epoch_lines = show and not sys.stderr.isatty()  # a log gets one line per epoch; a terminal, the bar

    train_label, test_label = loss_labels(config)

    def on_step(epoch: int, step: int, total_steps: int, loss: float) -> None:
        nonlocal progress
        position.update(epoch=epoch, step=step)
        if progress is None:  # a resumed run starts its count where the checkpoint left off
            progress = Progress(total_steps, "train", enabled=show and not epoch_lines, initial=step - 1)
        progress.step(f"epoch {epoch + 1}/{config.nepochs} loss {loss:.5g}")

    def on_epoch(checkpoint: dict[str, Any]) -> None:
        position["epoch"] = checkpoint["epoch"]  # epochs done: an interrupt from here on falls in the next one
        if writer is not None:
            writer.submit(checkpoint)
        if epoch_lines:
            test = checkpoint["epoch_test_losses"][-1]
            print(f"epoch {checkpoint['epoch']}/{config.nepochs}: {train_label} {checkpoint['epoch_losses'][-1]:.6g}"
                  + (f", {test_label} {test:.6g}" if test is not None else "")
                  + f", {checkpoint['epoch_seconds'][-1]:.1f} s", file=sys.stderr, flush=True)

    writer = (CheckpointWriter(lambda c: write_atomically(checkpoint_path, lambda p: torch.save(c, p)),
                               resume["epoch"] if resume else None) if ctx.is_main else None)
    if resume is not None and ctx.is_main:
        print(f"resuming from {checkpoint_path} after epoch {resume['epoch']}/{config.nepochs}")
    try:
        try:
            result = train(config, ctx, on_step=on_step, on_epoch=on_epoch, resume=resume)
        finally:  # the bar ends before any message below
            if progress is not None:
                progress.close()
    except KeyboardInterrupt:
        return _interrupted(writer, position, args.output_dir, ctx)
    except DivergenceError as exc:
        kept = f"the checkpoint of epoch {exc.epoch - 1} is kept" if exc.epoch > 1 else "no checkpoint was written"
        print(f"error: {exc}; {kept} in {str(args.output_dir)!r}, and no metrics were written (lower --lr, or "
              "check the data)", file=sys.stderr)
        return EXIT_DIVERGED
    finally:
        if writer is not None:
            writer.close()
    if ctx.is_main:
        _report(config, result, epoch_lines)
        figure = write_outputs(args.output_dir, config, result, device, argv, threads, draw=not args.no_figure)
        if figure is None and not args.no_figure:
            reason = "no reconstruction.png (matplotlib is not installed)"
        else:
            reason = str(figure) if figure else "no reconstruction.png (--no-figure)"
        print(f"wrote {args.output_dir / 'metrics.json'}, {checkpoint_path} and {reason}")
        if tracking is not None:
            log_training(tracking, args.output_dir)
    return 0


def log_training(tracking: Tracking, output_dir: Path) -> None:
    """The finished run, as its ``metrics.json`` holds it, to MLflow: the config and the resolved init as
    parameters, the losses per epoch as series, the test scores and the reconstruction's metrics, and
    ``metrics.json`` and ``reconstruction.png`` as artifacts."""
    record = json.loads((output_dir / "metrics.json").read_text())
    params = {**flat_params(record["config"]), **flat_params(record["spectral_init"], "spectral_init.")}
    metrics = {**flat_metrics(record["test"], "test."), **flat_metrics(record["reconstruction"] or {}, "object.")}
    series = {"train_loss": record["epoch_losses"], "test_loss": record["epoch_test_losses"]}
    run_id = log_run(tracking, params, metrics, series,
                     [output_dir / "metrics.json", output_dir / "reconstruction.png"])
    if run_id is not None:
        print(f"logged to MLflow at {tracking.uri}: experiment {tracking.experiment!r}, run {run_id}")


def _report(config: TrainingConfig, result: TrainResult, epoch_lines: bool) -> None:
    """The finished run on stdout: each epoch's loss (unless a log had them as they came), the test scores,
    the stitched object's metrics."""
    train_label, test_label = loss_labels(config)
    if not epoch_lines:
        for epoch, loss in enumerate(result.epoch_losses, 1):
            print(f"epoch {epoch}/{config.nepochs}: {train_label} {loss:.6g}")
    test = result.test
    patch_errors = ("" if test["amplitude_mae"] is None else
                    f", amplitude MAE {test['amplitude_mae']:.4f}, phase MAE {test['phase_mae']:.4f} rad")
    print(f"test: physics loss{test_label.removeprefix('test loss')} {test['physics_loss']:.6g}{patch_errors}")
    print("stitched test object: " + ", ".join(
        f"{name} {'n/a' if value is None else f'{value:.4g}'}" for name, value in result.reconstruction.items()))
    if (note := lattice_note(result.test_set)) is not None:
        print(f"note: {note}")


def _interrupted(writer: CheckpointWriter | None, position: dict[str, int], output_dir: Path,
                 ctx: DistributedContext) -> int:
    """Ctrl-C or SIGTERM: finish the pending checkpoint write (Ctrl-C and SIGTERM meanwhile ignored), say
    where the run stopped and how to continue; exit status 130."""
    with stop_signals_ignored():  # torchrun follows a Ctrl-C with SIGTERM: neither may cut the write short
        saved = writer.close_after_interrupt() if writer is not None else None
    if ctx.is_main:
        where = f"interrupted at epoch {position['epoch'] + 1}, step {position['step']}"
        if saved:
            print(f"{where}; rerun with --resume to continue from the checkpoint of epoch {saved} in "
                  f"{str(output_dir)!r}", file=sys.stderr)
        else:
            print(f"{where}; no epoch had finished, so there is no checkpoint to resume from", file=sys.stderr)
    return EXIT_INTERRUPTED


def write_outputs(output_dir: Path, config: TrainingConfig, result: TrainResult, device: torch.device,
                  argv: Sequence[str] | None, threads: ThreadChoice, draw: bool = True) -> Path | None:
    """``metrics.json``, the final ``checkpoint.pt`` and (``draw``, where matplotlib is installed)
    ``reconstruction.png``, whose path is returned; each written whole or not at all."""
    command = " ".join(["python -m ptycho_torch.train", *(sys.argv[1:] if argv is None else argv)])
    metrics = run_record(config, result, device, thread_record(threads), command)
    write_atomically(output_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    test_set = result.test_set
    objects, coverage = stitch_objects(result.test_predictions, test_set)
    write_atomically(output_dir / "object.npz", lambda p: write_object_file(
        p, objects, coverage, test_set.positions, test_set.object_ids, test_set.probe.shape[-1], test_set.origin,
        probe=test_set.probe if config.learn_probe else None))
    checkpoint = make_checkpoint(config, result.model, result.optimizer, result.progress, result.train_set,
                                 result.illumination)
    write_atomically(output_dir / "checkpoint.pt", lambda p: torch.save(checkpoint, p))
    if not draw:
        return None
    spec = resolved_spectral_init(config)
    init = spec["strategy"] + (" + calibration" if spec.get("calibrate") else "")
    title = (f"{config.model.architecture}, init {init}, {config.nepochs} epochs: stitched test object 1 of "
             f"{len(objects)}")
    if not result.stitched:  # no truth (a measured scan): the object alone, where the scan reached
        return draw_object(objects[0].numpy(), title, output_dir / "reconstruction.png",
                           (coverage[0] > 0).numpy())
    return draw_reconstruction(result.stitched[0], title, output_dir / "reconstruction.png")


if __name__ == "__main__":
    sys.exit(main())
