"""Scans in PtychoPINN's canonical dataset format (``.npz``): read, checked key by key, and written.

The keys, after the reference project's ``docs/data_contracts.md``:

- ``diff3d`` (n, H, W) float32: diffraction *amplitudes* (√intensity), H = W even; ``diffraction`` is
  accepted for it (both present: they must be equal). An integer dtype (uint16 detector counts) is
  read as intensities and converted to amplitudes, with a note; float whole numbers ≥ 2 throughout
  are refused as counts stored where amplitudes belong. (H, W, n) with n matching the coordinates,
  and a trailing singleton axis, are accepted; an (n, n, n) cube is read in the layout whose mean
  pattern matches the probe's far field. Checked against the probe: DC at the centre (a stack with DC
  at the corner is refused), and Parseval's mean Σ amplitude² / Σ|probe|² ≈ mean |object|² — float
  intensities fit it as Σ I only, and are converted to amplitudes with a note.
- ``probeGuess`` (H, W) complex64: the probe, in the units that make |FFT(probe · object)| (orthonormal,
  DC-centred) the amplitudes.
- ``xcoords``, ``ycoords`` (n,) float64: each pattern's scan position in pixels, the *centre* of its
  patch: x the column, y the row (the patch's top-left corner is at y − H/2, x − W/2).
- optional: ``objectGuess`` (M1, M2) complex64, the ground-truth object on whose pixel grid the
  coordinates lie; ``Y`` (n, H, W) complex64, the ground-truth patches; ``object_index`` (n,) int, which
  object each pattern belongs to (default 0); ``scan_index``; ``_metadata``, a JSON string (this
  package writes ``intensity_scale`` and ``nphotons`` there).

Every problem is a ``DataFileError`` naming the file, the key and what is wrong, raised before any
array is used.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..optics import FAR_FIELD, Propagator
from ..scan.placement import PatchPlacement, canvas_for
from .file_errors import DataFileError
from .pattern_checks import checked_scale, chunks, cube_layout, square_root

__all__ = [
    "DataFileError",
    "MAX_CANVAS",
    "ScanFile",
    "read_scan_file",
    "write_object_file",
    "write_scan_file",
]

MAX_CANVAS = 16384  # px: a scan whose positions span more is taken for a unit mistake (metres, nm)
DIFFRACTION_KEYS = ("diff3d", "diffraction")



@dataclass(eq=False)
class ScanFile:
    """One file's scan, checked: amplitudes (n, N, N), the probe, each pattern's patch position (top-left
    row, column on its object's canvas), which object each pattern belongs to, and the truth where given."""

    path: Path
    amplitudes: torch.Tensor  # (n, N, N) float32
    probe: torch.Tensor  # (N, N) complex64
    positions: list[tuple[float, float]]  # top-left (row, column) per pattern
    object_index: torch.Tensor  # (n,) int64, 0 … K−1
    canvas: tuple[int, int]  # every object's (height, width)
    object_truth: torch.Tensor | None  # (H, W) complex64 (objectGuess), one object
    patch_truth: torch.Tensor | None  # (n, N, N) complex64 (Y, or extracted from objectGuess)
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # conversions made while reading, to be said
    # the object canvas's (0, 0) in the file's pixel frame (row, column): without objectGuess the scan
    # is moved to start at pixel 0, and this brings what is written back to the file's coordinates
    origin: tuple[float, float] = (0.0, 0.0)
    propagator: Propagator = FAR_FIELD  # how the file's patterns were formed (CXI: from its geometry)
    good_pixels: torch.Tensor | None = None  # (N, N) bool, from a detector mask
    probe_guessed: bool = False  # the file held no probe: ``probe`` is a guess from the data, to be learned

    @property
    def N(self) -> int:
        return self.amplitudes.shape[-1]

    def __len__(self) -> int:
        return self.amplitudes.shape[0]



def _finite(path: Path, key: str, array: np.ndarray) -> None:
    values = array.view(array.real.dtype) if np.iscomplexobj(array) else array
    bad = sum(int(np.count_nonzero(~np.isfinite(values[part]))) for part in chunks(len(values)))
    if bad:
        raise DataFileError(path, key, f"{bad} non-finite value{'s' if bad != 1 else ''} (NaN or inf)")


def _numeric(path: Path, key: str, array: np.ndarray, *, complex_ok: bool) -> None:
    kind = array.dtype.kind
    allowed = "iuf" + ("c" if complex_ok else "")
    if kind not in allowed:
        what = "real or complex numbers" if complex_ok else "real numbers"
        raise DataFileError(path, key, f"dtype {array.dtype} where {what} are expected")


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every HDF5 (and so CXI) file
# what a file is, by its first bytes: an .npz is a zip archive; the others are said by name
_SIGNATURES = ((b"PK", None), (HDF5_SIGNATURE, "an HDF5 file (CXI, HDF5 or .h5)"),
               (b"\x93NUMPY", "a single .npy array"))


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataFileError(path, None, "no such file")
    if not path.is_file():
        raise DataFileError(path, None, "a directory, not a file")
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head.startswith(b"PK"):
        kind = next((name for magic, name in _SIGNATURES if name and head.startswith(magic)),
                    f"not an .npz (zip) archive: it starts with {head!r}")
        raise DataFileError(path, None, f"{kind}; this reader takes PtychoPINN's .npz dataset format (a zip of "
                            "arrays: diff3d, probeGuess, xcoords, ycoords)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for key in npz.files:
                try:
                    arrays[key] = npz[key]
                except ValueError as exc:  # an object array, which only pickle could read
                    if key == "_metadata":
                        continue  # optional provenance: not worth running pickled code for
                    raise DataFileError(path, key, f"cannot be read without pickle ({exc})") from None
            return arrays
    except DataFileError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise DataFileError(path, None, f"not a readable .npz file ({type(exc).__name__}: {exc})") from None


def _amplitudes(path: Path, arrays: dict[str, np.ndarray], n_coords: int, probe: np.ndarray,
                notes: list[str]) -> np.ndarray:
    present = [k for k in DIFFRACTION_KEYS if k in arrays]
    if not present:
        raise DataFileError(path, "diff3d", "missing (the diffraction amplitudes; 'diffraction' is accepted too)")
    if len(present) == 2 and not np.array_equal(arrays["diff3d"], arrays["diffraction"]):
        raise DataFileError(path, "diffraction", "present beside diff3d but different: one stack, please")
    key = present[0]
    data = arrays[key]
    _numeric(path, key, data, complex_ok=False)
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataFileError(path, key, f"shape {data.shape}: expected (n, H, W)")
    if data.shape[0] == data.shape[2] == n_coords:  # a cube: (n, H, W) or (H, W, n), told apart by content
        data = cube_layout(path, key, data, probe, notes)
    elif data.shape[2] == n_coords:
        data = np.moveaxis(data, 2, 0)
        notes.append(f"{key}: read as (H, W, n) and moved to (n, H, W)")
    n, height, width = data.shape
    if n != n_coords:
        raise DataFileError(path, key, f"{n} patterns but {n_coords} scan positions (xcoords)")
    if height != width or height % 2 or height < 2:
        raise DataFileError(path, key, f"patterns of {height} × {width}: square with an even side expected")
    if data.dtype.kind in "iu":
        if int(data.min(initial=0)) < 0:
            raise DataFileError(path, key, "negative counts")
        notes.append(f"{key}: {data.dtype} intensities (detector counts) converted to amplitudes √I")
        return square_root(data)
    _finite(path, key, data)
    if float(data.min(initial=0.0)) < 0:
        raise DataFileError(path, key, f"negative values (down to {float(data.min()):.3g}): amplitudes are >= 0")
    peak = float(data.max(initial=0.0))
    if peak >= 2 and all(np.array_equal(data[part], np.round(data[part])) for part in chunks(len(data))):
        raise DataFileError(path, key, f"whole numbers up to {peak:.0f} throughout: these look like intensities "
                            "(photon counts), not amplitudes; store √I, or the counts as integers to have them "
                            "converted")
    return data.astype(np.float32, copy=False)



def _coordinates(path: Path, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    coords = []
    for key in ("xcoords", "ycoords"):
        if key not in arrays:
            raise DataFileError(path, key, "missing (each pattern's scan position in pixels)")
        values = arrays[key]
        _numeric(path, key, values, complex_ok=False)
        values = values.reshape(-1) if values.ndim == 2 and 1 in values.shape else values
        if values.ndim != 1 or values.size == 0:
            raise DataFileError(path, key, f"shape {values.shape}: expected (n,), n >= 1")
        _finite(path, key, values)
        coords.append(values.astype(np.float64))
    if coords[0].size != coords[1].size:
        raise DataFileError(path, "ycoords", f"{coords[1].size} values but xcoords has {coords[0].size}")
    return coords[0], coords[1]


def _probe(path: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The probe, checked alone; ``_probe_fits`` checks it against the patterns."""
    if "probeGuess" not in arrays:
        raise DataFileError(path, "probeGuess", "missing (the probe, H × W complex)")
    probe = arrays["probeGuess"]
    _numeric(path, "probeGuess", probe, complex_ok=True)
    if probe.ndim != 2:
        raise DataFileError(path, "probeGuess", f"shape {probe.shape}: expected (H, W)")
    _finite(path, "probeGuess", probe)
    if not np.any(probe):
        raise DataFileError(path, "probeGuess", "all zero")
    return probe.astype(np.complex64)


def _probe_fits(path: Path, probe: np.ndarray, side: int) -> None:
    if probe.shape != (side, side):
        raise DataFileError(path, "probeGuess", f"shape {probe.shape}, but the patterns are {side} × {side}")


def _object_index(path: Path, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
    if "object_index" not in arrays:
        return np.zeros(n, dtype=np.int64)
    index = arrays["object_index"].reshape(-1)
    if index.dtype.kind not in "iu" or index.size != n or (index.size and int(index.min()) < 0):
        raise DataFileError(path, "object_index", f"expected {n} integers >= 0; got dtype {index.dtype}, "
                            f"{index.size} values")
    # renumber 0 … K−1 in order of first appearance
    _, first, inverse = np.unique(index, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)


def _truth(path: Path, arrays: dict[str, np.ndarray], n: int, side: int,
           objects: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    obj = arrays.get("objectGuess")
    if obj is not None:
        _numeric(path, "objectGuess", obj, complex_ok=True)
        if obj.ndim != 2 or min(obj.shape) < side:
            raise DataFileError(path, "objectGuess", f"shape {obj.shape}: expected (M1, M2), each >= {side}")
        _finite(path, "objectGuess", obj)
        if objects > 1:
            raise DataFileError(path, "objectGuess", f"one object, but object_index names {objects}")
        obj = obj.astype(np.complex64)
    patches = arrays.get("Y")
    if patches is not None:
        _numeric(path, "Y", patches, complex_ok=True)
        if patches.ndim == 4 and patches.shape[-1] == 1:
            patches = patches[..., 0]
        if patches.shape != (n, side, side):
            raise DataFileError(path, "Y", f"shape {patches.shape}: expected ({n}, {side}, {side})")
        _finite(path, "Y", patches)
        patches = patches.astype(np.complex64)
    return obj, patches


def _metadata(arrays: dict[str, np.ndarray], notes: list[str], path: Path) -> dict[str, Any]:
    raw = arrays.get("_metadata")
    if raw is None:
        return {}
    try:
        value = json.loads(str(raw.item() if raw.ndim == 0 else raw.reshape(-1)[0]))
    except (ValueError, TypeError):
        notes.append("_metadata: not JSON, ignored")
        return {}
    return value if isinstance(value, dict) else {}


def read_scan_file(path: Path | str) -> ScanFile:
    """Read and check a dataset file (``DataFileError`` on the first problem), converting what the format
    allows: integer intensities to amplitudes, (H, W, n) stacks to (n, H, W), positions from patch centres
    to top-left corners. Without ``objectGuess`` the positions are moved so that the scan starts at pixel 0
    (the object's frame is then arbitrary); with it they must lie on it."""
    path = Path(path)
    arrays = _read_arrays(path)
    notes: list[str] = []
    xs, ys = _coordinates(path, arrays)
    probe = _probe(path, arrays)
    amplitudes = _amplitudes(path, arrays, xs.size, probe, notes)
    n, side = amplitudes.shape[0], amplitudes.shape[-1]
    _probe_fits(path, probe, side)
    object_index = _object_index(path, arrays, n)
    objects = int(object_index.max()) + 1
    obj, patches = _truth(path, arrays, n, side, objects)
    rows, cols = ys - side / 2, xs - side / 2
    origin = (0.0, 0.0)
    if obj is None:
        origin = (float(math.floor(rows.min())), float(math.floor(cols.min())))
        rows, cols = rows - origin[0], cols - origin[1]
    positions = list(zip(rows.tolist(), cols.tolist()))
    canvas = obj.shape if obj is not None else canvas_for(positions, side)
    key = "ycoords" if rows.min() < 0 or rows.max() + side > canvas[0] else "xcoords"
    if max(canvas) > MAX_CANVAS:
        raise DataFileError(path, key, f"the positions span {max(canvas) - side:.0f} px, more than {MAX_CANVAS} "
                            "px: are they in pixels?")
    try:
        placement = PatchPlacement(positions, canvas, side)
    except ValueError:
        raise DataFileError(path, key, f"positions place patches outside objectGuess ({canvas[0]} × {canvas[1]} px; "
                            f"patch centres span x {xs.min():.1f}…{xs.max():.1f}, y {ys.min():.1f}…{ys.max():.1f}, "
                            f"patches {side} px)") from None
    truth_patches = torch.from_numpy(patches) if patches is not None else None
    if truth_patches is None and obj is not None:
        truth_patches = placement.extract(torch.from_numpy(obj))
    key = next(k for k in DIFFRACTION_KEYS if k in arrays)
    amplitudes = checked_scale(path, key, amplitudes, probe,
                                None if truth_patches is None else truth_patches.numpy(), notes)
    return ScanFile(path=path, amplitudes=torch.from_numpy(amplitudes), probe=torch.from_numpy(probe),
                    positions=positions, object_index=torch.from_numpy(object_index), canvas=tuple(canvas),
                    object_truth=None if obj is None else torch.from_numpy(obj), patch_truth=truth_patches,
                    metadata=_metadata(arrays, notes, path), notes=notes, origin=origin)


def write_scan_file(path: Path | str, amplitudes: torch.Tensor, probe: torch.Tensor,
                    positions: list[tuple[float, float]], *, object_index: torch.Tensor | None = None,
                    object_truth: torch.Tensor | None = None, patch_truth: torch.Tensor | None = None,
                    metadata: dict[str, Any] | None = None) -> None:
    """Write a scan in the canonical format: (n, N, N) amplitudes as ``diff3d``, the probe, each
    position (top-left row, column) as its patch centre in ``xcoords``/``ycoords``, and what truth and
    metadata are given. ``read_scan_file`` reads it back to the same arrays."""
    path = Path(path)
    side = amplitudes.shape[-1]
    amps = amplitudes.detach().reshape(-1, side, side).cpu().numpy().astype(np.float32)
    rows = np.array([r for r, _ in positions], dtype=np.float64)
    cols = np.array([c for _, c in positions], dtype=np.float64)
    arrays: dict[str, np.ndarray] = {
        "diff3d": amps,
        "probeGuess": probe.detach().cpu().numpy().astype(np.complex64),
        "xcoords": cols + side / 2,
        "ycoords": rows + side / 2,
        "scan_index": np.arange(len(positions), dtype=np.int64),
    }
    if object_index is not None:
        arrays["object_index"] = object_index.cpu().numpy().astype(np.int64)
    if object_truth is not None:
        arrays["objectGuess"] = object_truth.detach().cpu().numpy().astype(np.complex64)
    if patch_truth is not None:
        arrays["Y"] = patch_truth.detach().reshape(-1, side, side).cpu().numpy().astype(np.complex64)
    if metadata:
        arrays["_metadata"] = np.array(json.dumps(metadata))
    _save_atomically(path, arrays)


def write_object_file(path: Path | str, objects: torch.Tensor, coverage: torch.Tensor,
                      positions: list[tuple[float, float]], object_ids: torch.Tensor, patch: int,
                      origin: tuple[float, float] = (0.0, 0.0), probe: torch.Tensor | None = None) -> None:
    """A reconstruction: ``object`` (K, H, W) complex64, the stitched objects (0 where no patch reached);
    ``coverage`` (K, H, W), the summed |probe|² weight behind each pixel; and the scan it came from, as in
    the input format (``xcoords``/``ycoords`` patch centres, ``object_index``) in the scan file's own
    frame: ``origin`` (row, column) is where the object's pixel (0, 0) lies in it, and is written too;
    with ``probe`` (N, N), the probe it was reconstructed with (a retrieved one, as ``probe``)."""
    rows = np.array([r for r, _ in positions], dtype=np.float64) + origin[0]
    cols = np.array([c for _, c in positions], dtype=np.float64) + origin[1]
    arrays = {"object": objects.detach().cpu().numpy().astype(np.complex64),
              "coverage": coverage.detach().cpu().numpy().astype(np.float32),
              "xcoords": cols + patch / 2, "ycoords": rows + patch / 2,
              "origin": np.array(origin, dtype=np.float64),
              "object_index": object_ids.cpu().numpy().astype(np.int64)}
    if probe is not None:
        arrays["probe"] = probe.detach().cpu().numpy().astype(np.complex64)
    _save_atomically(Path(path), arrays)


def _save_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary name beside ``path``, then renamed: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
