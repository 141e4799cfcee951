"""The forward model: far-field diffraction amplitude of probe × object, and photon noise."""

from __future__ import annotations

import torch

__all__ = [
    "diffraction_amplitude",
    "poisson_counts",
]


def diffraction_amplitude(patch: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """|FFT(probe · patch)| over the last two axes, orthonormal and DC-centred.

    Orthonormal, so Parseval holds: Σ|result|² = Σ|probe · patch|².
    """
    exit_wave = probe * patch
    far_field = torch.fft.fft2(exit_wave, norm="ortho")
    return torch.fft.fftshift(far_field, dim=(-2, -1)).abs()


def poisson_counts(
    amplitude: torch.Tensor, intensity_scale: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Photon counts ~ Poisson((intensity_scale · amplitude)²)."""
    rate = (intensity_scale * amplitude.double()) ** 2
    return torch.poisson(rate, generator=generator)
