"""The share of a stitched object's error that repeats with the scan lattice: a defect every patch
carries at the same place (as the diffraction pattern's DC peak printed at each patch centre was), on
scans whose positions lie on a lattice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spectral_init.checks import check_positive_int

from ..simulation import PtychoDataset

__all__ = ["lattice_floor", "lattice_note", "lattice_share", "on_lattice"]


ROUND_OFF = 1e-6  # rms error below which lattice_share sees no error at all (float32 round-off near 1)


def lattice_share(error: np.ndarray, step: int, mask: np.ndarray | None = None) -> float:
    """The share of an error image's power that repeats with the scan lattice (period ``step`` px along
    both axes): ‖p‖² / ‖e − ē‖², where p is the projection of the centred error e − ē onto images of
    period ``step`` — each pixel replaced by the mean over the pixels with its (row mod step, column
    mod step). A stitched object whose every patch carries the same defect at the same place scores
    near 1; an error unrelated to the scan scores near ``lattice_floor``. 0 for an error that is
    constant to within 1e-6 rms (an exact reconstruction's float32 round-off has no lattice to show).
    With a boolean ``mask`` only its pixels count (a sparse scan's covered pixels)."""
    check_positive_int(step, "step")
    rows, cols = np.indices(error.shape)
    if mask is not None:
        error, rows, cols = error[mask], rows[mask], cols[mask]
    centred = error.astype(np.float64) - error.mean()
    total = float(np.sum(centred**2))
    if total <= centred.size * ROUND_OFF**2:
        return 0.0
    cls = (rows % step) * step + cols % step
    sums = np.bincount(cls.ravel(), weights=centred.ravel(), minlength=step * step)
    counts = np.bincount(cls.ravel(), minlength=step * step)
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return float(np.sum(means**2 * counts)) / total


def on_lattice(positions: Sequence[tuple[float, float]], step: int) -> bool:
    """Whether every scan position lies on one lattice of period ``step`` px (a grid scan's do; random,
    spiral and measured positions do not): the condition under which a defect every patch carries at the
    same place repeats with period ``step`` in the stitched object, as ``lattice_share`` assumes. A
    step of 1 px is no lattice (every image repeats with it)."""
    if step < 2:  # every image repeats with period 1: there is no lattice to tell apart
        return False
    first_row, first_col = positions[0]
    return all(abs(v / step - round(v / step)) < 1e-6
               for row, col in positions for v in (row - first_row, col - first_col))


def lattice_note(data: PtychoDataset) -> str | None:
    """Why the lattice shares are null for ``data`` (its scan is not on a lattice), or None."""
    if all(on_lattice(data.positions_of(index), data.step) for index in data.object_patterns()):
        return None
    return (f"lattice_amp and lattice_phase are null: the scan positions are not on a lattice of step {data.step} px "
            "(a random, spiral or measured scan), so a defect every patch carries does not repeat with a period")


def lattice_floor(shape: tuple[int, int], step: int) -> float:
    """``lattice_share``'s expectation for an error of independent, identically distributed Gaussian
    pixels: (k − 1)/(n − 1), k = the lattice classes present, n = the pixels. The centred error is
    isotropic in an (n − 1)-dimensional space and the periodic images less the constant span k − 1 of
    those dimensions, so the share is Beta((k − 1)/2, (n − k)/2) distributed. An error correlated over
    fewer pixels than the step keeps about this expectation (with a wider spread); one correlated over
    the step itself scores higher without any lattice defect."""
    height, width = shape
    k = min(step, height) * min(step, width)
    n = height * width
    return (k - 1) / (n - 1) if n > 1 else 0.0
