"""Argument checks shared by the library's functions and layers: one message per kind of mistake."""

from __future__ import annotations

import math

__all__ = ["check_positive_int", "check_positive_number"]


def check_positive_int(value: object, argument: str) -> int:
    """``value`` if it is an int >= 1 (bools excluded), else a ValueError naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument} must be an integer >= 1; got {value!r}")
    return value


def check_positive_number(value: object, argument: str) -> float:
    """``value`` if it is a finite real number > 0 (bools excluded), else a ValueError naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{argument} must be a finite number > 0; got {value!r}")
    return float(value)
