"""For the tests of a resumed sweep: its work function wrapped to record each call (and to stop like
Ctrl-C after some), and its record without the wall-clock times a resumed run may differ in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# every wall-clock field of the sweeps' runs and summaries (training_comparison, gradient_ratios, operator_tasks)
TIMING_KEYS = frozenset({"seconds", "seconds_per_object", "inference_seconds_per_object", "wall_seconds"})


def recording(real: Callable[[Any], Any], calls: list[Any], key: Callable[[Any], Any],
              stop_after: int | None = None) -> Callable[[Any], Any]:
    """``real`` that appends ``key(item)`` to ``calls`` for every item it runs; with ``stop_after``, the
    call after that many raises KeyboardInterrupt instead (an interrupted sweep)."""

    def wrapped(item: Any) -> Any:
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append(key(item))
        return real(item)

    return wrapped


def without_timings(value: Any) -> Any:
    """``value`` with every ``TIMING_KEYS`` field removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value
