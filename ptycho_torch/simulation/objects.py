"""Simulated objects: the "lines" family the generators train on (random segments blurred at several
scales), and kinds it never sees — a Siemens star, a random smooth object, natural images — with the same
amplitude and phase ranges (amplitude 0.5 + 0.5·s, phase ``phase_range``·s for a pattern s ∈ [0, 1])."""

from __future__ import annotations

import math

import torch

__all__ = [
    "OBJECT_KINDS",
    "NATURAL_IMAGES",
    "lines_object",
    "natural_object",
    "object_of_kind",
    "siemens_star_object",
    "smooth_object",
]

# (σ in pixels, weight): sharp edges, mid-scale structure, and slow background variation.
_BLUR_SCALES: tuple[tuple[float, float], ...] = ((1.0, 0.5), (5.0, 0.3), (10.0, 0.2))


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Periodic Gaussian blur of a 2-D image, applied in Fourier space."""
    h, w = image.shape
    fy = torch.fft.fftfreq(h, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.rfftfreq(w, dtype=torch.float64).view(1, -1)
    transfer = torch.exp(-2 * math.pi**2 * sigma**2 * (fy**2 + fx**2))
    return torch.fft.irfft2(torch.fft.rfft2(image.double()) * transfer, s=(h, w))


def _draw_lines(size: int, n_lines: int, generator: torch.Generator) -> torch.Tensor:
    """A binary canvas with ``n_lines`` segments between uniformly random end points."""
    canvas = torch.zeros(size, size, dtype=torch.float64)
    ends = torch.rand(n_lines, 4, generator=generator, dtype=torch.float64) * (size - 1)
    for y0, x0, y1, x1 in ends.tolist():
        steps = int(2 * math.hypot(y1 - y0, x1 - x0)) + 2
        t = torch.linspace(0, 1, steps, dtype=torch.float64)
        ys = torch.round(y0 + t * (y1 - y0)).long()
        xs = torch.round(x0 + t * (x1 - x0)).long()
        canvas[ys, xs] = 1.0
    return canvas


def lines_object(
    size: int, n_lines: int = 100, seed: int = 0, phase_range: float = math.pi / 2
) -> torch.Tensor:
    """A complex object (size × size, complex64), deterministic from ``seed``.

    The blurred, max-normalized line image s ∈ [0, 1] sets amplitude 0.5 + 0.5·s
    and phase ``phase_range``·s.
    """
    if size < 2 or n_lines < 1:
        raise ValueError(f"lines_object needs size >= 2 and n_lines >= 1; got size={size}, n_lines={n_lines}")
    generator = torch.Generator().manual_seed(seed)
    lines = _draw_lines(size, n_lines, generator)
    image = sum(weight * _gaussian_blur(lines, sigma) for sigma, weight in _BLUR_SCALES)
    return _as_object(image, phase_range)


def _as_object(image: torch.Tensor, phase_range: float) -> torch.Tensor:
    image = image - image.min()
    image = image / image.max().clamp_min(1e-12)
    return torch.polar(0.5 + 0.5 * image, phase_range * image).to(torch.complex64)


def siemens_star_object(size: int, seed: int = 0, spokes: int = 36, phase_range: float = math.pi / 2) -> torch.Tensor:
    """A Siemens star of ``spokes`` dark-and-bright pairs filling the canvas, turned by a random angle
    (``seed``), its edges softened by a Gaussian of σ = 0.5 px (size × size, complex64)."""
    if size < 2 or spokes < 1:
        raise ValueError(f"siemens_star_object needs size >= 2 and spokes >= 1; got size={size}, spokes={spokes}")
    turn = torch.rand(1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).item() * 2 * math.pi
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = r.view(-1, 1), r.view(1, -1)
    star = (torch.sin(spokes * (torch.atan2(y, x) + turn)) > 0).double() * (torch.hypot(y, x) < 0.48 * size)
    return _as_object(_gaussian_blur(star, 0.5), phase_range)


def smooth_object(size: int, seed: int = 0, sigma: float = 3.0, phase_range: float = math.pi / 2) -> torch.Tensor:
    """White noise (``seed``) blurred by a Gaussian of ``sigma`` px: structure at every orientation and no
    edge (size × size, complex64)."""
    if size < 2 or not sigma > 0:
        raise ValueError(f"smooth_object needs size >= 2 and sigma > 0; got size={size}, sigma={sigma}")
    noise = torch.randn(size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return _as_object(_gaussian_blur(noise, sigma), phase_range)


# scikit-image's bundled photographs (no download): grey, or made grey by the mean of their channels
NATURAL_IMAGES = ("camera", "astronaut", "coins", "moon", "brick", "grass", "gravel", "coffee", "chelsea", "rocket",
                  "hubble_deep_field", "page", "text", "clock")


def _natural_image(name: str, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random square crop (half to all of the shorter side) of ``name``, area-averaged to size × size,
    in [0, 1]."""
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError("natural objects are scikit-image's bundled images: pip install scikit-image") from error
    image = torch.as_tensor(getattr(data, name)(), dtype=torch.float64)
    image = image.mean(dim=-1) if image.ndim == 3 else image
    short = min(image.shape)
    side = int(short * (0.5 + 0.5 * torch.rand(1, generator=generator, dtype=torch.float64).item()))
    top, left = (int(torch.randint(extent - side + 1, (1,), generator=generator)) for extent in image.shape)
    crop = image[top:top + side, left:left + side]
    resized = torch.nn.functional.interpolate(crop[None, None], size=(size, size), mode="area")[0, 0]
    resized = resized - resized.min()
    return resized / resized.max().clamp_min(1e-12)


def natural_object(size: int, seed: int = 0, phase_range: float = math.pi / 2) -> torch.Tensor:
    """Two different photographs of ``NATURAL_IMAGES`` (chosen by ``seed``, each a random crop) as the
    amplitude 0.5 + 0.5·a and the phase ``phase_range``·p (size × size, complex64): structure at every
    scale, uncorrelated between amplitude and phase, as nothing of the "lines" family is."""
    if size < 2:
        raise ValueError(f"natural_object needs size >= 2; got size={size}")
    generator = torch.Generator().manual_seed(seed)
    first, second = torch.randperm(len(NATURAL_IMAGES), generator=generator)[:2].tolist()
    amplitude = _natural_image(NATURAL_IMAGES[first], size, generator)
    phase = _natural_image(NATURAL_IMAGES[second], size, generator)
    return torch.polar(0.5 + 0.5 * amplitude, phase_range * phase).to(torch.complex64)


OBJECT_KINDS = {"lines": lines_object, "siemens": siemens_star_object, "smooth": smooth_object,
                "natural": natural_object}


def object_of_kind(kind: str, size: int, seed: int) -> torch.Tensor:
    """One object of ``kind`` (``OBJECT_KINDS``) on a size × size canvas, deterministic from ``seed``."""
    if kind not in OBJECT_KINDS:
        raise ValueError(f"unknown object kind {kind!r}; choose from {', '.join(OBJECT_KINDS)}")
    return OBJECT_KINDS[kind](size, seed=seed)
