"""Reconstruct a scan with a trained generator: a checkpoint of ``ptycho_torch.train``, a scan file in
the reference format, the stitched object out.

    python -m ptycho_torch.predict run/checkpoint.pt scan.npz --output-dir pred

Writes ``object.npz`` (the stitched complex objects, their coverage and the scan's positions),
``object.png`` (amplitude and phase with colour bars; beside them the truth and the error when the file
carries ``objectGuess`` or ``Y``) and ``metrics.json`` (the physics loss, the reconstruction metrics
where there is truth, the inference time per pattern). Exit status: 0 written, 2 bad input (checked
before any work; nothing written), 130 interrupted (nothing written). In Python it is
``ptycho_torch.load_model``, ``read_scan`` and ``reconstruct``, which this command writes out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
import torch
from pydantic import BaseModel, ConfigDict, Field

from spectral_init.cli.model_flags import ModelFlags
from spectral_init.cli.output_files import (
    claim_output_directory,
    move_aside,
    release_output_directory,
    write_atomically,
)
from spectral_init.cli.threads import THREADS_HELP, command_threads, positive_thread_count, thread_record
from spectral_init.cli.usage import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    UsageError,
    format_validation_error,
    interrupts_raise_keyboard_interrupt,
    output_directory_argument,
    stop_signals_ignored,
)

from .data.scan_files import ScanFile, write_object_file
from .evaluation import reconstruction_metrics
from .evaluation.figures import draw_object, draw_reconstruction
from .reconstruction import (
    TrainedModel,
    check_scan_fits,
    model_from_checkpoint,
    read_scan,
    reconstruct,
    scan_settings,
)
from .training import DistributedContext, pick_device
from .training.checkpoint import read_checkpoint

__all__ = ["main"]

OUTPUT_FILES = ("object.npz", "object.png", "metrics.json")


class PredictionSettings(BaseModel):
    """How ``predict`` runs the model; its flags are these fields'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(64, ge=1, le=1_000_000, description="Patterns per forward pass.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available.")


def build_parser() -> argparse.ArgumentParser:
    return _parser_and_fields()[0]


