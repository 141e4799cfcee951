"""The forward model of the simulation: the measured amplitude of probe × object (``optics``), and photon
noise."""

from __future__ import annotations

import torch

from ..optics import FAR_FIELD, Propagator

__all__ = [
    "diffraction_amplitude",
    "poisson_counts",
]


def diffraction_amplitude(patch: torch.Tensor, probe: torch.Tensor, propagator: Propagator = FAR_FIELD) -> torch.Tensor:
    """The measured amplitude of ``probe · patch``: by default |FFT(probe · patch)| over the last two axes,
    orthonormal and DC-centred, so that Parseval holds: Σ|result|² = Σ|probe · patch|²."""
    return propagator.amplitude(probe * patch)


def poisson_counts(
    amplitude: torch.Tensor, intensity_scale: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Photon counts ~ Poisson((intensity_scale · amplitude)²)."""
    rate = (intensity_scale * amplitude.double()) ** 2
    return torch.poisson(rate, generator=generator)
