"""Reconstruct a scan with a trained generator: a checkpoint of ``ptycho_torch.train``, a scan file in
the reference format, the stitched object out.

    python -m ptycho_torch.predict run/checkpoint.pt scan.npz --output-dir pred

Writes ``object.npz`` (the stitched complex objects, their coverage and the scan's positions),
``object.png`` (amplitude and phase with colour bars; beside them the truth and the error when the file
carries ``objectGuess`` or ``Y``) and ``metrics.json`` (the physics loss, the reconstruction metrics
where there is truth, the inference time per pattern). Exit status: 0 written, 2 bad input (checked
before any work; nothing written), 130 interrupted (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import torch

from cli_common.output_files import claim_output_directory, move_aside, release_output_directory, write_atomically
from cli_common.threads import THREADS_HELP, command_threads, positive_thread_count, thread_record
from cli_common.usage import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    UsageError,
    format_validation_error,
    interrupts_raise_keyboard_interrupt,
    output_directory_argument,
    stop_signals_ignored,
)

from .config import build_generator
from .data_files import DataFileError, read_scan_file, write_object_file
from .evaluation import evaluate_objects, reconstruction_metrics, stitch_objects
from .measured import dataset_from_scan, intensity_scale
from .reconstruction_figure import draw_object, draw_reconstruction
from .training import CHECKPOINT_FORMAT, DistributedContext, TrainingConfig, pick_device, predict

__all__ = ["main"]

OUTPUT_FILES = ("object.npz", "object.png", "metrics.json")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ptycho_torch.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a checkpoint.pt written by ptycho_torch.train")
    p.add_argument("data", type=Path, help="the scan to reconstruct (.npz, the reference's format)")
    p.add_argument("--output-dir", type=output_directory_argument, required=True,
                   help="where object.npz, object.png and metrics.json go (locked while it runs)")
    p.add_argument("--batch-size", type=int, default=64, help="patterns per forward pass (default: 64)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available")
    p.add_argument("--overwrite", action="store_true",
                   help="move an earlier prediction in --output-dir into OUTPUT_DIR/replaced-<time>/ first "
                   "(without it, such a prediction is refused)")
    p.add_argument("--no-figure", action="store_true", help="write no object.png")
    p.add_argument("--threads", type=positive_thread_count, default=None, help=THREADS_HELP)
    return p


def load_model_config(path: Path) -> tuple[TrainingConfig, dict[str, Any]]:
    """The run's config and its checkpoint; a usage error for anything else."""
    from .train import _as_configured_then  # the resume path's reading of older checkpoints

    if path.is_dir():
        inside = path / "checkpoint.pt"
        hint = f": give {str(inside)!r}" if inside.is_file() else " (a training run's checkpoint.pt is a file in it)"
        raise UsageError(f"checkpoint {str(path)!r} is a directory{hint}")
    if not path.is_file():
        raise UsageError(f"checkpoint {str(path)!r}: no such file")
    if _is_numpy_archive(path):
        raise UsageError(f"checkpoint {str(path)!r} is a NumPy .npz archive (a scan?), not a checkpoint: the "
                         "checkpoint comes first, then the scan (python -m ptycho_torch.predict CHECKPOINT SCAN)")
    if not zipfile.is_zipfile(path):  # torch's own message would advise loading it unsafely
        with path.open("rb") as handle:
            head = handle.read(12)
        raise UsageError(f"checkpoint {str(path)!r} is not a torch checkpoint (a zip archive); it starts with {head!r}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
        raise UsageError(f"checkpoint {str(path)!r} is not a readable torch checkpoint ({type(exc).__name__})"
                         ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"checkpoint {str(path)!r} is not a ptycho_torch.train checkpoint ({CHECKPOINT_FORMAT})")
    saved = _as_configured_then(checkpoint["config"])
    saved["files"] = None  # the training files are not needed (nor perhaps still there) to predict
    try:
        return TrainingConfig.model_validate(saved), checkpoint
    except pydantic.ValidationError as exc:
        raise UsageError(format_validation_error(exc, f"configuration in {path}")) from None


def _is_numpy_archive(path: Path) -> bool:
    """Whether ``path`` is a zip of .npy arrays (what np.savez writes; a torch checkpoint is a zip too,
    of other members)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with interrupts_raise_keyboard_interrupt(), command_threads(args.threads) as threads:
        try:
            return _run(args, argv, threads)
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; nothing was written", file=sys.stderr)
            return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, argv: Sequence[str] | None, threads: Any) -> int:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1; got {args.batch_size}")
    config, checkpoint = load_model_config(args.checkpoint)
    try:
        scan = read_scan_file(args.data)
    except DataFileError as exc:
        raise UsageError(str(exc)) from None
    if scan.N != config.model.N:
        raise UsageError(f"{args.data}: patterns of {scan.N} px, but the model was trained on {config.model.N} px")
    notes = _checkpoint_notes(args.checkpoint, checkpoint, config) + _probe_matches(args.data, scan, checkpoint)
    try:
        device = pick_device(args.device, DistributedContext())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
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
        notes = [f"{args.data}: {note}" for note in scan.notes] + notes
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        _predict_and_write(args, argv, config, checkpoint, scan, device, threads, notes)
    finally:
        release_output_directory(args.output_dir)
    return 0


PROBE_TOLERANCE = 1e-4  # relative L2 difference: float32 round-off of a copied probe is ~1e-7


def _checkpoint_notes(path: Path, checkpoint: dict[str, Any], config: TrainingConfig) -> list[str]:
    """What the user should know of the checkpoint: a run that had not finished."""
    if checkpoint.get("complete", True):
        return []
    return [f"{path}: a checkpoint of an unfinished run (epoch {checkpoint['epoch']} of {config.nepochs}); "
            "`ptycho_torch.train --resume` finishes it"]


def _probe_matches(data_path: Path, scan: Any, checkpoint: dict[str, Any]) -> list[str]:
    """Refuse a scan whose probe is not the training probe (the generator's input and the physics loss
    assume it); a note where the checkpoint predates keeping it."""
    trained = checkpoint.get("probe")
    if trained is None:
        return [f"{data_path}: the checkpoint predates keeping the training probe, so the scan's probe is "
                "assumed to be it"]
    trained = trained.to(torch.complex128)
    given = scan.probe.to(torch.complex128)
    difference = float(torch.linalg.vector_norm(given - trained) / torch.linalg.vector_norm(trained))
    if difference > PROBE_TOLERANCE:
        raise UsageError(
            f"{data_path}: probeGuess is not the probe the model was trained with (relative difference "
            f"{difference:.3g}; Σ|probe|² {float(given.abs().square().sum()):.6g} in the scan, "
            f"{float(trained.abs().square().sum()):.6g} in training): the generator's input and its physics "
            "assume the training probe; train on scans of this probe")
    return []


def _predict_and_write(args: argparse.Namespace, argv: Sequence[str] | None, config: TrainingConfig,
                       checkpoint: dict[str, Any], scan: Any, device: torch.device, threads: Any,
                       notes: list[str]) -> None:
    data = dataset_from_scan(scan, intensity_scale(scan, None))
    model = build_generator(config.model, probe=data.probe).to(device)
    model.load_state_dict(checkpoint["model_state"])
    run_config = config.model_copy(update={"infer_batch_size": args.batch_size})
    start = time.perf_counter()
    patches, loss = predict(model, data, run_config, device)
    seconds = time.perf_counter() - start
    objects, coverage = stitch_objects(patches, data)
    scored = evaluate_objects(patches, data)
    metrics = {
        "checkpoint": str(args.checkpoint), "data": str(args.data), "patterns": len(data), "N": scan.N,
        "objects": objects.shape[0], "physics_loss": loss, "loss": config.loss,
        "reconstruction": reconstruction_metrics(scored) if scored else None,
        "notes": notes + ([] if scored else ["no objectGuess or Y in the data: no reconstruction metrics"]),
        "intensity_scale": {"scan": data.intensity_scale, "training": checkpoint.get("intensity_scale")},
        "complete_run": checkpoint.get("complete", True),
        "inference_seconds": seconds, "inference_seconds_per_pattern": seconds / len(data),
        "batch_size": args.batch_size, "device": str(device), "threads": thread_record(threads),
        "architecture": config.model.architecture, "trained_epochs": checkpoint["epoch"],
        "torch": torch.__version__,
        "command": " ".join(["python -m ptycho_torch.predict", *(sys.argv[1:] if argv is None else argv)]),
    }
    out = args.output_dir
    with stop_signals_ignored():  # the three files are written together or, interrupted before, not at all
        write_atomically(out / "object.npz", lambda p: write_object_file(p, objects, coverage, data.positions,
                                                                          data.object_ids, scan.N, scan.origin))
        figure = None
        if not args.no_figure:
            title = f"{config.model.architecture} ({checkpoint['epoch']} epochs) on {args.data.name}"
            if scored:
                figure = draw_reconstruction(scored[0], title, out / "object.png")
            else:
                obj, covered = _covered(objects[0].numpy(), coverage[0].numpy())
                figure = draw_object(obj, title, out / "object.png", covered)
        write_atomically(out / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    shown = "" if metrics["reconstruction"] is None else ", " + ", ".join(
        f"{k} {'n/a' if v is None else f'{v:.4g}'}" for k, v in metrics["reconstruction"].items())
    print(f"{len(data)} patterns, {1e3 * seconds / len(data):.2f} ms each; physics loss {loss:.6g}{shown}")
    print(f"wrote {out / 'object.npz'}, {out / 'metrics.json'}" + (f", {figure}" if figure else ""))


def _covered(obj: np.ndarray, coverage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The object inside the bounding box of its covered pixels, and which of them are covered."""
    rows, cols = np.nonzero(coverage > 0)
    box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    return obj[box], coverage[box] > 0


if __name__ == "__main__":
    sys.exit(main())
