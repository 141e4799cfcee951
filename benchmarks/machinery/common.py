"""What every benchmark shares: the device, the record of the environment, progress, output files."""

# Over 400 lines: the record's life cycle in one place (environment, the refusal to overwrite, resuming,
# keeping finished runs through an interrupt, writing JSON, Markdown and figure), each piece used by all.

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import torch

from ptycho_torch.tracking import INSTALL_HINT, Tracking, flat_metrics, flat_params, log_run, mlflow_installed
from ptycho_torch.tracking import tracking_from as _tracking_from
from ptycho_torch.training import DistributedContext, pick_device
from spectral_init import available_strategies, get_strategy
from spectral_init.cli.output_files import (
    claim_output_directory,
    move_aside,
    release_output_directory,
    write_atomically,
)
from spectral_init.cli.progress import Progress
from spectral_init.cli.threads import (
    THREADS_HELP,
    active_thread_record,
    announce_threads,
    command_threads,
    positive_thread_count,
)
from spectral_init.cli.usage import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    UsageError,
    check_spectral_init_environment,
    interrupts_raise_keyboard_interrupt,
    output_directory_argument,
)
from spectral_init.registry import required_params

from .figures import draw_all

__all__ = [
    "fresh_process_json",
    "CALIBRATED",
    "BenchmarkInterrupted",
    "HelpFormatter",
    "Progress",
    "UsageError",
    "benchmark_parser",
    "bounded_int",
    "positive_float",
    "comma_separated",
    "command_threads",
    "device_name",
    "environment",
    "format_ci",
    "keep_finished_runs",
    "markdown_header",
    "prepare_output_dir",
    "publish",
    "refuse_unused",
    "result_files",
    "run_arguments",
    "resolve_device",
    "run_cli",
    "select_strategies",
    "strategy_spec",
    "write_outputs",
]


class BenchmarkInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a benchmark, after the runs finished so far were written (``paths``)."""

    def __init__(self, finished: int, paths: dict[str, Path], resumable: bool) -> None:
        super().__init__(finished, paths, resumable)
        self.finished, self.paths, self.resumable = finished, paths, resumable

    def how_to_go_on(self) -> str:
        """What to rerun: a plain rerun is refused, since the partial record holds the output directory."""
        if self.resumable:
            return "rerun with --resume to finish it (or --overwrite to start again)"
        return "rerun with --overwrite for the whole report (this benchmark starts again)"


F = TypeVar("F", bound=Callable[..., Any])


def importable(function: F) -> F:
    """``function`` as its module's importable name gives it: a benchmark run as ``python -m`` defines its
    functions and classes in ``__main__``, which a remote worker cannot import, and whose classes are not
    the ones a worker's results come back as; by their module's name they are the same everywhere."""
    if function.__module__ != "__main__":
        return function
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None:
        return function
    return getattr(importlib.import_module(spec.name), function.__name__)


def run_cli(main: Callable[[Sequence[str] | None], int]) -> int:
    """A benchmark's exit status: ``main``'s; 2 with a one-line message for a ``UsageError``; 130 with a
    one-line message for Ctrl-C or SIGTERM (after ``keep_finished_runs`` wrote what had finished).

    The ``SPECTRAL_INIT_*`` environment is checked first: a misspelled variable is named with a
    warning, an invalid one is refused. The output directory claimed by ``prepare_output_dir`` is
    released at the end.

    A benchmark run as ``python -m`` runs as its importable module (``importable``), so that the records
    its runs send back from other processes are of its own classes.
    """
    main = importable(main)
    try:
        with interrupts_raise_keyboard_interrupt():
            check_spectral_init_environment()
            return main(None)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except BenchmarkInterrupted as exc:
        print(f"interrupted: the {exc.finished} finished run{'s' if exc.finished != 1 else ''} written to "
              f"{exc.paths['json']} (marked incomplete); {exc.how_to_go_on()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted before any run finished; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        while _CLAIMED_HERE:
            release_output_directory(_CLAIMED_HERE.pop())


_CLAIMED_HERE: list[Path] = []  # output directories claimed by prepare_output_dir, released by run_cli


# Options that change where or how fast a benchmark runs, or where it is logged, not what it measures: a
# resumed sweep may differ in them.
RUN_INDEPENDENT = frozenset({"output_dir", "threads", "jobs", "no_progress", "resume", "overwrite", "argv",
                             "tracking_uri", "experiment", "executor", "executor_config"})


def fresh_process_json(code: str, *args: str, timeout: float = 3600) -> Any:
    """Run ``code`` with ``args`` in a fresh Python process (this repository first on its path): the JSON
    its last line of output holds. Fresh: nothing imported or cached before, and its memory peak its own."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The options that decide what a benchmark measures, as JSON values: what an incomplete result
    records, and what ``--resume`` must find unchanged."""
    return json.loads(json.dumps({k: v for k, v in sorted(vars(args).items()) if k not in RUN_INDEPENDENT},
                                 default=str))


def result_files(output_dir: Path, stem: str) -> list[str]:
    """The files of a ``stem`` result in ``output_dir``: its JSON, Markdown and figures."""
    names = [name for name in (f"{stem}.json", f"{stem}.md", f"{stem}.png") if (output_dir / name).exists()]
    return names + sorted(p.name for p in output_dir.glob(f"{stem}_*.png"))


def prepare_output_dir(output_dir: Path, stem: str | None = None, *, overwrite: bool = False,
                       resume: bool | None = None, arguments: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Create ``output_dir``, prove it writable and claim it for this run (a second benchmark run into it
    is refused, naming this one's pid), before any work.

    With ``stem``, an earlier result there is never replaced silently: it is refused, naming its files;
    ``overwrite`` first moves them into ``output_dir/replaced-<time>/``; ``resume`` returns the record of
    an interrupted run of the same ``arguments`` (``run_arguments``), whose finished runs the benchmark
    then skips (None when there is nothing to resume: it starts afresh). ``resume`` None: the benchmark
    cannot resume."""
    try:
        if claim_output_directory(output_dir):
            _CLAIMED_HERE.append(output_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    present = [] if stem is None else result_files(output_dir, stem)
    previous = None
    if present:
        shown = repr(str(output_dir))
        if resume:
            previous = _resumable_record(output_dir / f"{stem}.json", arguments, shown)
        elif overwrite:
            print(f"moved the earlier {stem} result to {move_aside(output_dir, present)}")
        else:
            _refuse_earlier_result(stem, present, shown, resumable=resume is not None)
    announce_threads()  # the input is checked, the work begins
    return previous


def _refuse_earlier_result(stem: str, present: list[str], shown: str, resumable: bool) -> None:
    raise UsageError(f"--output-dir {shown} already holds a {stem} result ({', '.join(present)}): pass --overwrite "
                     f"to move it into {shown}/replaced-<time>/ first"
                     + (", or --resume to continue it if it was interrupted" if resumable else "")
                     + ", or choose another --output-dir")


def _resumable_record(path: Path, arguments: dict[str, Any] | None, shown: str) -> dict[str, Any]:
    """The interrupted run's record at ``path``; a complete one, an unreadable one or one of other
    arguments is refused, naming what differs."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume: {path} cannot be read as a benchmark record ({exc})") from None
    if not isinstance(record, dict) or not record.get("incomplete"):
        raise UsageError(f"--resume: {path} is a complete result, not an interrupted one: nothing to resume "
                         "(--overwrite moves it aside and starts anew)")
    saved = record.get("arguments")
    if saved != arguments:
        differing = sorted(k for k in set(saved or {}) | set(arguments or {})
                           if (saved or {}).get(k) != (arguments or {}).get(k))
        raise UsageError(f"--resume: the interrupted run in {shown} had other options ({', '.join(differing)}); "
                         "rerun it with the same ones, or --overwrite to start anew")
    return record


@contextlib.contextmanager
def keep_finished_runs(output_dir: Path, stem: str, partial_record: Callable[[], dict[str, Any]],
                       finished: Callable[[], int], arguments: dict[str, Any] | None = None) -> Iterator[None]:
    """Around a benchmark's loop: on Ctrl-C or SIGTERM, ``partial_record()`` — the runs finished so far —
    is written to ``stem``.json (with ``"incomplete": true`` and the ``arguments`` that ``--resume``
    checks) and a short ``stem``.md saying so, then ``BenchmarkInterrupted`` is raised. Nothing is
    written when no run had finished."""
    try:
        yield
    except KeyboardInterrupt:
        count = finished()
        if count == 0:
            raise
        record = {**partial_record(), "incomplete": True, "arguments": arguments}
        markdown = (f"# {stem}: interrupted\n\n{count} finished run{'s' if count != 1 else ''} kept in "
                    f"`{stem}.json` (marked incomplete); no table or figure was made. Command: "
                    f"`{record['environment']['command']}`\n")
        raise BenchmarkInterrupted(count, write_outputs(output_dir, stem, record, markdown),
                                   resumable=arguments is not None) from None


T = TypeVar("T")


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], else a usage error (exit 2) saying so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}]; got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}]; got {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0, else a usage error (exit 2) saying so."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


def comma_separated(choices: Sequence[str], what: str = "values") -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list drawn from ``choices`` (repeats dropped, order kept)."""

    def parse(text: str) -> list[str]:
        items = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {bad}; allowed: {', '.join(choices)}")
        if not items:
            raise argparse.ArgumentTypeError(f"give at least one of: {', '.join(choices)}")
        return items

    return parse


def comma_numbers(one: Callable[[str], T]) -> Callable[[str], tuple[T, ...]]:
    """An argparse type: a comma-separated list, each item parsed by the argparse type ``one``
    (``bounded_int(…)``, ``positive_float``), whose message names the item that is wrong."""

    def parse(text: str) -> tuple[T, ...]:
        items = [t.strip() for t in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list without empty items; got {text!r}")
        return tuple(one(t) for t in items)

    return parse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and each option's default after its help, unless the help
    says its own or there is none to show (a flag that is off, an option left unset)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: {str(action.default).replace('%', '%%')})"


def benchmark_parser(module: str, doc: str | None, resumable: bool = False) -> argparse.ArgumentParser:
    """A parser with the options every benchmark has: --device, --output-dir, --overwrite, --threads,
    --no-progress; and --resume for a ``resumable`` sweep."""
    p = ArgumentParser(prog=f"python -m {module}", description=doc, formatter_class=HelpFormatter)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available")
    p.add_argument("--output-dir", type=output_directory_argument, default=Path("results"),
                   help="where JSON, Markdown and PNG go (locked while the run lasts)")
    p.add_argument("--overwrite", action="store_true",
                   help="an earlier result of this benchmark in --output-dir is moved into OUTPUT_DIR/replaced-<time>/ "
                   "first (without it, such a result is refused, never replaced)")
    if resumable:
        p.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in --output-dir (same options): its finished runs are kept, "
                       "the rest run; the result equals an uninterrupted run's")
    p.add_argument("--threads", type=positive_thread_count, default=None, help=THREADS_HELP)
    p.add_argument("--tracking-uri", type=tracking_uri_argument, default=None,
                   help="also log the record to MLflow there (file:./mlruns or a path; http://HOST:PORT); also "
                   "asked by MLFLOW_TRACKING_URI; needs the 'tracking' extra (default: not logged)")
    p.add_argument("--experiment", default=None,
                   help="the MLflow experiment (default: benchmarks.NAME, this benchmark's name)")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (on a terminal) or final progress line (elsewhere) on stderr",
    )
    return p


