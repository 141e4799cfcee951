"""An exclusive, non-blocking lock on an open file that the operating system drops when its process ends,
on POSIX (``flock``) and on Windows (``msvcrt.locking``), and the holder's pid written beside it.

Windows locks byte ranges, and a locked range cannot be read by another process: the lock is taken on one
byte far past the pid (a range beyond the end of the file may be locked), so that the process refused can
still read whose claim it met.
"""

from __future__ import annotations

import os

__all__ = ["read_holder", "try_lock", "write_holder"]

_WINDOWS_LOCK_OFFSET = 1 << 20  # the locked byte: past any pid written at the file's start

if os.name == "nt":
    import msvcrt

    def try_lock(fd: int) -> bool:
        """Take the lock on ``fd``; False when another process holds it."""
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def try_lock(fd: int) -> bool:
        """Take the lock on ``fd``; False when another process holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def write_holder(fd: int) -> None:
    """This process's pid, as the file's whole text (what ``read_holder`` reads)."""
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())


def read_holder(fd: int) -> str:
    """The pid the holder wrote, or 'unknown'."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 32).decode(errors="replace").strip() or "unknown"
