"""CXI scan files (HDF5; the layout CDTools, PtyPy, PyNX and ptychodus read and write): read, checked, and
written.

What is read, from ``entry_1``:

- ``instrument_1/detector_1/data``: the patterns, (n, H, W) photon counts;
- ``instrument_1/detector_1/mask`` (optional): (H, W), non-zero = a bad pixel, left out of the loss — except
  the value 0x1000, which the CXI format uses for "signal above background", a good pixel;
- ``instrument_1/detector_1/distance``: sample to detector, m;
- ``instrument_1/detector_1/basis_vectors`` (3, 2) or (2, 3): the lab-frame (x, y, z) step of one detector
  row and one column, m; without it, ``x_pixel_size`` / ``y_pixel_size`` with rows along −y and columns
  along −x (the format's default);
- ``instrument_1/source_1/wavelength`` (or ``energy``, J): m;
- ``sample_1/geometry_1/translation``: (n, 3), where the *sample* moved, m; the probe moves over the
  object by the negative;
- ``instrument_1/source_1/probe`` (optional): an (H, W) complex probe guess.

Positions in object pixels follow from the geometry (``CxiGeometry``): far field, an object pixel of
λz/(N·dp) along each detector axis; near field (in-line holography with a diverging beam), the detector
pixel demagnified, dp/M with M = (z₁ + z₂)/z₁, where the focus-to-sample distance z₁ is not in the file and
must be given. Any problem is a ``DataFileError`` naming the file and the entry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..optics import FAR_FIELD, Propagation, Propagator
from ..scan.placement import canvas_for
from .file_errors import DataFileError
from .scan_files import MAX_CANVAS, ScanFile

__all__ = ["CXI_ENTRIES", "CxiGeometry", "CxiScan", "detector_basis", "read_cxi", "scan_from_cxi", "write_cxi"]

CXI_ENTRIES = {
    "data": "entry_1/instrument_1/detector_1/data",
    "mask": "entry_1/instrument_1/detector_1/mask",
    "distance": "entry_1/instrument_1/detector_1/distance",
    "basis_vectors": "entry_1/instrument_1/detector_1/basis_vectors",
    "x_pixel_size": "entry_1/instrument_1/detector_1/x_pixel_size",
    "y_pixel_size": "entry_1/instrument_1/detector_1/y_pixel_size",
    "wavelength": "entry_1/instrument_1/source_1/wavelength",
    "energy": "entry_1/instrument_1/source_1/energy",
    "translation": "entry_1/sample_1/geometry_1/translation",
    "probe": "entry_1/instrument_1/source_1/probe",
}
SIGNAL_ABOVE_BACKGROUND = 0x1000  # a mask value that marks a good pixel (CXI)
PLANCK_TIMES_C = 6.62607015e-34 * 299_792_458.0  # J·m: wavelength = hc / energy


def detector_basis(row_pixel: float, column_pixel: float) -> np.ndarray:
    """(3, 2): the CXI format's default detector, rows along −y and columns along −x, with these pixel
    sizes (m)."""
    return np.array([[0.0, -column_pixel], [-row_pixel, 0.0], [0.0, 0.0]])


@dataclass(frozen=True)
class CxiGeometry:
    """Where the detector's pixels sit, and what one object pixel is.

    ``basis`` holds the lab-frame (x, y, z) step of one detector row (``basis[:, 0]``) and one column
    (``basis[:, 1]``), m. ``focus_distance`` (z₁) only in the near field: the object sees the beam
    magnified M = (z₁ + z₂)/z₁ on the detector (Fresnel scaling theorem), which equals a plane wave
    propagated over ``effective_distance`` = z₂/M at the demagnified pixel ``object_basis``.
    """

    wavelength: float
    detector_distance: float
    basis: np.ndarray  # (3, 2)
    shape: tuple[int, int]  # the patterns' (H, W)
    propagation: Propagation
    focus_distance: float | None = None

    @property
    def magnification(self) -> float:
        if self.propagation == "far-field" or self.focus_distance is None:
            return 1.0
        return (self.focus_distance + self.detector_distance) / self.focus_distance

    @property
    def effective_distance(self) -> float:
        """The plane-wave propagation distance between object and (demagnified) detector: z₂/M."""
        return self.detector_distance / self.magnification

    @property
    def object_basis(self) -> np.ndarray:
        """(3, 2): the lab-frame step of one object pixel along the patterns' rows and columns, m."""
        if self.propagation == "near-field":
            return self.basis / self.magnification
        # far field: the detector grid's reciprocal, λz/(N·|b|²)·b along each axis (orthogonal axes)
        columns = [self.wavelength * self.detector_distance / (n * float(b @ b)) * b
                   for n, b in zip(self.shape, self.basis.T)]
        return np.stack(columns, axis=1)

    @property
    def object_pixel(self) -> tuple[float, float]:
        """The object pixel's size along rows and columns, m."""
        sizes = np.linalg.norm(self.object_basis, axis=0)
        return float(sizes[0]), float(sizes[1])

    def positions(self, translations: np.ndarray) -> np.ndarray:
        """(n, 2) probe positions in object pixels (row, column) for the sample's ``translations`` (n, 3):
        the probe moves by their negative; each solved in the object pixel basis (least squares, so a
        component along the beam is ignored)."""
        solved, *_ = np.linalg.lstsq(self.object_basis.astype(np.float64), -translations.T.astype(np.float64),
                                     rcond=None)
        return solved.T

    def translations(self, positions: np.ndarray) -> np.ndarray:
        """(n, 3): the sample translations, m, that put the probe at ``positions`` (n, 2) object pixels (row,
        column) — the inverse of ``positions``."""
        return -(self.object_basis.astype(np.float64) @ np.asarray(positions, dtype=np.float64).T).T

    def propagator(self) -> Propagator:
        """How an exit wave on the object's pixels becomes these patterns."""
        if self.propagation == "far-field":
            return FAR_FIELD
        return Propagator.near_field(self.shape, self.object_pixel, self.wavelength, self.effective_distance)

    def describe(self) -> dict[str, Any]:
        return {"propagation": self.propagation, "wavelength_m": self.wavelength,
                "detector_distance_m": self.detector_distance, "focus_distance_m": self.focus_distance,
                "magnification": self.magnification, "effective_distance_m": self.effective_distance,
                "object_pixel_m": list(self.object_pixel)}