def refuse_unused(parser: argparse.ArgumentParser, args: argparse.Namespace, flags: Sequence[str],
                  because: str) -> None:
    """A usage error naming each of ``flags`` given a non-default value although it has no effect ``because``.

    An option a mode drops must not look as though it had been applied (issue 32.5).
    """
    defaults = vars(parser.parse_args([]))  # converted as argparse converts a string default
    given = [flag for flag in flags if getattr(args, dest := flag.lstrip("-").replace("-", "_")) != defaults[dest]]
    if given:
        one = len(given) == 1
        raise UsageError(f"{', '.join(given)} {'has' if one else 'have'} no effect {because}: "
                         f"drop {'it' if one else 'them'}")


def select_strategies(names: str | None, baseline: str, include_baseline: bool = True) -> tuple[list[str], str]:
    """Canonical strategy names from a comma-separated list (default: all that need no parameters of their
    own), and the baseline's.

    The baseline joins the list (first) so paired differences always have it;
    an unknown name ends the program with the registry's suggestion.
    """
    try:
        requested = [n.strip() for n in names.split(",") if n.strip()] if names else \
            [n for n in available_strategies() if not required_params(get_strategy(n))]
        strategies = list(dict.fromkeys(get_strategy(n).name for n in requested))
        base = get_strategy(baseline).name
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    needing = {n: params for n in strategies if (params := required_params(get_strategy(n)))}
    if needing:  # mup's base_modes: a choice of the experiment, which benchmarks.lr_transfer makes
        raise UsageError("; ".join(f"{n} needs {', '.join(p)}, which this benchmark does not set"
                                   for n, p in needing.items()) + " (benchmarks.lr_transfer compares mup)")
    if not strategies:
        raise UsageError("--strategies names no strategy")
    if include_baseline and base not in strategies:
        strategies = [base, *strategies]
    return strategies, base


CALIBRATED = "calibrated"  # a variant beside the strategies: sqrt_in, then calibrate_ on data


def strategy_spec(variant: str, seed: int, resolution: int, activation: str, gain: float = 1.0) -> dict[str, Any]:
    """Spectral-init settings of a strategy (or ``calibrated``) for a model of this input size and
    activation; strategies with those parameters (edge-of-chaos) get them."""
    if variant == CALIBRATED:
        return {"strategy": "sqrt_in", "gain": gain, "seed": seed, "calibrate": True}
    spec: dict[str, Any] = {"strategy": variant, "gain": gain, "seed": seed}
    params_model = get_strategy(variant).params_model
    if params_model is not None:
        spec["params"] = {
            k: v for k, v in (("resolution", resolution), ("activation", activation)) if k in params_model.model_fields
        }
    return spec


