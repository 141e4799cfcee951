"""The Python API of a trained generator: load it, read a scan, reconstruct the scan's object.

    from ptycho_torch import load_model, read_scan, reconstruct

    result = reconstruct(load_model("runs/spiral/checkpoint.pt"), read_scan("data/test.npz"))
    result.object, result.coverage          # (K, H, W) complex objects, the |probe|² weight behind each pixel

``python -m ptycho_torch.predict`` is these three calls and the files they write.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from spectral_init.checks import check_positive_int

from .data.measured import dataset_from_scan, intensity_scale
from .data.readers import read_any_scan
from .data.scan_files import ScanFile
from .evaluation import StitchedObject, evaluate_objects, stitch_objects
from .generators.config import build_generator
from .optics import FAR_FIELD, Propagation, Propagator
from .simulation import PtychoDataset
from .training import TrainingConfig, predict
from .training.checkpoint import as_configured_then, read_checkpoint

__all__ = ["PROBE_TOLERANCE", "Reconstruction", "TrainedModel", "check_scan_fits", "load_model",
           "model_from_checkpoint", "read_scan", "reconstruct", "scan_settings"]

PROBE_TOLERANCE = 1e-4  # relative L2 difference: float32 round-off of a copied probe is ~1e-7


@dataclass(eq=False)
class TrainedModel:
    """A generator as a training run left it: the model (in eval mode), the run's config, the probe it
    was built with and trained on, and where the run stood."""

    model: nn.Module
    config: TrainingConfig
    probe: torch.Tensor  # (N, N) complex64
    probe_is_the_training_probe: bool  # False: a checkpoint that predates keeping it, built with the given one
    intensity_scale: float | None  # the training data's (None: not kept by the checkpoint)
    background: torch.Tensor | None  # (N, N) a learned detector background, in the training data's unit
    epochs: int  # completed
    complete: bool  # every epoch of the run done
    path: Path

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


@dataclass(eq=False)
class Reconstruction:
    """A scan's objects as the generator reconstructs them: ``object`` (K, H, W) complex64, stitched as
    measured (no alignment; 0 where no patch reached), ``coverage`` (K, H, W), the summed |probe|² weight
    behind each pixel, and the scan they came from: each pattern's patch ``positions`` (top-left row,
    column on its object), ``object_index`` and ``origin`` (where the objects' pixel (0, 0) lies in the
    scan file's frame)."""

    object: torch.Tensor
    coverage: torch.Tensor
    positions: list[tuple[float, float]]
    object_index: torch.Tensor
    origin: tuple[float, float]
    patches: torch.Tensor  # (n, N, N) complex64: the generator's patch per pattern
    physics_loss: float  # the mean physics loss of the patches against the patterns
    seconds: float  # the generator's forward passes and loss
    data: PtychoDataset  # the scan as the model saw it (model units)

    def scored(self) -> list[StitchedObject]:
        """Each object against the scan's truth (phase offset and ramp removed; ``evaluation``); [] when
        the scan carries none."""
        return evaluate_objects(self.patches, self.data)


def read_scan(path: Path | str, propagation: Propagation = "far-field",
              focus_distance: float | None = None) -> ScanFile:
    """A scan file read and checked: the reference's ``.npz`` format, or CXI with its geometry (near field:
    ``propagation="near-field"`` and the focus-to-sample distance ``focus_distance`` in m). A
    ``DataFileError`` names the file, the key and the problem."""
    return read_any_scan(path, propagation, focus_distance)


def scan_settings(saved: dict[str, Any]) -> dict[str, Any]:
    """How the checkpoint's run read its scans: ``propagation`` and ``focus_distance``, to read another
    scan of the same instrument alike."""
    files = as_configured_then(saved["config"]).get("files") or {}
    return {"propagation": files.get("propagation", "far-field"), "focus_distance": files.get("focus_distance")}


def load_model(checkpoint: Path | str, device: torch.device | str = "cpu",
               probe: torch.Tensor | None = None, propagator: Propagator = FAR_FIELD) -> TrainedModel:
    """The generator of a ``ptycho_torch.train`` checkpoint, built with its training probe (``probe`` is
    needed only for a checkpoint that predates keeping it; ``propagator``, a near-field scan's, only for
    the near-field ``real_space`` input). A ``CheckpointError`` names a path that is no checkpoint; a
    config that no longer validates raises pydantic's ``ValidationError``."""
    return model_from_checkpoint(read_checkpoint(checkpoint), Path(checkpoint), device, probe, propagator)


def model_from_checkpoint(saved: dict[str, Any], path: Path, device: torch.device | str = "cpu",
                          probe: torch.Tensor | None = None, propagator: Propagator = FAR_FIELD) -> TrainedModel:
    """``load_model`` of a checkpoint already read (``checkpoints.read_checkpoint``) from ``path``."""
    settings = as_configured_then(saved["config"])
    settings["files"] = None  # the training files are not needed (nor perhaps still there) to reconstruct
    config = TrainingConfig.model_validate(settings)
    kept = saved.get("probe")
    if kept is None and probe is None:
        raise ValueError(f"checkpoint {str(path)!r} predates keeping its training probe: give probe= (the scan's)")
    used = (kept if kept is not None else probe).to(torch.complex64)
    model = build_generator(config.model, probe=used, propagator=propagator).to(device)
    model.load_state_dict(saved["model_state"])
    model.eval()
    background = saved.get("illumination", {}).get("background")
    return TrainedModel(model=model, config=config, probe=used, probe_is_the_training_probe=kept is not None,
                        intensity_scale=saved.get("intensity_scale"), background=background, epochs=int(saved["epoch"]),
                        complete=bool(saved.get("complete", True)), path=path)


def check_scan_fits(trained: TrainedModel, scan: ScanFile) -> None:
    """A ``ValueError`` where ``scan`` is not what the model takes: another pattern size, or another probe
    than the training probe (the generator's input and its physics assume that one)."""
    if scan.N != trained.config.model.N:
        raise ValueError(f"{scan.path}: patterns of {scan.N} px, but the model was trained on "
                         f"{trained.config.model.N} px")
    if not trained.probe_is_the_training_probe or scan.probe_guessed:  # a guess is no probe to hold it to
        return
    kept, given = trained.probe.to(torch.complex128), scan.probe.to(torch.complex128)
    difference = float(torch.linalg.vector_norm(given - kept) / torch.linalg.vector_norm(kept))
    if difference > PROBE_TOLERANCE:
        raise ValueError(
            f"{scan.path}: probeGuess is not the probe the model was trained with (relative difference "
            f"{difference:.3g}; Σ|probe|² {float(given.abs().square().sum()):.6g} in the scan, "
            f"{float(kept.abs().square().sum()):.6g} in training): the generator's input and its physics "
            "assume the training probe; train on scans of this probe")


def reconstruct(trained: TrainedModel, scan: ScanFile, batch_size: int = 64) -> Reconstruction:
    """The objects of ``scan`` as ``trained`` reconstructs them: a forward pass per ``batch_size``
    patterns, the patches stitched at their positions (``evaluation.stitch_objects``). A ``ValueError``
    (``check_scan_fits``) before any work where the scan is not what the model takes."""
    check_positive_int(batch_size, "batch_size")
    check_scan_fits(trained, scan)
    if scan.probe_guessed:  # the file held no probe: the one the model was trained with (a learned one)
        scan = dataclasses.replace(scan, probe=trained.probe.cpu())
    data = dataset_from_scan(scan, intensity_scale(scan, None))
    if trained.background is not None and trained.intensity_scale:  # the detector's, in this scan's unit
        data.background = trained.background.cpu() * (trained.intensity_scale / data.intensity_scale)
    run_config = trained.config.model_copy(update={"infer_batch_size": batch_size})
    start = time.perf_counter()
    patches, loss = predict(trained.model, data, run_config, trained.device)
    seconds = time.perf_counter() - start
    objects, coverage = stitch_objects(patches, data)
    return Reconstruction(object=objects, coverage=coverage, positions=list(data.positions),
                          object_index=data.object_ids, origin=scan.origin, patches=patches, physics_loss=loss,
                          seconds=seconds, data=data)
