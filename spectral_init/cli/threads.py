"""The command-line tools' torch thread policy: how many intra-op threads a command uses
(``command_threads``, ``--threads``), the one-line note when a busy machine lowers the count, and
the record of it in every result.

Only the commands set torch's thread count (process-wide state); the library's functions never do.
Their many-tiny-op work — the edge-of-chaos fixed point, the finite checks of a draw — runs in numpy
on the calling thread instead, which a busy machine cannot stall the way it stalls torch's OpenMP
pool (measured beside other busy processes: 6–100× slower with torch's threads).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import torch

__all__ = [
    "ThreadChoice",
    "active_thread_record",
    "announce_threads",
    "choose_threads",
    "command_threads",
    "load_average",
    "THREADS_HELP",
    "positive_thread_count",
    "thread_record",
]


def load_average() -> float | None:
    """The 1-minute load average (runnable processes, averaged), or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class ThreadChoice:
    """The torch thread count a command runs with, the count asked for, the load average at the
    start, and the one-line note that says why when the count was lowered."""

    threads: int
    requested: int | None
    load_at_start: float | None
    note: str | None


def choose_threads(requested: int | None, cores: int | None = None, load: float | None = None) -> ThreadChoice:
    """``--threads``: the number given, else torch's own count capped at the cores the 1-minute load
    average leaves free (at least 1). On a busy machine torch's default — one thread per core — makes
    every op wait for threads the OS has descheduled; the cap avoids that. ``note`` says when it applies.
    """
    load = load_average() if load is None else load
    if requested is not None:
        return ThreadChoice(requested, requested, load, None)
    default = torch.get_num_threads()
    cores = cores or os.cpu_count() or 1
    if load is None:
        return ThreadChoice(default, None, load, None)
    busy = min(cores, round(load))
    free = max(1, cores - busy)
    if free >= default:
        return ThreadChoice(default, None, load, None)
    note = (f"note: {busy} of {cores} cores busy (1-minute load average {load:.2f}): using {free} torch "
            f"thread{'s' if free != 1 else ''} instead of {default} (--threads N to choose)")
    return ThreadChoice(free, None, load, note)


def thread_record(choice: ThreadChoice) -> dict[str, Any]:
    """What a result file records of threads: the count used, the one asked for, the load at start and end."""
    return {"torch_threads": choice.threads, "requested": choice.requested,
            "load_average_start": choice.load_at_start, "load_average_end": load_average()}


_ACTIVE: list[ThreadChoice] = []  # the choices of the command_threads blocks now open, innermost last
_UNANNOUNCED: dict[int, TextIO | None] = {}  # id of an open block's choice whose note is still to be said → stream


@contextlib.contextmanager
def command_threads(requested: int | None, stream: TextIO | None = None, *,
                    quiet: bool = False) -> Iterator[ThreadChoice]:
    """A command's torch threads for the block (``choose_threads``); the caller's count restored after.
    ``active_thread_record`` reads it inside. Its note (when the count was lowered) is said by
    ``announce_threads`` — once the command has checked its input and starts the work the note is about
    — on ``stream``, stderr by default; never where ``quiet`` (a command whose torch work runs in worker
    processes of one thread each)."""
    choice = choose_threads(requested)
    previous = torch.get_num_threads()
    torch.set_num_threads(choice.threads)
    _ACTIVE.append(choice)
    if choice.note and not quiet:
        _UNANNOUNCED[id(choice)] = stream
    try:
        yield choice
    finally:
        _UNANNOUNCED.pop(id(choice), None)
        _ACTIVE.pop()
        torch.set_num_threads(previous)


def announce_threads() -> None:
    """Say the innermost open ``command_threads`` block's note, if it has one not yet said: a command
    calls it when its input is checked and its work begins, so that a refused command says nothing of
    threads, and a command says it once."""
    if _ACTIVE and id(_ACTIVE[-1]) in _UNANNOUNCED:
        stream = _UNANNOUNCED.pop(id(_ACTIVE[-1]))
        print(_ACTIVE[-1].note, file=sys.stderr if stream is None else stream)


def active_thread_record() -> dict[str, Any]:
    """``thread_record`` of the innermost open ``command_threads`` block; outside one, torch's count as it is."""
    if _ACTIVE:
        return thread_record(_ACTIVE[-1])
    return thread_record(ThreadChoice(torch.get_num_threads(), None, None, None))


def positive_thread_count(text: str) -> int:
    """An argparse type for ``--threads``: an integer from 1 to the machine's core count (more threads
    than cores only wait for each other, and a huge count would spawn that many OpenMP threads)."""
    cores = os.cpu_count() or 1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads in [1, {cores}]; got {text!r}") from None
    if not 1 <= value <= cores:
        raise argparse.ArgumentTypeError(f"must be in [1, {cores}] (this machine's cores); got {value}")
    return value


THREADS_HELP = ("torch intra-op threads (default: torch's own count, lowered to the cores the 1-minute load "
                "average leaves free, with a note when it is)")
