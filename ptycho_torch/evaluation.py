"""The reconstructed object as the measure: predicted patches stitched at their scan positions, the
phase's unobservable offset and plane removed, then MAE, PSNR, SSIM and FRC resolution of amplitude
and phase against the ground truth, and the share of the error that repeats with the scan lattice
(``lattice_share``: a defect every patch carries at the same place, as the diffraction pattern's DC
peak printed at each patch centre was). A sparse scan is scored over its covered pixels.

What is removed before comparing, and why: ptychography cannot observe a global phase offset, nor
(with a probe whose phase is not fixed) a linear phase ramp across the object — a ramp is a shift of
the diffraction pattern. The reference's quality gate removes both, so does this module.

PSNR and SSIM follow scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` (its
defaults), computed here with numpy: importing them costs 2 s of every training run's start-up.
The tests check both against scikit-image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from spectral_init.checks import check_positive_int

from .scan.placement import PatchPlacement, stitch_weight
from .simulation import PtychoDataset

__all__ = [
    "METRIC_NAMES",
    "StitchedObject",
    "evaluate_object",
    "evaluate_objects",
    "frc_resolution",
    "lattice_floor",
    "lattice_note",
    "lattice_share",
    "on_lattice",
    "peak_signal_noise_ratio",
    "phase_images",
    "reconstruction_metrics",
    "remove_phase_offset_and_plane",
    "scanned_box",
    "stitch",
    "stitch_objects",
    "stitch_weight",
    "structural_similarity",
]

SSIM_WINDOW = 7  # scikit-image's default win_size
SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004, scikit-image's defaults
MIN_BOX_SHARE = 0.5  # a fully covered box smaller than this share of the covered pixels: score those pixels
ROUND_OFF = 1e-6  # rms error below which lattice_share sees no error at all (float32 round-off near 1)
METRIC_NAMES = ("mae_amp", "mae_phase", "psnr_amp", "psnr_phase", "ssim_amp", "ssim_phase", "frc_amp", "frc_phase",
                "lattice_amp", "lattice_phase")


def stitch(patches: torch.Tensor, positions: Sequence[tuple[float, float]], canvas: int | tuple[int, int],
           weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The object from its (n, N, N) complex patches whose top-left corners are ``positions`` (row,
    column; sub-pixel allowed, placed bilinearly: ``placement``) on a ``canvas`` (side, or height and
    width): each pixel the ``weight``-weighted mean of the patches over it. Returns (object, coverage =
    summed weight); pixels no patch covers are 0."""
    if len(positions) != patches.shape[0]:
        raise ValueError(f"{patches.shape[0]} patches but {len(positions)} scan positions")
    n = patches.shape[-1]
    placement = PatchPlacement(positions, canvas, n)
    w = weight.to(torch.float64)
    total = placement.place(patches, weight=w)  # in float64, a chunk at a time
    coverage = placement.place(w.expand(len(positions), n, n))
    return torch.where(coverage > 0, total / coverage.clamp_min(1e-300), 0), coverage


def scanned_box(coverage: torch.Tensor) -> tuple[slice, slice]:
    """The largest axis-aligned box (found by shrinking the covered pixels' bounding box, one side at a
    time, the side with the most uncovered pixels first) in which every pixel is covered."""
    covered = coverage > 0
    rows, cols = torch.nonzero(covered.any(1)).flatten(), torch.nonzero(covered.any(0)).flatten()
    if rows.numel() == 0:
        raise ValueError("no pixel is covered by a patch")
    top, bottom, left, right = rows[0].item(), rows[-1].item() + 1, cols[0].item(), cols[-1].item() + 1
    while top < bottom and left < right:
        box = covered[top:bottom, left:right]
        if bool(box.all()):
            return slice(top, bottom), slice(left, right)
        gaps = {"top": (~box[0]).sum().item(), "bottom": (~box[-1]).sum().item(),
                "left": (~box[:, 0]).sum().item(), "right": (~box[:, -1]).sum().item()}
        side = max(gaps, key=gaps.__getitem__)
        top, bottom = top + (side == "top"), bottom - (side == "bottom")
        left, right = left + (side == "left"), right - (side == "right")
    raise ValueError("the covered pixels hold no fully covered box")


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


