"""``one_intra_op_thread()``: run the library's many-tiny-op computations on one torch thread.

The edge-of-chaos fixed point (hundreds of small FFTs and elementwise ops) and the weight
draws gain nothing from torch's intra-op threads, and lose a great deal on a busy machine:
every op waits for its OpenMP threads, and one that the OS has descheduled stalls all the
others (measured here beside other busy processes: 6–100× slower). Inside the block torch
uses one intra-op thread; the caller's setting is restored after. ``torch.set_num_threads``
is process-wide, so another Python thread running torch work at the same moment sees the
one thread too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["one_intra_op_thread"]


@contextlib.contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """torch's intra-op thread count set to 1 for the block (also a decorator), then restored."""
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
