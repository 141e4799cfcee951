"""Output directories and files that are never left half-written: proven writable first, written atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["ensure_writable_directory", "write_atomically"]


def ensure_writable_directory(path: Path, flag: str = "--output-dir") -> None:
    """Create ``path`` and write a test file there; a ValueError naming ``flag`` says why it cannot be used."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{flag} {str(path)!r} cannot be created or written: {exc.strerror or exc}") from None


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Complete or absent: ``write`` fills a temporary name, which is then renamed over ``path``."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
