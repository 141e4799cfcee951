"""What the command lines here share for a user's mistake: one error type (exit 2) and the environment check."""

from __future__ import annotations

import sys

from spectral_init.settings import environment_settings, unreported_misspellings

__all__ = ["EXIT_USAGE", "UsageError", "check_spectral_init_environment"]

EXIT_USAGE = 2  # the status argparse gives a bad flag; every CLI here uses it for bad input


class UsageError(SystemExit):
    """A user's mistake, found before the work; the CLI prints ``error: <message>`` and exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USAGE)
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_spectral_init_environment() -> None:
    """Warn about misspelled ``SPECTRAL_INIT_*`` variables (naming the closest); refuse invalid ones."""
    for message in unreported_misspellings():
        print(f"warning: {message}", file=sys.stderr)
    try:
        environment_settings()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
