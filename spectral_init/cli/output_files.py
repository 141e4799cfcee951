"""Output directories and files: checked and claimed before any work, files written whole or not at all.

A run claims its output directory with an exclusive lock on ``OUTPUT_DIR/.lock`` (``file_lock``:
flock on POSIX, msvcrt on Windows; the lock file holds the claimant's pid), so a second run into the same directory is
refused at once instead of racing the first for ``metrics.json``. The kernel drops the
lock when the process ends, however it ends: a killed run never leaves a stale claim.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from .file_lock import read_holder, try_lock, write_holder

__all__ = [
    "LOCK_FILE",
    "check_path_text",
    "claim_output_directory",
    "ensure_writable_directory",
    "move_aside",
    "release_output_directory",
    "write_atomically",
]

LOCK_FILE = ".lock"
# POSIX limits on Linux: one name ≤ NAME_MAX bytes, a whole path ≤ PATH_MAX bytes (with its NUL).
NAME_MAX, PATH_MAX = 255, 4095

# Directories this process has claimed: resolved path → the lock file's descriptor. A process may
# claim a directory it already holds (a test calling main() twice), so the lock is taken once.
_CLAIMED: dict[Path, int] = {}


def _shown(path: Path | str) -> str:
    """The path for a message: an over-long one shortened, so the message stays one readable line."""
    text = str(path)
    return repr(text) if len(text) <= 80 else repr(text[:40] + "…" + text[-30:]) + f" ({len(text)} characters)"


def check_path_text(text: str, flag: str = "--output-dir") -> None:
    """Refuse what the file system would refuse, before it is asked: an empty path, a name over
    NAME_MAX bytes, a path over PATH_MAX bytes."""
    if not text.strip():
        raise ValueError(f"{flag} is empty: give a directory (for example runs/first)")
    encoded = os.fsencode(text)
    if len(encoded) > PATH_MAX:
        raise ValueError(f"{flag} {_shown(text)} is {len(encoded)} bytes long; paths may have at most {PATH_MAX}")
    for part in Path(text).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            which = "" if part == text else f" ({_shown(part)})"  # a one-name path is not shown twice
            raise ValueError(f"{flag} {_shown(text)} has a name of {len(os.fsencode(part))} bytes{which}; names may "
                             f"have at most {NAME_MAX}")


def ensure_writable_directory(path: Path, flag: str = "--output-dir") -> None:
    """Create ``path`` and write a test file there; a ValueError naming ``flag`` says why it cannot be used."""
    check_path_text(str(path), flag)
    try:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{flag} {_shown(path)} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{flag} {_shown(path)} cannot be created or written: {exc.strerror or exc}") from None


def claim_output_directory(path: Path, flag: str = "--output-dir") -> bool:
    """Create ``path``, prove it writable and lock it for this process until it is released or ends.

    Returns False when this process held it already. A ValueError names the directory, and the
    pid of the process holding it when it is taken.
    """
    ensure_writable_directory(path, flag)
    key = path.resolve()
    if key in _CLAIMED:
        return False
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    if not try_lock(fd):
        holder = read_holder(fd)
        os.close(fd)
        raise ValueError(f"{flag} {_shown(path)} is in use by another run (pid {holder}); wait for it to end, "
                         "or choose another directory")
    write_holder(fd)
    _CLAIMED[key] = fd
    return True


def release_output_directory(path: Path) -> None:
    """Give up this process's claim on ``path`` (nothing when it holds none)."""
    fd = _CLAIMED.pop(path.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the lock


def move_aside(directory: Path, names: Sequence[str]) -> Path | None:
    """Move the files ``names`` that exist in ``directory`` into a new ``replaced-<time>`` folder there.

    Returns that folder (None when there was nothing to move). The earlier run's files are kept,
    out of the way, so the directory never holds files of two runs and nothing is lost.
    """
    present = [name for name in names if (directory / name).exists()]
    if not present:
        return None
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    target = directory / f"replaced-{stamp}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = directory / f"replaced-{stamp}-{suffix}"
    target.mkdir()
    for name in present:
        shutil.move(directory / name, target / name)
    return target


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Complete or absent: ``write`` fills a temporary name, which is then renamed over ``path``."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
