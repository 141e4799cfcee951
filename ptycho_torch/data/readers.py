"""One entry for every scan file this package reads: CXI (HDF5) by its signature, else PtychoPINN's .npz."""

from __future__ import annotations

from pathlib import Path

from ..optics import Propagation
from .cxi import scan_from_cxi
from .file_errors import DataFileError
from .scan_files import HDF5_SIGNATURE, ScanFile, read_scan_file

__all__ = ["is_hdf5", "read_any_scan"]


def is_hdf5(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(8) == HDF5_SIGNATURE
    except OSError:
        return False  # the reader that follows says what the path is


def read_any_scan(path: Path | str, propagation: Propagation = "far-field",
                  focus_distance: float | None = None) -> ScanFile:
    """The scan in ``path``, checked: a CXI file with its own geometry (``propagation``, and for the near
    field ``focus_distance`` z₁ in m), or an .npz in PtychoPINN's format (far field only: it holds no
    geometry)."""
    path = Path(path)
    if is_hdf5(path):
        return scan_from_cxi(path, propagation, focus_distance)
    if propagation != "far-field":
        raise DataFileError(path, None, f"propagation {propagation!r} needs the geometry of a CXI file (wavelength, "
                            "distance, pixel size); an .npz in PtychoPINN's format holds far-field patterns")
    return read_scan_file(path)
