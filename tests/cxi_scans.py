"""Simulated scans written as CXI files, for the tests of the CXI path: a smooth object, a structured probe, a
jittered grid of positions (off any lattice), far or near field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ptycho_torch.data.cxi import write_cxi
from ptycho_torch.optics import FAR_FIELD, Propagator
from ptycho_torch.scan.placement import PatchPlacement

PIXEL, WAVELENGTH = 1e-7, 1e-10  # object pixel and wavelength, m
Z1, Z2 = 1e-3, 1.0  # focus to sample, sample to detector: M = 1001, z_eff ≈ 1 mm, Fresnel number 0.1 a pixel


def smooth_object(canvas: int, generator: torch.Generator) -> torch.Tensor:
    f = torch.fft.fftfreq(canvas)
    low = torch.exp(-(f[:, None] ** 2 + f[None, :] ** 2) * 400)
    def field() -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(torch.randn(canvas, canvas, generator=generator)) * low).real
    return torch.polar(0.8 + 0.2 * torch.tanh(20 * field()), 0.6 * torch.tanh(20 * field())).to(torch.complex64)


def structured_probe(n: int) -> torch.Tensor:
    r = torch.arange(n) - n / 2 + 0.5
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    return torch.polar(torch.exp(-r2 / (2 * (n / 4.5) ** 2)), 0.015 * r2 + 0.3 * torch.sin(r[None] / 3)).to(
        torch.complex64)


def simulated_cxi(path: Path, propagation: str, n: int = 16, side: int = 4, step: int = 3,
                  start_probe: np.ndarray | None = None, bad_pixel: bool = True,
                  background: torch.Tensor | None = None) -> torch.Tensor:
    """A jittered grid scan (off any lattice: no raster ambiguity) of a smooth object, written as CXI with
    the geometry of ``propagation``, a detector ``background`` (n, n) of mean counts added where given;
    the true probe is returned."""
    generator = torch.Generator().manual_seed(0)
    jitter = torch.rand(side * side, 2, generator=generator) * 2
    positions = [(float(i * step + jitter[i * side + j, 0]), float(j * step + jitter[i * side + j, 1]))
                 for i in range(side) for j in range(side)]
    canvas = (side - 1) * step + n + 3
    obj, probe = smooth_object(canvas, generator), structured_probe(n)
    if propagation == "near-field":
        magnification = (Z1 + Z2) / Z1
        propagator = Propagator.near_field((n, n), (PIXEL, PIXEL), WAVELENGTH, Z2 / magnification)
        detector_pixel = PIXEL * magnification
    else:
        propagator, detector_pixel = FAR_FIELD, WAVELENGTH * Z2 / (n * PIXEL)
    amplitudes = propagator.amplitude(probe * PatchPlacement(positions, canvas, n).extract(obj))
    rate = (300 * amplitudes.double()) ** 2 + (0 if background is None else background.double())
    counts = torch.poisson(rate, generator=generator).numpy().astype(np.int32)
    translations = np.zeros((len(positions), 3))
    translations[:, 1] = [r * PIXEL for r, _ in positions]  # rows along −y, the probe moving by −translation
    translations[:, 0] = [c * PIXEL for _, c in positions]
    good = np.ones((n, n), dtype=bool)
    if bad_pixel:
        good[2, 5] = False
        counts[:, 2, 5] = 10**7  # a hot pixel: nonsense the loss must not see
    write_cxi(path, counts, translations, wavelength=WAVELENGTH, detector_distance=Z2, pixel_size=detector_pixel,
              good_pixels=good, probe=start_probe)
    return probe
