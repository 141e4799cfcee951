"""What the command lines here share for a user's mistake or a user's Ctrl-C: exit statuses, the
output-directory argument, SIGTERM read as an interrupt, and the environment check."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import re
import signal
import sys
import threading
import typing
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pydantic

from spectral_init.settings import environment_settings, unreported_misspellings

from .output_files import check_path_text

__all__ = [
    "ArgumentParser",
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "UsageError",
    "check_spectral_init_environment",
    "format_validation_error",
    "interrupts_raise_keyboard_interrupt",
    "stop_signals_ignored",
    "output_directory_argument",
    "plain_text",
]

EXIT_USAGE = 2  # the status argparse gives a bad flag; every CLI here uses it for bad input
EXIT_DIVERGED = 3  # a non-finite loss or gradient ended the training (train: the last good checkpoint is kept)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose error is one line — the problem and where to read the flags — instead of
    the whole usage (40 lines for the training command) before it."""

    def format_help(self) -> str:
        """The help with the docstrings' reST inline markup (``literal``, :role:`name`) as plain text."""
        return plain_text(super().format_help())

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (--help lists the options)\n")


_REST_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_REST_ROLE = re.compile(r":[a-z]+:`~?(.+?)`")


def plain_text(text: str) -> str:
    """reST inline markup as a terminal shows it best: ``x`` and :role:`x` as x."""
    return _REST_ROLE.sub(r"\1", _REST_LITERAL.sub(r"\1", text))


def format_validation_error(exc: pydantic.ValidationError, what: str,
                            model: type[pydantic.BaseModel] | None = None) -> str:
    """pydantic's errors as ``invalid WHAT:`` and one line per field (``model.fno_modes: …``), without
    its type codes and documentation links. With the ``model`` validated, an unknown key also gets the
    closest known one (``did you mean 'fno_modes'?``) or the keys allowed there."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])  # none for a check across fields: its message names them
        line = f"  {where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}"
        if err["type"] == "extra_forbidden" and model is not None:
            line += _known_keys_hint(model, err["loc"])
        lines.append(line)
    return f"invalid {what}:\n" + "\n".join(lines)


def _known_keys_hint(model: type[pydantic.BaseModel], loc: tuple[int | str, ...]) -> str:
    """'; did you mean …?' for an unknown key at ``loc`` of ``model``, or the keys allowed there."""
    for part in loc[:-1]:  # down through the nested models to the one that holds the key
        field = model.model_fields.get(str(part))
        nested = [a for a in (field.annotation, *typing.get_args(field.annotation)) if field is not None
                  and isinstance(a, type) and issubclass(a, pydantic.BaseModel)]
        if not nested:
            return ""
        model = nested[0]
    known = list(model.model_fields)
    closest = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f"; did you mean {closest[0]!r}?" if closest else f"; allowed here: {', '.join(known)}"


class UsageError(SystemExit):
    """A user's mistake, found before the work; the CLI prints ``error: <message>`` and exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USAGE)
        self.message = message

    def __str__(self) -> str:
        return self.message


def output_directory_argument(text: str) -> Path:
    """An argparse type for ``--output-dir``: refuses an empty path (``Path("")`` would be the current
    directory) and names or paths longer than the file system takes."""
    try:
        check_path_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--output-dir ")) from None
    return Path(text)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def interrupts_raise_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's or ``kill``'s stop) handled like Ctrl-C for the block: both raise
    KeyboardInterrupt, so one handler finishes what is pending and exits 130. Outside the main
    thread, where Python allows no signal handler, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def stop_signals_ignored() -> Iterator[None]:
    """Ctrl-C and SIGTERM ignored for the block (in the main thread; elsewhere nothing changes): for
    the last write of a run that is already stopping."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_spectral_init_environment() -> None:
    """Warn about misspelled ``SPECTRAL_INIT_*`` variables (naming the closest); refuse invalid ones."""
    for message in unreported_misspellings():
        print(f"warning: {message}", file=sys.stderr)
    try:
        environment_settings()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
