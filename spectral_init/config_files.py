"""Reading a TOML or JSON file of config fields, with errors that name the file and what is wrong."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

__all__ = [
    "read_config_file",
]


def read_config_file(path: str | Path, label: str = "config file") -> dict[str, Any]:
    """The table of fields in ``path`` (``.toml`` or ``.json``); ``label`` names it in errors."""
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise ValueError(f"{label} must end in .toml or .json; got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{label} not found: {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{label} {str(path)!r} is not UTF-8 text (byte {exc.start}: "
                         f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{label} {str(path)!r} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{label} {str(path)!r} must hold a table/object of fields")
    return data
