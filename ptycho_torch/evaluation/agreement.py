"""How far two reconstructions of one measured scan agree, where no truth exists: the Pearson correlation
of their phase images where both are well lit, after the differences no measurement fixes are taken
out — a global phase offset, a linear phase ramp, and where each put the object on its canvas.

The steps: each object's ramp and offset are taken out over its lit region (the ramp from the mean
phase step between neighbouring pixels, so that no phase wraps); the first is moved onto the second by the
peak of their phase images' cross-correlation, refined to a fraction of a pixel by a parabola through
the peak and its neighbours (a sub-pixel Fourier shift; on a broad peak the parabola is off by up to
about 0.3 px, which can only lower the correlation); then, over the pixels both light, ramp and offset
once more and a least-squares plane, and the correlation. For scale, on the PETRA III scan CDTools'
20-epoch reconstruction correlates 0.99 with its 150-epoch one, and a σ = 2 px blur of it 0.88.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..optics import fourier_shift
from ..scan.placement import PatchPlacement
from .alignment import remove_phase_offset_and_plane

__all__ = ["PhaseAgreement", "illuminated", "phase_agreement", "without_offset_and_ramp"]


@dataclass(frozen=True)
class PhaseAgreement:
    pearson: float
    shift: tuple[float, float]  # (row, column) px that moved the first object onto the second
    pixels: int  # where both are well lit
    # the compared phases, the first moved onto the second's canvas (framed), and where both are lit
    first_phase: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros((0, 0)))
    second_phase: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros((0, 0)))
    lit: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros((0, 0), bool))


def illuminated(probe: np.ndarray, positions: list[tuple[float, float]], canvas: tuple[int, int],
                level: float = 0.5) -> np.ndarray:
    """Where the scan lights the object well: the summed |probe|² over every position, at least ``level``
    of its maximum."""
    weight = torch.from_numpy(np.abs(probe) ** 2).float()
    placement = PatchPlacement(positions, canvas, weight.shape[-1])
    dose = placement.place(weight.expand(len(positions), *weight.shape)).numpy()
    return dose >= level * dose.max()


def without_offset_and_ramp(obj: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``obj`` with its linear phase ramp and mean phase over ``mask`` taken out: ``alignment``'s
    ``remove_phase_offset_and_plane`` against a flat phase."""
    flat = torch.ones(obj.shape, dtype=torch.complex128)
    return remove_phase_offset_and_plane(torch.from_numpy(obj), flat, torch.from_numpy(mask)).numpy()


def _plane_removed(phase: np.ndarray, mask: np.ndarray) -> np.ndarray:
    yy, xx = np.indices(phase.shape)
    design = np.stack([np.ones(int(mask.sum())), yy[mask], xx[mask]], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, phase[mask], rcond=None)
    return phase - (coefficients[0] + coefficients[1] * yy + coefficients[2] * xx)


def _offset(reference: np.ndarray, moving: np.ndarray) -> tuple[float, float]:
    """The (row, column) shift that moves ``moving`` onto ``reference``: the cross-correlation peak,
    refined by a parabola on each axis."""
    a, b = reference - reference.mean(), moving - moving.mean()
    correlation = np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b))).real
    peak = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    shift = []
    for axis, at in enumerate(peak):
        n = correlation.shape[axis]
        value = [correlation[tuple((at + k) % n if ax == axis else peak[ax] for ax in range(2))] for k in (-1, 0, 1)]
        curvature = value[0] - 2 * value[1] + value[2]
        fraction = 0.5 * (value[0] - value[2]) / curvature if curvature != 0 else 0.0
        s = at + fraction
        shift.append(float(s - n if s > n / 2 else s))
    return shift[0], shift[1]


def _moved(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``image`` moved by ``shift`` px (``optics.fourier_shift``)."""
    moved = fourier_shift(torch.from_numpy(image.astype(np.complex128))[None],
                          torch.tensor([shift], dtype=torch.float64))
    return moved[0].numpy()


def phase_agreement(first: np.ndarray, first_lit: np.ndarray, second: np.ndarray,
                    second_lit: np.ndarray) -> PhaseAgreement:
    """The Pearson correlation of two complex objects' phases where both are lit (boolean masks of their
    own shapes), each on its own canvas; see the module's steps."""
    height = max(first.shape[0], second.shape[0]) * 2
    width = max(first.shape[1], second.shape[1]) * 2  # room to move without wrapping into the other side

    def framed(image: np.ndarray, fill: complex | bool) -> np.ndarray:
        out = np.full((height, width), fill, dtype=image.dtype)
        out[:image.shape[0], :image.shape[1]] = image
        return out

    a, a_lit = framed(first.astype(np.complex128), 0), framed(first_lit, False)
    b, b_lit = framed(second.astype(np.complex128), 0), framed(second_lit, False)
    a_phase = np.where(a_lit, np.angle(without_offset_and_ramp(a, a_lit)), 0.0)
    b_phase = np.where(b_lit, np.angle(without_offset_and_ramp(b, b_lit)), 0.0)
    shift = _offset(b_phase, a_phase)
    moved = _moved(a, shift)
    lit = (_moved(a_lit.astype(float), shift).real > 0.5) & b_lit
    if lit.sum() < 16:
        raise ValueError(f"the two objects share {int(lit.sum())} well-lit pixels after registration: too few to "
                         "compare")
    x = _plane_removed(np.angle(without_offset_and_ramp(moved, lit)), lit)
    y = _plane_removed(np.angle(without_offset_and_ramp(b, lit)), lit)
    return PhaseAgreement(pearson=float(np.corrcoef(x[lit], y[lit])[0, 1]), shift=shift, pixels=int(lit.sum()),
                          first_phase=x, second_phase=y, lit=lit)
