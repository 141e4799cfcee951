"""Worker processes for benchmarks made of independent runs: how many, how they start, their results."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import torch

__all__ = ["JOBS_HELP", "default_workers", "results_of"]

Job = TypeVar("Job")
Result = TypeVar("Result")

JOBS_HELP = ("worker processes of one torch thread each (default on a CPU: the --threads count when given, else "
             "the machine's cores; on CUDA 1, in this process)")


def default_workers(requested_threads: int | None, device_type: str) -> int:
    """``--jobs`` left out: on a CPU the cores the user allowed with ``--threads``, else all of them.

    Unlike torch's threads, which wait for one another at every op and so stall when the OS deschedules
    one of them on a busy machine, single-threaded processes run independently: beside busy processes
    each simply gets its share of the cores, so they are not capped by the load average. On CUDA the
    device is the bottleneck and one process drives it."""
    if device_type != "cpu":
        return 1
    return requested_threads or os.cpu_count() or 1


def _worker_context(device_type: str, preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    """CPU runs: workers forked from a server that imported ``preload`` (the heavy dependencies: torch and what
    the runs import) once, where the platform has a fork server; each spawned worker imported them itself (≈ 8 s
    of CPU apiece here for operator_tasks' torch, neuraloperator and torch._dynamo). The calling module is not
    preloaded: run as ``python -m``, each worker imports it afresh as its ``__main__``. Spawned workers
    elsewhere and on a GPU, where a CUDA driver touched by an import in the server would be unusable in its
    forks; never a plain fork of this process, whose threads may run."""
    if device_type != "cpu" or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


def _worker_start() -> None:
    """A worker: one torch thread, Ctrl-C left to the parent (which ends the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def results_of(function: Callable[[Job], Result], jobs: Iterable[Job], workers: int, device_type: str,
               preload: Sequence[str] = ()) -> Iterator[Result]:
    """``function(job)`` of each job as it finishes: in this process when ``workers`` is 1, else from that
    many worker processes, in the order they finish. On an interrupt (or any exception in the caller)
    the unfinished jobs stop; the results already yielded are the caller's to keep."""
    if workers == 1:
        yield from map(function, jobs)
        return
    pool = _worker_context(device_type, preload).Pool(workers, initializer=_worker_start)
    try:
        yield from pool.imap_unordered(function, jobs)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
