"""How far two reconstructions of one measured scan agree, where no truth exists: the Pearson correlation
of their phase images where both are well lit, after the differences no measurement fixes are taken
out — a global phase offset, a linear phase ramp, and where each put the object on its canvas.

The steps: each object's ramp and offset are taken out over its lit region (the ramp from the mean
phase step between neighbouring pixels, so that no phase wraps); the first is moved onto the second by the
peak of their phase images' cross-correlation, then to the sub-pixel shift (a Fourier shift) that
maximizes the correlation below, searched to 1/32 px; then, over the pixels both light, ramp and offset
once more and a least-squares plane, and the correlation — and the mean SSIM (Wang et al. 2004, boxes
wholly inside that region, the second phase's range as the data range). For scale on the PETRA III scan:
``benchmarks/results/cpu-2core/measured-petra-p25/`` (CDTools' own run against itself at every stage, and
against a blur of itself).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ..optics import fourier_shift
from ..scan.placement import PatchPlacement
from .alignment import remove_phase_offset_and_plane
from .metrics import SSIM_WINDOW, structural_similarity

FINEST_STEP = 1 / 32  # px: where the search for the best shift stops
BOX_MARGIN = 8  # px of the object kept around its lit pixels

__all__ = ["PhaseAgreement", "illuminated", "phase_agreement", "without_offset_and_ramp"]


@dataclass(frozen=True)
class PhaseAgreement:
    pearson: float
    shift: tuple[float, float]  # (row, column) px that moved the first object onto the second
    pixels: int  # where both are well lit
    # mean SSIM of the two phases over the SSIM boxes wholly inside the region both light; None: no box fits
    ssim: float | None
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


def _whole_pixel_offset(reference: np.ndarray, moving: np.ndarray) -> tuple[float, float]:
    """The whole-pixel (row, column) shift that moves ``moving`` onto ``reference``: the cross-correlation's
    peak."""
    a, b = reference - reference.mean(), moving - moving.mean()
    correlation = np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b))).real
    peak = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    return tuple(float(at - n if at > n / 2 else at) for at, n in zip(peak, correlation.shape))  # type: ignore[return-value]


def _moved(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``image`` moved by ``shift`` px (``optics.fourier_shift``)."""
    moved = fourier_shift(torch.from_numpy(image.astype(np.complex128))[None],
                          torch.tensor([shift], dtype=torch.float64))
    return moved[0].numpy()


def _compared(a: np.ndarray, a_lit: np.ndarray, b: np.ndarray, b_lit: np.ndarray,
              shift: tuple[float, float]) -> PhaseAgreement:
    """``a`` moved by ``shift`` onto ``b``: their phases over the pixels both light, offset, ramp and plane out."""
    moved = _moved(a, shift)
    lit = (_moved(a_lit.astype(float), shift).real > 0.5) & b_lit
    if lit.sum() < 16:
        raise ValueError(f"the two objects share {int(lit.sum())} well-lit pixels after registration: too few to "
                         "compare")
    x = _plane_removed(np.angle(without_offset_and_ramp(moved, lit)), lit)
    y = _plane_removed(np.angle(without_offset_and_ramp(b, lit)), lit)
    return PhaseAgreement(pearson=float(np.corrcoef(x[lit], y[lit])[0, 1]), shift=shift, pixels=int(lit.sum()),
                          ssim=None, first_phase=x, second_phase=y, lit=lit)


def phase_agreement(first: np.ndarray, first_lit: np.ndarray, second: np.ndarray,
                    second_lit: np.ndarray) -> PhaseAgreement:
    """The Pearson correlation of two complex objects' phases where both are lit (boolean masks of their
    own shapes), each on its own canvas; see the module's steps."""
    first, first_lit, first_corner = _lit_box(first, first_lit)
    second, second_lit, second_corner = _lit_box(second, second_lit)
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
    best = _compared(a, a_lit, b, b_lit, _whole_pixel_offset(b_phase, a_phase))
    step = 0.5
    while step >= FINEST_STEP:  # climb to the best correlation among the 8 neighbours, then halve the step
        around = [_compared(a, a_lit, b, b_lit, (best.shift[0] + dy * step, best.shift[1] + dx * step))
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
        better = max(around, key=lambda c: c.pearson)
        if better.pearson > best.pearson:
            best = better
        else:
            step /= 2
    x, y, lit = best.first_phase, best.second_phase, best.lit
    boxes = sliding_window_view(lit, (SSIM_WINDOW, SSIM_WINDOW)).all(axis=(-2, -1)).any()
    ssim = structural_similarity(y, x, data_range=float(np.ptp(y[lit])), mask=lit) if boxes else None
    shift = (best.shift[0] + second_corner[0] - first_corner[0], best.shift[1] + second_corner[1] - first_corner[1])
    return dataclasses.replace(best, ssim=ssim, shift=shift)  # the shift between the whole canvases


def _lit_box(image: np.ndarray, lit: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``image`` and ``lit`` cropped to the box of the lit pixels and a margin of ``BOX_MARGIN`` px (the rest
    is never compared, and a smaller frame makes every trial shift cheaper; the margin keeps the crop's
    edge, whose sub-pixel shift rings, away from the lit pixels), and the box's top-left corner."""
    rows, cols = np.nonzero(lit)
    if rows.size == 0:
        raise ValueError("an object has no well-lit pixel to compare")
    top, left = max(int(rows.min()) - BOX_MARGIN, 0), max(int(cols.min()) - BOX_MARGIN, 0)
    box = (slice(top, rows.max() + 1 + BOX_MARGIN), slice(left, cols.max() + 1 + BOX_MARGIN))
    return image[box], lit[box], (top, left)
