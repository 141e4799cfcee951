"""Two reconstructions' phase agreement: what no measurement fixes (offset, ramp, canvas position) is taken
out, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from ptycho_torch.evaluation.agreement import phase_agreement


def smooth_phase(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :]
    field = np.fft.ifft2(np.fft.fft2(rng.normal(size=shape)) * np.exp(-(fy**2 + fx**2) * 300)).real
    return 0.5 * field / field.std()


def test_the_same_object_moved_turned_and_ramped_agrees_fully() -> None:
    phase = smooth_phase((96, 96), 0)
    first = np.exp(1j * phase)
    fy, fx = np.fft.fftfreq(96)[:, None], np.fft.fftfreq(96)[None, :]
    moved = np.fft.ifft2(np.fft.fft2(first) * np.exp(-2j * np.pi * (7.4 * fy - 5.2 * fx)))  # 7.4 down, 5.2 left
    yy, xx = np.indices((96, 96))
    second = moved * np.exp(1j * (2.0 + 0.03 * yy - 0.02 * xx))
    lit = np.zeros((96, 96), bool)
    lit[20:76, 20:76] = True
    lit_moved = np.fft.ifft2(np.fft.fft2(lit.astype(float)) * np.exp(-2j * np.pi * (7.4 * fy - 5.2 * fx))).real > 0.5
    result = phase_agreement(first, lit, second, lit_moved)  # each lit where its own scan lit it
    # the search stops at 1/32 px: found (7.406, -5.188) for (7.4, -5.2); a whole-pixel or 0.3 px error would
    # cost the correlation 0.0015 and the SSIM 0.025 here (the thresholded masks alone pull toward whole pixels)
    assert result.shift == pytest.approx((7.4, -5.2), abs=1 / 32)
    assert result.pearson > 0.9999 and result.ssim > 0.999


def test_a_blurred_copy_agrees_less() -> None:
    """What the agreement is read for: resolution. A finer object, blurred by σ = 2 px, no longer matches it."""
    phase = 2 * smooth_phase((96, 96), 1) + np.random.default_rng(2).normal(scale=0.3, size=(96, 96))
    first = np.exp(1j * phase)
    fy, fx = np.fft.fftfreq(96)[:, None], np.fft.fftfreq(96)[None, :]
    blurred = np.fft.ifft2(np.fft.fft2(first) * np.exp(-2 * (np.pi * 2.0) ** 2 * (fy**2 + fx**2)))
    lit = np.zeros((96, 96), bool)
    lit[20:76, 20:76] = True
    same, less = phase_agreement(first, lit, first, lit), phase_agreement(blurred, lit, first, lit)
    assert same.pearson > 0.9999 and same.ssim > 0.9999 and same.shift == pytest.approx((0.0, 0.0), abs=1e-6)
    assert less.pearson < 0.9 and less.ssim < 0.8


def test_too_little_overlap_is_refused() -> None:
    lit_a = np.zeros((32, 32), bool)
    lit_a[:3, :3] = True
    with pytest.raises(ValueError, match="too few to compare"):
        phase_agreement(np.ones((32, 32), complex), lit_a, np.ones((32, 32), complex), np.roll(lit_a, 16, axis=0))