@dataclass
class CxiScan:
    """A CXI file's scan, checked: counts (n, H, W), the good pixels, the geometry, each pattern's probe
    position on the object (top-left row, column, from 0), and a probe guess where the file holds one."""

    path: Path
    counts: np.ndarray  # (n, H, W) float32 photon counts
    good_pixels: np.ndarray  # (H, W) bool
    translations: np.ndarray  # (n, 3) the sample's, m, as in the file
    geometry: CxiGeometry
    positions: np.ndarray  # (n, 2) float64 object pixels, the smallest row and column 0
    origin: tuple[float, float]  # what was subtracted from the positions (object pixels)
    probe: np.ndarray | None  # (H, W) complex64
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.counts.shape[0]


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError("reading CXI files needs h5py (pip install h5py)") from None
    return h5py


def _entry(path: Path, h5: Any, name: str, *, required: bool = True) -> np.ndarray | None:
    key = CXI_ENTRIES[name]
    if key not in h5:
        if required:
            raise DataFileError(path, key, "missing (a CXI scan needs it)")
        return None
    node = h5[key]
    if not hasattr(node, "shape"):
        raise DataFileError(path, key, "is a group, where a dataset is expected")
    value = np.asarray(node[()])
    if value.dtype.kind not in "iufc":
        raise DataFileError(path, key, f"dtype {value.dtype} where numbers are expected")
    values = value.view(value.real.dtype) if np.iscomplexobj(value) else value
    if not np.isfinite(values).all():
        raise DataFileError(path, key, "holds non-finite values (NaN or inf)")
    return value


def _positive_scalar(path: Path, h5: Any, name: str) -> float | None:
    value = _entry(path, h5, name, required=False)
    if value is None:
        return None
    if value.size != 1 or not float(value.reshape(-1)[0].real) > 0:
        raise DataFileError(path, CXI_ENTRIES[name], f"must be one positive number; got {value.reshape(-1)[:3]}")
    return float(value.reshape(-1)[0].real)


def _basis(path: Path, h5: Any) -> np.ndarray:
    basis = _entry(path, h5, "basis_vectors", required=False)
    if basis is not None:
        if basis.shape == (2, 3):
            basis = basis.T
        if basis.shape != (3, 2):
            raise DataFileError(path, CXI_ENTRIES["basis_vectors"], f"shape {basis.shape}; (3, 2) or (2, 3) expected")
        basis = basis.astype(np.float64)
        if np.linalg.matrix_rank(basis) < 2:
            raise DataFileError(path, CXI_ENTRIES["basis_vectors"], "the row and column steps are parallel or zero")
        return basis
    x = _positive_scalar(path, h5, "x_pixel_size")
    y = _positive_scalar(path, h5, "y_pixel_size")
    if x is None and y is None:
        raise DataFileError(path, CXI_ENTRIES["basis_vectors"], "missing, and no x_pixel_size or y_pixel_size either")
    x, y = x or y, y or x
    return detector_basis(y, x)


