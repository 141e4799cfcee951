"""Optics: how an exit wave reaches the detector — in the far field a Fourier transform, in the near field
the angular spectrum of the wave over a distance (the Fresnel regime of in-line holography) — and an
object moved under a fixed probe by a sub-pixel shift.

Near field. A field u(x, y) sampled at pixel (dy, dx) becomes, a distance z downstream,

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
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = [
    "FAR_FIELD",
    "Propagation",
    "Propagator",
    "angular_spectrum_transfer",
    "fourier_shift",
    "moved_exit_wave",
    "propagate",
]

Propagation = Literal["far-field", "near-field"]


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


@dataclass(frozen=True)
class Propagator:
    """How an exit wave (…, N, N) reaches the detector. ``far-field``: |FFT₂| orthonormal and DC-centred;
    ``near-field``: |IFFT₂(FFT₂(ψ)·H)| with the angular-spectrum ``transfer`` H, the detector's pixels in
    the exit wave's place (no shift)."""

    kind: Propagation = "far-field"
    transfer: torch.Tensor | None = None  # (N, N) complex64, near field only

    def __post_init__(self) -> None:
        if self.kind not in ("far-field", "near-field"):
            raise ValueError(f"propagation must be 'far-field' or 'near-field'; got {self.kind!r}")
        if (self.kind == "near-field") != (self.transfer is not None):
            raise ValueError("a near-field propagator needs its transfer function, a far-field one has none")

    @classmethod
    def near_field(cls, shape: tuple[int, int], pixel_size: tuple[float, float], wavelength: float,
                   distance: float) -> Propagator:
        return cls("near-field", angular_spectrum_transfer(shape, pixel_size, wavelength, distance))

    def field(self, exit_wave: torch.Tensor) -> torch.Tensor:
        """The complex field at the detector."""
        if self.transfer is None:
            return torch.fft.fftshift(torch.fft.fft2(exit_wave, norm="ortho"), dim=(-2, -1))
        return propagate(exit_wave, self.transfer.to(exit_wave.device))

    def amplitude(self, exit_wave: torch.Tensor) -> torch.Tensor:
        return self.field(exit_wave).abs()

    def back(self, detector_field: torch.Tensor) -> torch.Tensor:
        """The inverse of ``field``: a detector field back at the exit plane."""
        if self.transfer is None:
            return torch.fft.ifft2(torch.fft.ifftshift(detector_field, dim=(-2, -1)), norm="ortho")
        return propagate(detector_field.to(torch.complex64), self.transfer.to(detector_field.device).conj())


FAR_FIELD = Propagator()


def fourier_shift(field: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``field`` (B, N, N) moved by ``shifts`` (B, 2) px (row, column), sub-pixel, as a phase ramp in
    Fourier space: result(x) = field(x − shift), periodic in the patch."""
    fy = torch.fft.fftfreq(field.shape[-2], device=field.device)
    fx = torch.fft.fftfreq(field.shape[-1], device=field.device)
    ramp = torch.exp(-2j * math.pi * (shifts[:, 0, None, None] * fy[None, :, None]
                                      + shifts[:, 1, None, None] * fx[None, None, :]))
    return torch.fft.ifft2(torch.fft.fft2(field) * ramp)


def moved_exit_wave(patch: torch.Tensor, probe: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """The exit wave with the object moved by ``shifts`` (B, 2) px under the fixed probe — how a refined
    scan position enters: the probe shifted by s, multiplied, and the product shifted back by −s, i.e.
    P(x)·O(x + s) (the detector, like the probe, stays where it is)."""
    moved = fourier_shift(probe.expand(patch.shape[0], *probe.shape[-2:]), shifts)
    return fourier_shift(moved * patch, -shifts)
