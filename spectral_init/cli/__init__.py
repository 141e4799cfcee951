"""The command line: the ``spectral-init`` command (``command``) and the plumbing every command of this
project shares — ``python -m ptycho_torch.train``, ``predict``, ``simulation`` and every benchmark use it;
no library module of ``spectral_init`` or ``ptycho_torch`` imports it (a test checks it):

- ``threads``: the thread policy of a command (``--threads``, the busy-machine cap);
- ``usage``: usage errors and exit codes, the one-line parser, pydantic errors in one line, signals as
  interrupts;
- ``output_files``: output-directory locks (``file_lock``), earlier results moved aside, atomic writes;
- ``progress``: the progress bar or final progress line.

The plumbing is not an API: names there change without notice.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``spectral-init`` (the console script's entry point), imported when run: a command that only
    needs the plumbing does not load this one."""
    from .command import main as run

    return run(argv)


def build_parser() -> argparse.ArgumentParser:
    """The ``spectral-init`` parser (for the documentation's command-line page)."""
    from .command import build_parser as build

    return build()
