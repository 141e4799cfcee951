"""A one-line progress bar on stderr, for training and the benchmarks."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.enabled = enabled
        self.start = time.perf_counter()

    def step(self, note: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * min(self.done, self.total) / self.total)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{elapsed:6.1f}s {note[:40]:<40}"
        )
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
