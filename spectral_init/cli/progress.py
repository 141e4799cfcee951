"""Progress of training and of the benchmarks on stderr, drawn by tqdm.

On a terminal: tqdm's bar with rate and ETA. Elsewhere (a log file, a pipe, CI):
nothing while the work runs and one final line, in tqdm's format but plain ASCII,
so a log holds no carriage return and no redrawn bar.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """Counts ``total`` steps of one piece of work called ``label``; ``enabled=False`` prints nothing."""

    def __init__(self, total: int, label: str, enabled: bool = True, *, initial: int = 0,
                 stream: TextIO | None = None) -> None:
        self.total, self.label = max(total, 1), label
        self.initial = self.done = initial  # steps done before this process started (a resumed run)
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.start = time.perf_counter()
        self._bar: tqdm | None = None
        if enabled and _is_terminal(self.stream):
            # tqdm draws nothing on a terminal that reports a size of 0×0 (a bare pty): fall back to 100×24
            size = shutil.get_terminal_size((100, 24))
            self._bar = tqdm(total=self.total, initial=initial, desc=label, file=self.stream,
                             ncols=size.columns, nrows=size.lines)

    def step(self, note: str = "") -> None:
        """One step done; ``note`` (what was just done) shows beside a terminal's bar."""
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(1)
        if self.done == self.total:
            self.close()

    def close(self) -> None:
        """End the bar, or write the final line where there is no terminal; only the first call counts."""
        if not self.enabled:
            return
        self.enabled = False
        if self._bar is not None:
            self._bar.close()
            return
        line = tqdm.format_meter(self.done, self.total, time.perf_counter() - self.start, prefix=self.label,
                                 ascii=True, ncols=100, initial=self.initial)
        self.stream.write(line + "\n")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
