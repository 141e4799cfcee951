"""Reading a training checkpoint (``ptycho_torch.train``'s ``checkpoint.pt``) back: the file checked for what
it is before torch reads it, and the config of an older run completed with the fields it predates."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from .training import CHECKPOINT_FORMAT

__all__ = ["CheckpointError", "as_configured_then", "read_checkpoint"]

# fields added to the config after checkpoints were first written, and the value an older run had
FIELDS_ADDED = {("model", "input_layout"): "centred", ("data", "probe_defocus"): 0.0, ("loss_on",): "patches",
                ("lr_scaling",): "standard"}


class CheckpointError(ValueError):
    """A path that is not a training checkpoint: the message names it and says what it is instead."""


def as_configured_then(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the fields it predates filled in as its run had them (an older run fed
    the generator the measured, centred patterns), so that a resume compares like with like."""
    filled = {key: dict(value) if isinstance(value, dict) else value for key, value in saved.items()}
    for (*sections, name), value in FIELDS_ADDED.items():
        target: Any = filled
        for section in sections:
            target = target.get(section) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.setdefault(name, value)
    return filled


def _is_numpy_archive(path: Path) -> bool:
    """Whether ``path`` is a zip of .npy arrays (what np.savez writes; a torch checkpoint is a zip too,
    of other members)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """The checkpoint at ``path`` (on the CPU, weights only); a ``CheckpointError`` naming what the path is
    otherwise: missing, a directory (and the checkpoint.pt in it), a scan (an .npz), no zip at all (torch's
    own message would advise loading it unsafely), unreadable, or another format."""
    path = Path(path)
    if path.is_dir():
        inside = path / "checkpoint.pt"
        hint = f": give {str(inside)!r}" if inside.is_file() else " (a training run's checkpoint.pt is a file in it)"
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory{hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r}: no such file")
    if _is_numpy_archive(path):
        raise CheckpointError(f"checkpoint {str(path)!r} is a NumPy .npz archive (a scan?), not a checkpoint: the "
                              "checkpoint comes first, then the scan (python -m ptycho_torch.predict CHECKPOINT SCAN)")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            head = handle.read(12)
        raise CheckpointError(f"checkpoint {str(path)!r} is not a torch checkpoint (a zip archive); it starts with "
                              f"{head!r}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
        raise CheckpointError(f"checkpoint {str(path)!r} is not a readable torch checkpoint ({type(exc).__name__})"
                              ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a ptycho_torch.train checkpoint ({CHECKPOINT_FORMAT})")
    return checkpoint
