"""rPIE, the regularized ptychographic iterative engine (Maiden, Johnson & Li 2017, Optica 4, 736), with the
probe known: the object alone, updated one scan position at a time.

For the pattern at position j, with the object patch O_j read at j (bilinearly at a sub-pixel position,
as ``scan.placement`` reads it, so that the solver's forward model is the simulation's):

    ψ = P·O_j,   Ψ = D(ψ),   ψ' = D⁻¹( A · Ψ/|Ψ| )          (A: the measured amplitude; D: the propagator)
    O_j ← O_j + conj(P)·(ψ' − ψ) / ((1 − α)|P|² + α·max|P|²)

(at a detector's bad pixels Ψ is kept as it is). α = 1 is ePIE's step (Maiden & Rodenburg 2009); a small α
takes a larger step where the probe is bright, rPIE's faster convergence. At a sub-pixel position the
update is spread back onto the object by the transpose of the bilinear read. One iteration is a pass over
every position of an object in a random order (seeded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..data.dataset import PtychoDataset

__all__ = ["DEFAULT_ALPHA", "rpie_object"]

DEFAULT_ALPHA = 0.1  # the paper's recommended 0.05–0.25


def _weights(position: tuple[float, float]) -> tuple[int, int, tuple[float, float, float, float]]:
    """The top-left whole pixel and the bilinear weights of the (row, column) neighbours (0,0), (1,0),
    (0,1), (1,1) of a sub-pixel position."""
    r0, c0 = math.floor(position[0]), math.floor(position[1])
    f, g = position[0] - r0, position[1] - c0
    return r0, c0, ((1 - f) * (1 - g), f * (1 - g), (1 - f) * g, f * g)


def _read(obj: torch.Tensor, r0: int, c0: int, w: Sequence[float], n: int) -> torch.Tensor:
    patch = w[0] * obj[r0:r0 + n, c0:c0 + n]
    for (dr, dc), weight in zip(((1, 0), (0, 1), (1, 1)), w[1:]):
        if weight:
            patch = patch + weight * obj[r0 + dr:r0 + dr + n, c0 + dc:c0 + dc + n]
    return patch


def _spread_(obj: torch.Tensor, r0: int, c0: int, w: Sequence[float], update: torch.Tensor) -> None:
    n = update.shape[-1]
    for (dr, dc), weight in zip(((0, 0), (1, 0), (0, 1), (1, 1)), w):
        if weight:
            obj[r0 + dr:r0 + dr + n, c0 + dc:c0 + dc + n] += weight * update


@torch.no_grad()
def rpie_object(data: PtychoDataset, object_id: int, iterations: int, *, alpha: float = DEFAULT_ALPHA,
                start: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Object ``object_id`` of ``data`` (its ``canvas``, complex64) after ``iterations`` rPIE passes from
    ``start`` (default 1 everywhere: a transparent object), the probe ``data.probe`` held fixed."""
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0; got {iterations}")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1]; got {alpha}")
    indices = torch.nonzero(data.object_ids == object_id).flatten()
    if indices.numel() == 0:
        raise ValueError(f"object_id {object_id}: no pattern of the data belongs to it")
    obj = (torch.ones(data.canvas, dtype=torch.complex64) if start is None
           else start.to(torch.complex64).clone())
    probe = data.probe.to(torch.complex64)
    n = probe.shape[-1]
    power = probe.abs().square()
    step = probe.conj() / ((1 - alpha) * power + alpha * power.max())
    good = None if data.good_pixels is None else data.good_pixels.to(torch.bool)
    amplitudes = data.amplitudes[indices, 0]
    places = [_weights(data.positions[int(i)]) for i in indices]
    generator = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        for k in torch.randperm(len(indices), generator=generator).tolist():
            r0, c0, w = places[k]
            exit_wave = probe * _read(obj, r0, c0, w, n)
            field = data.propagator.field(exit_wave)
            fitted = torch.polar(amplitudes[k], field.angle())
            if good is not None:
                fitted = torch.where(good, fitted, field)
            _spread_(obj, r0, c0, w, step * (data.propagator.back(fitted) - exit_wave))
    return obj
