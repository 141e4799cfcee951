"""Illumination probes: an idealized soft-edged disk, or one loaded from an ``.npz``."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "disk_probe",
    "load_probe",
    "max_defocus",
]


def max_defocus(N: int) -> float:
    """The largest |defocus| (rad at the disk's edge) ``disk_probe(N)`` allows: π·R/2 with R = N/4.

    The quadratic phase d·(r/R)² has the local frequency d·r/(π·R²) cycles/px; at r = R it reaches the
    Nyquist 0.5 when d = π·R/2, and beyond it the phase aliases on the N-px grid (the diffraction
    pattern then no longer fits the detector).
    """
    return math.pi * (N / 4) / 2


def disk_probe(N: int, radius: float | None = None, edge: float = 2.0, defocus: float = 0.0) -> torch.Tensor:
    """A disk of radius ``radius`` (default N/4) with a tanh edge ``edge`` px wide, flat in phase, or
    defocused: the Fresnel quadratic phase e^{i·defocus·(r/radius)²} of a beam some way from its focus
    (``defocus`` in rad at the disk's edge; its sign says on which side of the focus)."""
    if N < 2:
        raise ValueError(f"N must be >= 2; got {N}")
    radius = N / 4 if radius is None else radius
    if radius <= 0 or edge <= 0:
        raise ValueError(f"radius and edge must be > 0; got radius={radius}, edge={edge}")
    coords = torch.arange(N, dtype=torch.float64) - (N - 1) / 2
    r = torch.sqrt(coords.view(-1, 1) ** 2 + coords.view(1, -1) ** 2)
    amplitude = 0.5 * (1 - torch.tanh((r - radius) / edge))
    return torch.polar(amplitude, defocus * (r / radius) ** 2).to(torch.complex64)


def load_probe(path: str | Path, N: int) -> torch.Tensor:
    """The ``probeGuess`` array of an ``.npz`` file: N × N, finite; a real array is read as zero phase."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"probe file not found: {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"probe file {str(path)!r} is not an .npz archive (numpy.savez(path, probeGuess=...) "
                         "writes one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "probeGuess" not in data.files:
                raise ValueError(f"it has no 'probeGuess' array (found: {sorted(data.files)})")
            probe = np.asarray(data["probeGuess"])
    except ValueError as exc:
        raise ValueError(f"probe file {str(path)!r} is not a usable .npz: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"probe file {str(path)!r} cannot be read as .npz: {exc}") from None
    if probe.shape != (N, N):
        raise ValueError(f"probe file {str(path)!r}: probeGuess has shape {probe.shape}, expected ({N}, {N})")
    if not (np.issubdtype(probe.dtype, np.number) and not np.issubdtype(probe.dtype, np.bool_)):
        raise ValueError(f"probe file {str(path)!r}: probeGuess must be numeric (complex or real); got {probe.dtype}")
    probe = probe.astype(np.complex64)
    if not np.isfinite(probe).all():
        raise ValueError(f"probe file {str(path)!r}: probeGuess has non-finite values (NaN or inf)")
    if not np.abs(probe).any():
        raise ValueError(f"probe file {str(path)!r}: probeGuess is zero everywhere")
    return torch.from_numpy(probe)