def _wavelength(path: Path, h5: Any) -> float:
    wavelength = _positive_scalar(path, h5, "wavelength")
    if wavelength is not None:
        return wavelength
    energy = _positive_scalar(path, h5, "energy")
    if energy is None:
        raise DataFileError(path, CXI_ENTRIES["wavelength"], "missing, and no source energy either")
    return PLANCK_TIMES_C / energy


def _good_pixels(path: Path, h5: Any, shape: tuple[int, int], notes: list[str]) -> np.ndarray:
    mask = _entry(path, h5, "mask", required=False)
    if mask is None:
        return np.ones(shape, dtype=bool)
    if mask.shape != shape:
        raise DataFileError(path, CXI_ENTRIES["mask"], f"shape {mask.shape}; the patterns are {shape}")
    if mask.dtype.kind not in "iu":
        raise DataFileError(path, CXI_ENTRIES["mask"], f"dtype {mask.dtype}; integer flags expected")
    good = (mask == 0) | (mask == SIGNAL_ABOVE_BACKGROUND)
    if not good.any():
        raise DataFileError(path, CXI_ENTRIES["mask"], "marks every pixel bad")
    if not good.all():
        notes.append(f"{int((~good).sum())} bad pixel(s) in the mask, left out of the loss")
    return good


def read_cxi(path: Path | str, propagation: Propagation = "far-field", focus_distance: float | None = None) -> CxiScan:
    """The scan in the CXI file at ``path``, checked, with positions in object pixels for ``propagation``
    (near field: ``focus_distance`` z₁ in m is required). Raises ``DataFileError`` naming the entry."""
    path = Path(path)
    if propagation not in ("far-field", "near-field"):
        raise ValueError(f"propagation must be 'far-field' or 'near-field'; got {propagation!r}")
    if propagation == "near-field" and not (focus_distance is not None and focus_distance > 0
                                           and math.isfinite(focus_distance)):
        raise ValueError("near-field propagation needs the focus-to-sample distance z₁ in m (focus_distance > 0), "
                         "which a CXI file does not hold")
    h5py = _h5py()
    try:
        h5 = h5py.File(path, "r")
    except FileNotFoundError:
        raise DataFileError(path, None, "no such file") from None
    except OSError as exc:
        raise DataFileError(path, None, f"not an HDF5 (CXI) file ({exc})") from None
    notes: list[str] = []
    with h5:
        counts = _entry(path, h5, "data")
        if counts.ndim != 3 or counts.shape[0] < 1 or min(counts.shape[1:]) < 2:
            raise DataFileError(path, CXI_ENTRIES["data"], f"shape {counts.shape}; (n, H, W) patterns expected")
        if np.iscomplexobj(counts) or counts.min() < 0:
            raise DataFileError(path, CXI_ENTRIES["data"], "photon counts must be real and >= 0")
        shape = (int(counts.shape[1]), int(counts.shape[2]))
        translations = _entry(path, h5, "translation")
        if translations.shape != (counts.shape[0], 3):
            raise DataFileError(path, CXI_ENTRIES["translation"],
                                f"shape {translations.shape}; one (x, y, z) per pattern, ({counts.shape[0]}, 3), "
                                "expected")
        distance = _positive_scalar(path, h5, "distance")
        if distance is None:
            raise DataFileError(path, CXI_ENTRIES["distance"], "missing (the sample-to-detector distance)")
        geometry = CxiGeometry(wavelength=_wavelength(path, h5), detector_distance=distance, basis=_basis(path, h5),
                               shape=shape, propagation=propagation, focus_distance=focus_distance)
        good = _good_pixels(path, h5, shape, notes)
        probe = _entry(path, h5, "probe", required=False)
        if probe is not None and probe.shape != shape:
            raise DataFileError(path, CXI_ENTRIES["probe"], f"shape {probe.shape}; the patterns are {shape}")
        positions = geometry.positions(translations)
        origin = positions.min(axis=0)
        return CxiScan(path=path, counts=counts.astype(np.float32), good_pixels=good,
                       translations=translations.astype(np.float64), geometry=geometry, positions=positions - origin,
                       origin=(float(origin[0]), float(origin[1])),
                       probe=None if probe is None else probe.astype(np.complex64), notes=notes)


