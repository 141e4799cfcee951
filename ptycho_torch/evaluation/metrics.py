"""The reconstructed object scored against its truth: MAE, PSNR and SSIM (scikit-image's definitions and
defaults, computed with numpy: importing them costs 2 s of every training run's start-up; the tests
check both against scikit-image), FRC resolution, and the lattice shares, of amplitude and phase."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ..simulation import PtychoDataset
from .alignment import phase_images, remove_phase_offset_and_plane
from .lattice import lattice_share, on_lattice
from .stitching import scanned_box, stitch, stitch_weight

__all__ = ["METRIC_NAMES", "StitchedObject", "evaluate_object", "evaluate_objects", "frc_resolution",
           "peak_signal_noise_ratio", "reconstruction_metrics", "structural_similarity"]


SSIM_WINDOW = 7  # scikit-image's default win_size
SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004, scikit-image's defaults
MIN_BOX_SHARE = 0.5  # a fully covered box smaller than this share of the covered pixels: score those pixels
METRIC_NAMES = ("mae_amp", "mae_phase", "psnr_amp", "psnr_phase", "ssim_amp", "ssim_phase", "frc_amp", "frc_phase",
                "lattice_amp", "lattice_phase")


@dataclass
class StitchedObject:
    """One test object: truth and aligned reconstruction over the scanned box, and its metrics."""

    truth: np.ndarray  # complex
    reconstruction: np.ndarray  # complex, phase offset and plane removed
    metrics: dict[str, float | None]


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
