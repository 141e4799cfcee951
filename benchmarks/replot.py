"""Write a benchmark's Markdown report and PNG again from its JSON record, beside it, without rerunning it.

    python -m benchmarks.replot benchmarks/results/*/*.json benchmarks/results/*/*/*.json

The record's ``schema`` names the benchmark; its ``markdown_report`` and
``figure`` write ``NAME.md`` and ``NAME.png`` next to ``NAME.json``, so reports
of committed records follow the current report code while their numbers stay
those measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from spectral_init.cli.output_files import write_atomically
from spectral_init.cli.usage import ArgumentParser

from .machinery.common import HelpFormatter, UsageError, run_cli
from .machinery.figures import draw_all, pyplot


class _Views(NamedTuple):
    markdown: Callable[[dict[str, Any]], str]
    figure: Callable[[dict[str, Any]], Any]
    extra_figures: dict[str, Callable[[dict[str, Any]], Any]]


def benchmark_modules() -> list[ModuleType]:
    """Every benchmark of this package, found by what its module defines (``SCHEMA``, ``markdown_report``,
    ``figure``, ``build_parser``): a new benchmark is replotted and checked without being listed anywhere."""
    package = importlib.import_module(__package__)
    modules = (importlib.import_module(f"{__package__}.{info.name}") for info in pkgutil.iter_modules(package.__path__))
    return [m for m in modules if all(hasattr(m, name) for name in BENCHMARK_API)]


BENCHMARK_API = ("SCHEMA", "markdown_report", "figure", "build_parser")


def _views() -> dict[str, _Views]:
    return {m.SCHEMA: _Views(m.markdown_report, m.figure, getattr(m, "EXTRA_FIGURES", {})) for m in benchmark_modules()}


def _read_record(path: Path, views: dict[str, _Views]) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{str(path)!r} is not a readable JSON file: {exc}") from None
    schema = record.get("schema") if isinstance(record, dict) else None
    if schema not in views:
        raise UsageError(f"{str(path)!r} has schema {schema!r}; a benchmark record has one of {sorted(views)}")
    if record.get("incomplete"):
        raise UsageError(f"{str(path)!r} holds the finished runs of an interrupted benchmark (marked incomplete), "
                         "not a whole record: rerun the benchmark to report it")
    return record


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.replot", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("records", nargs="+", type=Path, metavar="RECORD.json",
                   help="benchmark JSON records whose report and figure to write again")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if pyplot() is None:
        raise UsageError("drawing needs matplotlib: pip install -e '.[bench]'")
    views = _views()
    records = [(path, _read_record(path, views)) for path in args.records]  # every file checked first
    for path, record in records:
        view = views[record["schema"]]
        markdown = path.with_suffix(".md")
        text = view.markdown(record)
        write_atomically(markdown, lambda tmp, text=text: tmp.write_text(text))
        pngs = draw_all(view.figure, view.extra_figures, record, path.with_suffix(".png"))
        print(f"wrote {markdown}" + "".join(f", {png}" for png in pngs if png is not None))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
