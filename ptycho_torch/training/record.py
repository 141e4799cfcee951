"""What a finished run records in ``metrics.json``: its config and resolved init, the losses and their
scopes, the test scores and stitched-object metrics, timings, data and machine."""

from __future__ import annotations

from typing import Any

import torch

from spectral_init.initialize_model import spectral_layer_kinds

from ..data.measured import describe as describe_files
from ..evaluation import lattice_note
from .config import TrainingConfig, resolved_spectral_init
from .inference import TEST_LOSS_SCOPE
from .loop import TrainResult

__all__ = ["run_record"]


def run_record(config: TrainingConfig, result: TrainResult, device: torch.device, threads: dict[str, Any],
               command: str) -> dict[str, Any]:
    """The run as ``metrics.json`` holds it (``threads``: the thread choice as recorded; ``command``: the
    command line that ran it)."""
    metrics = {
        "config": config.model_dump(mode="json"),
        "spectral_init": resolved_spectral_init(config),
        "spectral_layers": spectral_layer_kinds(result.model),  # what ran: the backend resolved, per layer kind
        "epoch_losses": result.epoch_losses,
        "epoch_test_losses": result.epoch_test_losses,
        "step_losses": result.step_losses,
        # what each loss sums over: the stitched training loss and the per-patch test loss are not comparable
        "loss_scopes": {"train": config.loss_on, "test": TEST_LOSS_SCOPE},
        "test": result.test,
        "reconstruction": result.reconstruction,
        "reconstruction_notes": [note for note in (lattice_note(result.test_set),) if note is not None],
        "spectral_participation": result.participation,
        "timings": result.timings,
        "intensity_scale": result.intensity_scale,
        "pattern_dynamic_range": result.pattern_dynamic_range,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "ddp": result.ddp,
        "resumed_from_epoch": result.resumed_from_epoch,
        "calibration": result.calibration,
        "illumination": result.illumination.record(),
        "device": str(device),
        "threads": threads,
        "torch": torch.__version__,
        "command": command,
    }
    if config.files is not None:
        metrics["data_files"] = describe_files(config.files)
    return metrics
