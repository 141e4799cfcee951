"""Where a benchmark's independent runs go, and their results as they finish: worker processes here
(``local``: how many, how they start), a Dask cluster (``tcp://HOST:PORT``, ``dask.distributed``) or Slurm
(``slurm``, through submitit). Every run sets one torch thread, wherever it runs, so that the numbers are
those of one single-threaded process."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import multiprocessing
import multiprocessing.context
import os
import signal
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from spectral_init.cli.usage import UsageError

from .common import importable

__all__ = ["EXECUTOR_HELP", "JOBS_HELP", "add_executor_arguments", "check_executor_flags", "default_workers",
           "executor_argument", "executor_config_argument", "results_of"]

Job = TypeVar("Job")
Result = TypeVar("Result")

JOBS_HELP = ("worker processes of one torch thread each (default on a CPU: the --threads count when given, else "
             "the machine's cores; on CUDA 1, in this process)")


EXECUTOR_HELP = ("where the runs go: local (--jobs worker processes here), tcp://HOST:PORT (a Dask scheduler; the "
                 "'cluster' extra) or slurm (submitit; its options from the [slurm] table of --executor-config) "
                 "(default: local)")
DASK_CONNECT_TIMEOUT = "20s"  # how long a scheduler may take to answer before the address counts as wrong
SLURM_POLL_SECONDS = 1.0  # how often submitted jobs are asked whether they are done
_NEEDS = {"dask": ("distributed", "pip install 'dask[distributed]' (or the 'cluster' extra)"),
          "slurm": ("submitit", "pip install submitit (or the 'cluster' extra)")}


def executor_argument(text: str) -> str:
    """An argparse type: ``local``, ``slurm`` or a Dask scheduler's ``tcp://HOST:PORT``, its package
    installed (else a usage error naming what to install)."""
    kind = "dask" if text.startswith("tcp://") else text
    if kind not in ("local", "dask", "slurm"):
        raise argparse.ArgumentTypeError(f"expected local, slurm or tcp://HOST:PORT (a Dask scheduler); got {text!r}")
    if kind == "dask" and not text.removeprefix("tcp://").rpartition(":")[2].isdigit():
        raise argparse.ArgumentTypeError(f"a Dask scheduler is tcp://HOST:PORT; got {text!r}")
    if kind in _NEEDS and importlib.util.find_spec(_NEEDS[kind][0]) is None:
        raise argparse.ArgumentTypeError(f"{text} needs {_NEEDS[kind][0]}, which is not installed: {_NEEDS[kind][1]}")
    return text


def executor_config_argument(text: str) -> dict[str, Any]:
    """An argparse type: a TOML file whose ``[slurm]`` table holds submitit's options (``slurm_partition``,
    ``timeout_min``, ``cpus_per_task``, … and ``folder`` for its logs)."""
    try:
        table = tomllib.loads(Path(text).read_text()).get("slurm", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc}") from None
    if not isinstance(table, dict):
        raise argparse.ArgumentTypeError(f"{text}: [slurm] must be a table of submitit options")
    return table


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor`` and ``--executor-config``, for a benchmark whose runs go through ``results_of``."""
    parser.add_argument("--executor", type=executor_argument, default="local", help=EXECUTOR_HELP)
    parser.add_argument("--executor-config", type=executor_config_argument, default=None,
                        help="a TOML file whose [slurm] table holds submitit's options for --executor slurm "
                        "(slurm_partition, timeout_min, cpus_per_task, folder for its logs; default: none)")


def check_executor_flags(args: argparse.Namespace) -> None:
    """Refuse the executor flags that would have no effect: ``--jobs`` beside a cluster (its workers run
    the jobs), ``--executor-config`` without ``--executor slurm``."""
    if args.executor != "local" and args.jobs is not None:
        raise UsageError(f"--jobs has no effect with --executor {args.executor} (the cluster's workers run the jobs): "
                         "drop it")
    if args.executor_config is not None and args.executor != "slurm":
        raise UsageError("--executor-config has no effect without --executor slurm: drop it")


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


def _single_threaded(function: Callable[[Job], Result], job: Job) -> Result:
    """A run on a remote worker, on one torch thread as a local worker runs it."""
    torch.set_num_threads(1)
    return function(job)


def results_of(function: Callable[[Job], Result], jobs: Iterable[Job], workers: int, device_type: str,
               preload: Sequence[str] = (), executor: str = "local",
               executor_config: Mapping[str, Any] | None = None) -> Iterator[Result]:
    """``function(job)`` of each job as it finishes. ``local``: in this process when ``workers`` is 1, else
    from that many worker processes; ``tcp://HOST:PORT``: on that Dask cluster's workers; ``slurm``: as
    Slurm jobs through submitit (``executor_config``: its options). In the order they finish. On an
    interrupt (or any exception in the caller) the unfinished jobs are cancelled; the results already
    yielded are the caller's to keep."""
    if executor.startswith("tcp://"):
        yield from _dask_results(function, list(jobs), executor)
    elif executor == "slurm":
        yield from _slurm_results(function, list(jobs), dict(executor_config or {}))
    elif workers == 1:
        yield from map(function, jobs)
    else:
        pool = _worker_context(device_type, preload).Pool(workers, initializer=_worker_start)
        try:
            yield from pool.imap_unordered(function, jobs)
            pool.close()
        finally:
            pool.terminate()
            pool.join()


def _dask_results(function: Callable[[Job], Result], jobs: list[Job], address: str) -> Iterator[Result]:
    from distributed import Client, as_completed

    call = functools.partial(_single_threaded, importable(function))
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except OSError as exc:  # no scheduler there: the user's address, not a crash
        raise UsageError(f"--executor {address}: no Dask scheduler answers there ({exc})") from None
    with client:
        futures = [client.submit(call, job, pure=False) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)


def _slurm_results(function: Callable[[Job], Result], jobs: list[Job], options: dict[str, Any]) -> Iterator[Result]:
    """Each job a Slurm job (submitit; ``options``: its parameters, ``folder`` for its logs, and ``cluster``
    — ``local`` runs the jobs as local processes, to try a configuration without Slurm)."""
    import submitit

    executor = submitit.AutoExecutor(folder=options.pop("folder", "slurm-logs"), cluster=options.pop("cluster", None))
    executor.update_parameters(**options)
    call = functools.partial(_single_threaded, importable(function))
    pending = [executor.submit(call, job) for job in jobs]
    try:
        while pending:
            done = [job for job in pending if job.done()]
            for job in done:
                pending.remove(job)
                yield job.result()
            if not done:
                time.sleep(SLURM_POLL_SECONDS)
    finally:
        for job in pending:
            job.cancel(check=False)
