"""``DataFileError``: a scan file that breaks the format, said as the file's problem."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DataFileError"]


class DataFileError(ValueError):
    """A dataset file that breaks the format: the message names the file, the key and the problem."""

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        where = f"{path}" if key is None else f"{path}: {key}"
        super().__init__(f"{where}: {problem}")
        self.path, self.key, self.problem = str(path), key, problem