def resolve_device(choice: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` without a GPU ends the program."""
    try:
        return pick_device(choice, DistributedContext())
    except ValueError as exc:
        raise UsageError(f"--device {choice}: {exc}") from None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(device: torch.device, module: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Device, versions and the command (``python -m module argv…``): what a reader needs to trust or redo a number."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    # read from the installed metadata: importing neuraloperator for its version costs a second
    for key, distribution in (("pydantic", "pydantic"), ("pydantic_settings", "pydantic-settings"),
                              ("neuralop", "neuraloperator")):
        try:
            versions[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "threads": active_thread_record(),
        "versions": versions,
        "platform": platform.platform(),
        "command": " ".join(["python -m", module, *(sys.argv[1:] if argv is None else argv)]),
        "git_commit": _git_commit(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_outputs(output_dir: Path, stem: str, record: dict[str, Any], markdown: str) -> dict[str, Path]:
    """Write ``stem``.json and ``stem``.md; refuse an output path that is a file."""
    prepare_output_dir(output_dir)
    paths = {"json": output_dir / f"{stem}.json", "markdown": output_dir / f"{stem}.md"}
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    write_atomically(paths["json"], lambda p: p.write_text(text))
    write_atomically(paths["markdown"], lambda p: p.write_text(markdown))
    return paths


def publish(
    output_dir: Path,
    stem: str,
    record: dict[str, Any],
    markdown: str,
    figure: Callable[[dict[str, Any]], Any] | None = None,
    extra_figures: Mapping[str, Callable[[dict[str, Any]], Any]] | None = None,
    tracking: Tracking | None = None,
) -> None:
    """Write ``stem``.json and ``stem``.md (and ``stem``.png of ``figure(record)``, ``stem``_NAME.png of
    each of ``extra_figures``' that has something to draw); print the table and the paths; with
    ``tracking``, log the record to MLflow (``log_record``)."""
    paths = write_outputs(output_dir, stem, record, markdown)
    written, note = f"{paths['json']}, {paths['markdown']}", ""
    pngs: list[Path | None] = []
    if figure is not None:
        pngs = draw_all(figure, extra_figures or {}, record, output_dir / f"{stem}.png")
        if pngs[0] is None:
            note = " (no PNG: matplotlib not installed)"
        written += "".join(f", {png}" for png in pngs if png is not None)
    print(markdown)
    print(f"wrote {written}{note}")
    if tracking is not None:
        log_record(tracking, record, [paths["json"], paths["markdown"], *(png for png in pngs if png is not None)])


def benchmark_tracking(args: argparse.Namespace, stem: str) -> Tracking | None:
    """Where a benchmark logs its record: ``--tracking-uri`` (or ``MLFLOW_TRACKING_URI``), the experiment
    ``--experiment`` (default ``benchmarks.STEM``), the run named after the output directory."""
    return _tracking_from(args.tracking_uri, args.experiment or f"benchmarks.{stem}", run_name=str(args.output_dir))


def log_record(tracking: Tracking, record: dict[str, Any], artifacts: Sequence[Path]) -> str | None:
    """A benchmark's record to MLflow: its ``config`` and where it ran as parameters, the numbers of its
    ``summary`` as metrics (dotted keys), its JSON, Markdown and figures as artifacts."""
    env = record.get("environment", {})
    where = {"device": env.get("device_name"), "torch": env.get("versions", {}).get("torch"),
             "threads": env.get("torch_threads"), "command": env.get("command"), "git": env.get("git_commit")}
    params = {**flat_params(record.get("config", {}), "config."),
              **flat_params({k: v for k, v in where.items() if v is not None}, "environment.")}
    run_id = log_run(tracking, params, flat_metrics(record.get("summary", {})), artifacts=artifacts)
    if run_id is not None:
        print(f"logged to MLflow at {tracking.uri}: experiment {tracking.experiment!r}, run {run_id}")
    return run_id


def tracking_uri_argument(text: str) -> str:
    """An argparse type: a tracking URI, refused (exit 2, before any work) where MLflow is not installed."""
    if not mlflow_installed():
        raise argparse.ArgumentTypeError(f"needs MLflow, which is not installed: {INSTALL_HINT}")
    return text


def markdown_header(title: str, environment: dict[str, Any], *details: str) -> list[str]:
    """A report's first lines: its title, where it ran (device, torch, threads, ``details``) and the command."""
    where = [
        environment["device_name"],
        f"torch {environment['versions']['torch']}",
        f"{environment['torch_threads']} thread{'s' if environment['torch_threads'] != 1 else ''}",
        *details,
    ]
    return [f"# {title}", "", "Device: " + " · ".join(where), f"Command: `{environment['command']}`"]


def format_ci(mean: float, ci95: float | None, digits: int = 3) -> str:
    """``mean ± half-width`` (just the mean when there is no interval)."""
    if ci95 is None:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {ci95:.2g}"
