"""Draw a benchmark's PNG again from its JSON record, beside it, without rerunning the benchmark.

    python -m benchmarks.replot benchmarks/results/*/*.json benchmarks/results/*/*/*.json

The record's ``schema`` names the benchmark; its ``figure`` draws the PNG
(``NAME.json`` → ``NAME.png``), titled with the device the record was measured on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from .common import HelpFormatter, UsageError, run_cli
from .figures import draw, pyplot


def _figures() -> dict[str, Callable[[dict[str, Any]], Any]]:
    from . import gradient_ratios, neuralop_init, signal_propagation, spectral_conv_speed, training_comparison

    return {module.SCHEMA: module.figure for module in (gradient_ratios, neuralop_init, signal_propagation,
                                                        spectral_conv_speed, training_comparison)}


def _read_record(path: Path, figures: dict[str, Callable[[dict[str, Any]], Any]]) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{str(path)!r} is not a readable JSON file: {exc}") from None
    schema = record.get("schema") if isinstance(record, dict) else None
    if schema not in figures:
        raise UsageError(f"{str(path)!r} has schema {schema!r}; a benchmark record has one of {sorted(figures)}")
    return record


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.replot", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("records", nargs="+", type=Path, metavar="RECORD.json", help="benchmark JSON records to draw")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if pyplot() is None:
        raise UsageError("drawing needs matplotlib: pip install -e '.[bench]'")
    figures = _figures()
    records = [(path, _read_record(path, figures)) for path in args.records]  # every file checked first
    for path, record in records:
        print(f"wrote {draw(figures[record['schema']], record, path.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
