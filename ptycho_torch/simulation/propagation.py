"""Near-field propagation: the angular spectrum of a wave over a distance, the Fresnel regime of in-line
holography.

A field u(x, y) sampled at pixel (dy, dx) becomes, a distance z downstream,

    u_z = IFFT₂( FFT₂(u) · H ),   H(f_y, f_x) = exp(2πi·z·(√(1/λ² − f_x² − f_y²) − 1/λ)),

the exact scalar solution for every spatial frequency that propagates (f_x² + f_y² < 1/λ²); evanescent ones
are dropped (H = 0; none exist at X-ray wavelengths on any detector grid). The constant phase e^{2πiz/λ} is
taken out: it is the same at every pixel and no intensity shows it. The exponent is computed as
−z·(f_x² + f_y²)/(√(1/λ² − f²) + 1/λ), which keeps its digits where 1/λ ≈ 10¹⁰ m⁻¹ dwarfs f² (X-rays).

With a diverging beam — a point focus a distance z₁ before the sample, the detector z₂ after it — the
Fresnel scaling theorem turns the geometry into this one: a plane wave propagated over z₂/M at the
detector pixel divided by M = (z₁ + z₂)/z₁ (``ptycho_torch.data.cxi.CxiGeometry``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["angular_spectrum_transfer", "propagate"]


def angular_spectrum_transfer(shape: tuple[int, int], pixel_size: tuple[float, float], wavelength: float,
                              distance: float) -> torch.Tensor:
    """H (H, W) complex64 for a field of ``shape`` sampled at ``pixel_size`` (row, column) in the same unit
    as ``wavelength`` and ``distance``; unshifted (DC at (0, 0)), as ``torch.fft.fft2`` orders frequencies."""
    if not (wavelength > 0 and math.isfinite(wavelength) and math.isfinite(distance)):
        raise ValueError(f"wavelength must be > 0 and distance finite; got {wavelength!r}, {distance!r}")
    if min(pixel_size) <= 0:
        raise ValueError(f"pixel_size must be > 0; got {pixel_size!r}")
    fy = torch.fft.fftfreq(shape[0], d=pixel_size[0], dtype=torch.float64)
    fx = torch.fft.fftfreq(shape[1], d=pixel_size[1], dtype=torch.float64)
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    k2 = 1.0 / wavelength**2
    propagating = f2 < k2
    root = torch.sqrt(torch.clamp(k2 - f2, min=0.0))
    phase = -2 * math.pi * distance * f2 / (root + 1.0 / wavelength)  # 2πz(√(1/λ² − f²) − 1/λ), stably
    transfer = torch.polar(propagating.double(), phase)
    return transfer.to(torch.complex64)


def propagate(field: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    """``field`` (…, H, W) propagated by the transfer function ``transfer`` (H, W): IFFT₂(FFT₂(u)·H)."""
    return torch.fft.ifft2(torch.fft.fft2(field) * transfer)