def write_cxi(path: Path | str, counts: np.ndarray, translations: np.ndarray, *, wavelength: float,
              detector_distance: float, pixel_size: float | Sequence[float], good_pixels: np.ndarray | None = None,
              probe: np.ndarray | None = None) -> None:
    """Write a scan as CXI (version 160): ``counts`` (n, H, W), the sample's ``translations`` (n, 3) in m,
    a square-grid detector of ``pixel_size`` (one, or (row, column)) with rows along −y and columns along
    −x, and optionally the good pixels and a probe guess. Written to a temporary name, then renamed."""
    h5py = _h5py()
    path = Path(path)
    rows, cols = (pixel_size, pixel_size) if np.isscalar(pixel_size) else tuple(pixel_size)
    tmp = path.with_name(f"{path.name}.tmp")
    try:
        with h5py.File(tmp, "w") as h5:
            h5["cxi_version"] = 160
            h5["number_of_entries"] = 1
            h5.create_dataset(CXI_ENTRIES["data"], data=np.asarray(counts), compression="gzip")
            h5[CXI_ENTRIES["distance"]] = float(detector_distance)
            h5[CXI_ENTRIES["x_pixel_size"]] = float(cols)
            h5[CXI_ENTRIES["y_pixel_size"]] = float(rows)
            h5[CXI_ENTRIES["basis_vectors"]] = detector_basis(rows, cols)
            h5[CXI_ENTRIES["wavelength"]] = float(wavelength)
            h5[CXI_ENTRIES["energy"]] = PLANCK_TIMES_C / float(wavelength)
            h5[CXI_ENTRIES["translation"]] = np.asarray(translations, dtype=np.float64)
            if good_pixels is not None:
                h5[CXI_ENTRIES["mask"]] = (~np.asarray(good_pixels, dtype=bool)).astype(np.uint32)
            if probe is not None:
                h5[CXI_ENTRIES["probe"]] = np.asarray(probe, dtype=np.complex64)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def scan_from_cxi(path: Path | str, propagation: Propagation = "far-field",
                  focus_distance: float | None = None) -> ScanFile:
    """A CXI file as the scan the model takes: amplitudes √counts / s in model units (s: the scale that
    makes the mean pattern's Σ amplitude² = N², kept as the intensity scale), the propagator of its
    geometry, its good pixels, positions in object pixels, and the file's probe — or, where it holds none,
    a guess from the data: the mean pattern's amplitude carried back to the sample plane with a flat phase
    (``probe_guessed``; the run then has to learn the probe)."""
    cxi = read_cxi(path, propagation, focus_distance)
    n, height, width = cxi.counts.shape
    if height != width:
        raise DataFileError(cxi.path, CXI_ENTRIES["data"], f"patterns of {height} × {width} px; the model takes "
                            "square patterns (crop them to N × N)")
    good = torch.from_numpy(cxi.good_pixels)
    counts = torch.from_numpy(cxi.counts) * good
    scale = math.sqrt(counts.double().sum(dim=(-2, -1)).mean().item()) / width
    if not scale > 0:
        raise DataFileError(cxi.path, CXI_ENTRIES["data"], "no photon in any pattern")
    amplitudes = counts.sqrt() / scale
    geometry = cxi.geometry
    propagator = geometry.propagator()
    notes = list(cxi.notes)
    power = amplitudes.double().square().sum(dim=(-2, -1)).mean()  # Parseval: Σ|P·O|² for |O| ≈ 1
    if cxi.probe is not None:
        probe = torch.from_numpy(cxi.probe)
    else:
        mean_amplitude = amplitudes.double().square().mean(dim=0).sqrt()
        probe = propagator.back(mean_amplitude.to(torch.complex64))  # said by its user (training, prediction)
    probe = (probe * (power / probe.abs().double().square().sum()).sqrt()).to(torch.complex64)
    positions = [(float(r), float(c)) for r, c in cxi.positions]
    canvas = canvas_for(positions, width)
    if max(canvas) > MAX_CANVAS:
        raise DataFileError(cxi.path, CXI_ENTRIES["translation"], f"the positions span {max(canvas) - width:.0f} "
                            f"object pixels, more than {MAX_CANVAS}: is the geometry right (propagation, "
                            "focus distance)?")
    return ScanFile(path=cxi.path, amplitudes=amplitudes.float(), probe=probe, positions=positions,
                    object_index=torch.zeros(n, dtype=torch.int64), canvas=canvas, object_truth=None,
                    patch_truth=None, metadata={"intensity_scale": scale, "geometry": geometry.describe()},
                    notes=notes, origin=cxi.origin, propagator=propagator, good_pixels=good,
                    probe_guessed=cxi.probe is None)