def frc_resolution(a: np.ndarray, b: np.ndarray) -> float:
    """The spatial frequency (cycles per pixel, at most the Nyquist 0.5) where the Fourier ring
    correlation of two images first falls below the ½-bit threshold (van Heel & Schatz 2005:
    T = (0.2071 + 1.9102/√n) / (1.2071 + 0.9102/√n), n pixels in the ring). Higher is finer."""
    height, width = a.shape
    fa, fb = np.fft.fftshift(np.fft.fft2(a - a.mean())), np.fft.fftshift(np.fft.fft2(b - b.mean()))
    fy = np.fft.fftshift(np.fft.fftfreq(height))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(width))[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    step = 1 / min(height, width)
    rings = np.floor(radius / step).astype(int)
    for ring in range(1, int(0.5 / step) + 1):
        inside = rings == ring
        n = int(inside.sum())
        cross = np.sum(fa[inside] * np.conj(fb[inside]))
        power = math.sqrt(float(np.sum(np.abs(fa[inside]) ** 2) * np.sum(np.abs(fb[inside]) ** 2)))
        correlation = abs(cross) / power if power > 0 else 0.0
        threshold = (0.2071 + 1.9102 / math.sqrt(n)) / (1.2071 + 0.9102 / math.sqrt(n))
        if correlation < threshold:
            return (ring - 1) * step if ring > 1 else 0.0
    return 0.5


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


@dataclass
class StitchedObject:
    """One test object: truth and aligned reconstruction over the scanned box, and its metrics."""

    truth: np.ndarray  # complex
    reconstruction: np.ndarray  # complex, phase offset and plane removed
    metrics: dict[str, float | None]


def peak_signal_noise_ratio(truth: np.ndarray, pred: np.ndarray, data_range: float) -> float:
    """PSNR = 10·log10(data_range² / MSE), MSE = mean((truth − pred)²) in float64; +inf when equal."""
    mse = float(np.mean(np.square(truth.astype(np.float64) - pred.astype(np.float64))))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def structural_similarity(truth: np.ndarray, pred: np.ndarray, data_range: float,
                          window: int = SSIM_WINDOW, mask: np.ndarray | None = None) -> float:
    """Mean SSIM over every window × window box inside the image (Wang et al. 2004), as scikit-image's
    defaults compute it: uniform window, sample (co)variances, C1 = (K1·R)², C2 = (K2·R)², R = data_range.

    SSIM = (2·μx·μy + C1)(2·σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)) per box, averaged — over
    the boxes wholly inside a boolean ``mask`` where one is given.
    """
    x, y = truth.astype(np.float64), pred.astype(np.float64)

    def box_mean(a: np.ndarray) -> np.ndarray:
        return sliding_window_view(a, (window, window)).mean(axis=(-2, -1))

    n = window * window
    ux, uy = box_mean(x), box_mean(y)
    vx = n / (n - 1) * (box_mean(x * x) - ux * ux)
    vy = n / (n - 1) * (box_mean(y * y) - uy * uy)
    vxy = n / (n - 1) * (box_mean(x * y) - ux * uy)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    if mask is not None:
        ssim = ssim[sliding_window_view(mask, (window, window)).all(axis=(-2, -1))]
    return float(ssim.mean())


def _image_scores(truth: np.ndarray, pred: np.ndarray, error: np.ndarray, prefix: str,
                  mask: np.ndarray | None = None) -> dict[str, float | None]:
    """MAE of ``error``; FRC, PSNR and SSIM of ``pred`` against ``truth``. With a boolean ``mask`` (a
    sparse scan's covered pixels): MAE, PSNR and the data range over its pixels, SSIM over the windows
    wholly inside it, and no FRC (a Fourier ring needs the whole image; it is null)."""
    inside = np.ones(truth.shape, dtype=bool) if mask is None else mask
    data_range = max(float(truth[inside].max() - truth[inside].min()), 1e-12)
    psnr = peak_signal_noise_ratio(truth[inside], pred[inside], data_range)
    # SSIM's 7 × 7 window needs a box at least that large (a probe with a tiny support gives less)
    fits = min(truth.shape) >= SSIM_WINDOW
    if fits and mask is not None:
        fits = bool(sliding_window_view(mask, (SSIM_WINDOW, SSIM_WINDOW)).all(axis=(-2, -1)).any())
    return {f"mae_{prefix}": float(np.mean(np.abs(error[inside]))),
            f"frc_{prefix}": frc_resolution(pred, truth) if mask is None else None,
            f"psnr_{prefix}": None if math.isinf(psnr) else psnr,  # JSON has no inf
            f"ssim_{prefix}": structural_similarity(truth, pred, data_range, mask=mask) if fits else None}


def evaluate_object(pred_patches: torch.Tensor, true_patches: torch.Tensor, positions: Sequence[tuple[float, float]],
                    canvas: int | tuple[int, int], probe: torch.Tensor, step: int) -> StitchedObject:
    """Stitch one object's predicted and true patches alike (weights: |probe|², where the data
    constrain the object), crop to the scanned box, align the phase, and score; ``step`` is the scan
    lattice's period, for ``lattice_share`` (null where the positions are not on such a lattice).

    A sparse scan whose patches leave gaps (no fully covered box, or one holding under half of the
    covered pixels) is scored over its covered pixels inside their bounding box instead
    (``_image_scores``: no FRC); its uncovered pixels are 0 in the returned images."""
    weight = stitch_weight(probe)
    pred, coverage = stitch(pred_patches, positions, canvas, weight)
    truth, _ = stitch(true_patches, positions, canvas, weight)
    covered = coverage > 0
    try:
        rows, cols = scanned_box(coverage)
        mask = None
        # a box that holds under half of the covered pixels (a sparse scan's strip between the gaps)
        # would score a sliver of the object: score the covered pixels instead
        sparse = (rows.stop - rows.start) * (cols.stop - cols.start) < MIN_BOX_SHARE * int(covered.sum())
    except ValueError:  # gaps everywhere: no fully covered box at all
        sparse = True
    if sparse:  # every covered pixel, in their bounding box
        found = torch.nonzero(covered)
        if found.numel() == 0:
            raise ValueError("no pixel is covered by a patch")
        rows = slice(found[:, 0].min().item(), found[:, 0].max().item() + 1)
        cols = slice(found[:, 1].min().item(), found[:, 1].max().item() + 1)
        mask = covered[rows, cols]
    pred, truth = pred[rows, cols], truth[rows, cols]
    aligned = remove_phase_offset_and_plane(pred, truth, mask)
    truth_np, aligned_np = truth.numpy(), aligned.numpy()
    mask_np = None if mask is None else mask.numpy()
    if mask_np is not None:
        aligned_np = np.where(mask_np, aligned_np, 0)
    amp_truth, amp_pred = np.abs(truth_np), np.abs(aligned_np)
    # the phase error wrapped to [-π, π): 3.1 and -3.1 rad differ by 0.08, not 6.2; the images scored
    # without a cut inside the truth's values and from its lowest, so no global offset changes a score
    phase_truth, phase_pred = phase_images(truth_np, aligned_np, mask_np)
    phase_error = phase_pred - phase_truth
    lattice = on_lattice(positions, step)  # else no period to look for: null (lattice_note says why)
    metrics = {**_image_scores(amp_truth, amp_pred, amp_pred - amp_truth, "amp", mask_np),
               **_image_scores(phase_truth, phase_pred, phase_error, "phase", mask_np),
               "lattice_amp": lattice_share(amp_pred - amp_truth, step, mask_np) if lattice else None,
               "lattice_phase": lattice_share(phase_error, step, mask_np) if lattice else None}
    return StitchedObject(truth_np, aligned_np, {name: metrics[name] for name in METRIC_NAMES})


def stitch_objects(pred_patches: torch.Tensor, data: PtychoDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every object of ``data`` stitched from its predicted patches (in the data's order), as measured —
    no truth needed, nothing aligned: (K, H, W) complex objects and their (K, H, W) coverage (summed
    ``stitch_weight``; 0 where no patch reached)."""
    if pred_patches.shape[0] != len(data):
        raise ValueError(f"{pred_patches.shape[0]} predicted patches for {len(data)} patterns")
    weight = stitch_weight(data.probe)
    stitched = [stitch(_rows(pred_patches, index), data.positions_of(index), data.canvas, weight)
                for index in data.object_patterns()]
    return torch.stack([o for o, _ in stitched]), torch.stack([c for _, c in stitched])


def _rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``tensor[index]``, as a view where the index is a run of consecutive rows (one object's patterns
    stored together): no copy of a large scan's patches."""
    if index.numel() and bool((index == torch.arange(int(index[0]), int(index[0]) + index.numel())).all()):
        return tensor[int(index[0]) : int(index[0]) + index.numel()]
    return tensor[index]


def evaluate_objects(pred_patches: torch.Tensor, data: PtychoDataset) -> list[StitchedObject]:
    """Every object of ``data`` stitched from the predicted patches (in the data's order) at its scan
    positions, and scored against its truth; [] when the data carry no truth."""
    if pred_patches.shape[0] != len(data):
        raise ValueError(f"{pred_patches.shape[0]} predicted patches for {len(data)} patterns")
    if data.objects is None:
        return []
    return [evaluate_object(pred_patches[index], data.objects[index], data.positions_of(index), data.canvas,
                            data.probe, data.step) for index in data.object_patterns()]


def reconstruction_metrics(objects: Sequence[StitchedObject]) -> dict[str, float | None]:
    """Each metric's mean over the test objects (None where any object, or every one, lacks it)."""
    out: dict[str, float | None] = {}
    for name in METRIC_NAMES:
        values = [o.metrics[name] for o in objects]
        out[name] = None if not values or any(v is None for v in values) else float(np.mean(values))
    return out