def _parser_and_fields() -> tuple[argparse.ArgumentParser, ModelFlags]:
    p = ArgumentParser(prog="python -m ptycho_torch.predict", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a checkpoint.pt written by ptycho_torch.train")
    p.add_argument("data", type=Path, help="the scan to reconstruct: .npz (the reference's format) or CXI, read "
                   "with the training run's propagation and focus distance")
    p.add_argument("--output-dir", type=output_directory_argument, required=True,
                   help="where object.npz, object.png and metrics.json go (locked while it runs)")
    p.add_argument("--overwrite", action="store_true",
                   help="move an earlier prediction in --output-dir into OUTPUT_DIR/replaced-<time>/ first "
                   "(without it, such a prediction is refused)")
    p.add_argument("--no-figure", action="store_true", help="write no object.png")
    p.add_argument("--threads", type=positive_thread_count, default=None, help=THREADS_HELP)
    fields = ModelFlags(p, PredictionSettings, title="settings", description="the fields of PredictionSettings")
    return p, fields


def _settings(args: argparse.Namespace, fields: ModelFlags) -> PredictionSettings:
    try:
        return PredictionSettings.model_validate(fields.given(args))
    except pydantic.ValidationError as exc:
        raise UsageError(format_validation_error(exc, "prediction settings", PredictionSettings)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser, fields = _parser_and_fields()
    args = parser.parse_args(argv)
    with interrupts_raise_keyboard_interrupt(), command_threads(args.threads) as threads:
        try:
            return _run(args, _settings(args, fields), argv, threads)
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; nothing was written", file=sys.stderr)
            return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, settings: PredictionSettings, argv: Sequence[str] | None, threads: Any) -> int:
    try:
        saved = read_checkpoint(args.checkpoint)
        scan = read_scan(args.data, **scan_settings(saved))  # a CXI file is read as the run read its own
        device = pick_device(settings.device, DistributedContext())
        # the scan's probe builds a model only whose checkpoint predates keeping the training probe
        trained = model_from_checkpoint(saved, args.checkpoint, device, probe=scan.probe, propagator=scan.propagator)
        check_scan_fits(trained, scan)
    except pydantic.ValidationError as exc:
        raise UsageError(format_validation_error(exc, f"configuration in {args.checkpoint}")) from None
    except ValueError as exc:  # CheckpointError, DataFileError, a scan the model does not take, no CUDA
        raise UsageError(str(exc)) from None
    notes = [f"{args.data}: {note}" for note in scan.notes]
    if scan.probe_guessed:
        notes.append(f"{args.data} holds no probe: it is reconstructed with the probe the model was trained with")
    if trained.background is not None:
        notes.append("the physics loss counts the detector background learned in training (in this scan's unit)")
    notes += _model_notes(trained, scan)
    try:
        claim_output_directory(args.output_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        earlier = [name for name in OUTPUT_FILES if (args.output_dir / name).exists()]
        if earlier and not args.overwrite:
            raise UsageError(f"--output-dir {str(args.output_dir)!r} already holds a prediction "
                             f"({', '.join(earlier)}); pass --overwrite to move it aside")
        if earlier:
            move_aside(args.output_dir, OUTPUT_FILES)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        _predict_and_write(args, settings, argv, trained, scan, notes, threads)
    finally:
        release_output_directory(args.output_dir)
    return 0


def _model_notes(trained: TrainedModel, scan: ScanFile) -> list[str]:
    """What the user should know of the model: a run that had not finished, a probe not kept."""
    notes = []
    if not trained.complete:
        notes.append(f"{trained.path}: a checkpoint of an unfinished run (epoch {trained.epochs} of "
                     f"{trained.config.nepochs}); `ptycho_torch.train --resume` finishes it")
    if not trained.probe_is_the_training_probe:
        notes.append(f"{scan.path}: the checkpoint predates keeping the training probe, so the scan's probe is "
                     "assumed to be it")
    return notes


def _predict_and_write(args: argparse.Namespace, settings: PredictionSettings, argv: Sequence[str] | None,
                       trained: TrainedModel, scan: ScanFile, notes: list[str], threads: Any) -> None:
    result = reconstruct(trained, scan, settings.batch_size)
    scored = result.scored()
    patterns, config = len(result.patches), trained.config
    metrics = {
        "checkpoint": str(args.checkpoint), "data": str(args.data), "patterns": patterns, "N": scan.N,
        "objects": result.object.shape[0], "physics_loss": result.physics_loss, "loss": config.loss,
        "reconstruction": reconstruction_metrics(scored) if scored else None,
        "notes": notes + ([] if scored else ["no objectGuess or Y in the data: no reconstruction metrics"]),
        "intensity_scale": {"scan": result.data.intensity_scale, "training": trained.intensity_scale},
        "complete_run": trained.complete,
        "inference_seconds": result.seconds, "inference_seconds_per_pattern": result.seconds / patterns,
        "batch_size": settings.batch_size, "device": str(trained.device), "threads": thread_record(threads),
        "architecture": config.model.architecture, "trained_epochs": trained.epochs,
        "torch": torch.__version__,
        "command": " ".join(["python -m ptycho_torch.predict", *(sys.argv[1:] if argv is None else argv)]),
    }
    out = args.output_dir
    with stop_signals_ignored():  # the three files are written together or, interrupted before, not at all
        write_atomically(out / "object.npz", lambda p: write_object_file(
            p, result.object, result.coverage, result.positions, result.object_index, scan.N, result.origin,
            probe=result.data.probe if scan.probe_guessed else None))
        figure = None
        if not args.no_figure:
            title = f"{config.model.architecture} ({trained.epochs} epochs) on {args.data.name}"
            if scored:
                figure = draw_reconstruction(scored[0], title, out / "object.png")
            else:
                obj, covered = _covered(result.object[0].numpy(), result.coverage[0].numpy())
                figure = draw_object(obj, title, out / "object.png", covered)
        write_atomically(out / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    shown = "" if metrics["reconstruction"] is None else ", " + ", ".join(
        f"{k} {'n/a' if v is None else f'{v:.4g}'}" for k, v in metrics["reconstruction"].items())
    print(f"{patterns} patterns, {1e3 * result.seconds / patterns:.2f} ms each; physics loss "
          f"{result.physics_loss:.6g}{shown}")
    print(f"wrote {out / 'object.npz'}, {out / 'metrics.json'}" + (f", {figure}" if figure else ""))


def _covered(obj: np.ndarray, coverage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The object inside the bounding box of its covered pixels, and which of them are covered."""
    rows, cols = np.nonzero(coverage > 0)
    box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    return obj[box], coverage[box] > 0


if __name__ == "__main__":
    sys.exit(main())
