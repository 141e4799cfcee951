"""The model on a dataset without training: predicted patches alone (``predict_patches``: what a trained
generator costs a new scan), with their physics loss (``predict``; each patch alone, ``TEST_LOSS_SCOPE``),
per-patch errors against the truth, and how the two losses are named side by side."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn as nn

from ..physics import physics_loss, reconstruction_errors, to_complex_object
from ..simulation import PtychoDataset
from .config import TrainingConfig

__all__ = ["TEST_LOSS_SCOPE", "evaluate", "loss_labels", "predict", "predict_patches", "test_scores"]


TEST_LOSS_SCOPE = "patches"  # predict's loss: each patch alone, comparable between runs of either loss_on


def loss_labels(config: TrainingConfig) -> tuple[str, str]:
    """How to name the train and test losses beside each other: with their scopes where they differ
    (``loss_on`` 'stitched' trains on the overlap-held patches, the test loss is each patch's own)."""
    if config.loss_on == TEST_LOSS_SCOPE:
        return "train loss", "test loss"
    return f"train loss ({config.loss_on})", "test loss (per patch)"


@torch.no_grad()
def predict_patches(model: nn.Module, data: PtychoDataset, batch_size: int, device: torch.device) -> torch.Tensor:
    """The object patches the model predicts from ``data``'s patterns (on the CPU, complex), ``batch_size``
    patterns a forward pass, in eval mode (the model's mode restored after); no loss is computed."""
    return torch.cat([patches.cpu() for patches, _ in _batches(model, data, batch_size, device)])


def _batches(model: nn.Module, data: PtychoDataset, batch_size: int, device: torch.device
             ) -> Iterator[tuple[torch.Tensor, slice]]:
    """(predicted patches on ``device``, their slice of ``data``) a batch at a time, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(data), batch_size):
            sl = slice(start, start + batch_size)
            yield to_complex_object(model(data.amplitudes[sl].to(device))), sl
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: nn.Module, data: PtychoDataset, config: TrainingConfig,
            device: torch.device) -> tuple[torch.Tensor, float]:
    """The predicted object patches (on the CPU) and their mean physics loss, in eval mode; the model's
    mode is restored after."""
    probe = data.probe.to(device)
    preds, losses = [], []
    for obj, sl in _batches(model, data, config.infer_batch_size, device):
        losses.append(physics_loss(obj, probe, data.amplitudes[sl].to(device), data.counts[sl].to(device),
                                   data.intensity_scale, config.loss, propagator=data.propagator,
                                   good_pixels=data.good_pixels,
                                   background=None if data.background is None else data.background.to(device),
                                   ).item() * obj.shape[0])
        preds.append(obj.cpu())
    return torch.cat(preds), sum(losses) / len(data)


def evaluate(model: nn.Module, data: PtychoDataset, config: TrainingConfig,
             device: torch.device) -> dict[str, float | None]:
    """Physics loss and per-patch reconstruction errors on ``data`` (``predict``)."""
    return test_scores(*predict(model, data, config, device), data)


def test_scores(preds: torch.Tensor, loss: float, data: PtychoDataset) -> dict[str, float | None]:
    """The physics loss, and the per-patch errors where the data carry the truth (else None)."""
    if data.objects is None:
        return {"physics_loss": loss, "amplitude_mae": None, "phase_mae": None}
    return {"physics_loss": loss, **reconstruction_errors(preds, data.objects, data.probe)}
