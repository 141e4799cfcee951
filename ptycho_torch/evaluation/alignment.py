"""What ptychography cannot observe, removed before comparing: the phase's global offset and linear ramp
(``remove_phase_offset_and_plane``), and phase images to score that a global offset leaves unchanged
(``phase_images``)."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["phase_images", "remove_phase_offset_and_plane"]


def remove_phase_offset_and_plane(pred: torch.Tensor, truth: torch.Tensor,
                                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """``pred`` (complex image) times e^{-i(a + b·x + c·y)}, the plane that best matches its phase to
    ``truth``'s. The slopes come from the mean phase step between neighbouring pixels of
    pred·conj(truth) (unaffected by wrapping at ±π), the offset from the phase of their overlap; with a
    boolean ``mask``, from its pixels only."""
    z = pred.to(torch.complex128) * truth.to(torch.complex128).conj()
    if mask is not None:
        z = z * mask  # pixels outside add nothing to the sums, nor do their neighbour pairs
    b = torch.angle((z[:, 1:] * z[:, :-1].conj()).sum()).item()  # per column (x)
    c = torch.angle((z[1:] * z[:-1].conj()).sum()).item()  # per row (y)
    y, x = torch.meshgrid(torch.arange(z.shape[0], dtype=torch.float64),
                          torch.arange(z.shape[1], dtype=torch.float64), indexing="ij")
    plane = b * x + c * y
    a = torch.angle((z * torch.exp(-1j * plane)).sum()).item()
    return pred.to(torch.complex128) * torch.exp(-1j * (plane + a))


def phase_images(truth: np.ndarray, pred: np.ndarray,
                 mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The phases (rad) of a complex ``truth`` and of a ``pred`` aligned to it, as real images to score
    that a global phase offset leaves unchanged and that never jump by 2π between two close values.

    The truth's phase is cut at the middle of the widest gap between its values on the circle (so an
    object whose phase crosses ±π is not split in two) and measured from its lowest value (so it starts
    at 0 whatever its global offset); the prediction's is the truth's plus the phase error wrapped to
    [−π, π). With a boolean ``mask`` only its pixels set the cut and the origin; both images are 0
    outside it."""
    inside = np.ones(truth.shape, dtype=bool) if mask is None else mask
    theta = np.angle(truth[inside])
    if theta.size == 0:
        raise ValueError("no pixel to take the phase of")
    ordered = np.sort(theta)
    gaps = np.append(np.diff(ordered), ordered[0] + 2 * math.pi - ordered[-1])  # the last: across ±π
    widest = int(np.argmax(gaps))
    lowest = ordered[(widest + 1) % ordered.size]  # the first value after the widest gap
    truth_phase = np.mod(np.angle(truth) - lowest, 2 * math.pi)
    # the error wrapped to [−π, π) from the two angles (not angle(pred·conj(truth))): equal phases give 0 exactly
    error = np.mod(np.angle(pred) - np.angle(truth) + math.pi, 2 * math.pi) - math.pi
    pred_phase = truth_phase + error
    return np.where(inside, truth_phase, 0.0), np.where(inside, pred_phase, 0.0)
