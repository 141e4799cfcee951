"""How every benchmark draws: matplotlib when installed, one style per series, twins merged, a PNG.

Each benchmark has a ``figure(record)`` that builds a matplotlib figure (with
``layout="constrained"``, so that legends outside the axes get room) from its
JSON record alone, so a committed record can be drawn again (``python -m
benchmarks.replot``) without rerunning it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ptycho_torch.output_files import write_atomically

__all__ = ["bar_groups", "draw", "merged_series", "pyplot", "style"]

_LINESTYLES = ("-", "--", "-.", ":")


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or None when the ``bench`` extra is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def style(index: int) -> dict[str, Any]:
    """Colour and line style of the ``index``-th series: ten colours, then the same with another dash."""
    return {"color": f"C{index % 10}", "linestyle": _LINESTYLES[(index // 10) % len(_LINESTYLES)]}


def merged_series(series: Iterable[tuple[str, Sequence[float]]]) -> list[tuple[str, list[float], int]]:
    """(label, values, index of its first member) per distinct series; equal series share one label "a = b".

    Strategies that coincide on a model (sqrt_in and xavier-complex when in = out)
    draw the same curve; drawn separately, the last would hide the others.
    """
    merged: dict[tuple[float, ...], tuple[list[str], int]] = {}
    for index, (label, values) in enumerate(series):
        key = tuple(values)
        if key in merged:
            merged[key][0].append(label)
        else:
            merged[key] = ([label], index)
    return [(" = ".join(labels), list(values), first) for values, (labels, first) in merged.items()]


def bar_groups(ax: Any, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float], Sequence[float] | None]],
               *, styles: Sequence[int] | None = None, log: bool = True) -> None:
    """Grouped bars: one group per entry of ``groups`` on x, one bar per series (label, values, error).

    ``styles``: each series' ``style`` index (default its position), so that one name keeps one colour
    across panels that show different subsets.
    """
    width = 0.8 / max(len(series), 1)
    for i, (label, values, errors) in enumerate(series):
        offsets = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        color = style(i if styles is None else styles[i])["color"]
        ax.bar(offsets, values, width, yerr=errors, capsize=2, label=label, color=color, error_kw={"linewidth": 0.8})
    ax.set_xticks(range(len(groups)), groups)
    # a log axis needs one positive value (a peak memory that did not grow reads 0); else stay linear from 0
    if log and any(math.isfinite(v) and v > 0 for _, values, _ in series for v in values):
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)


def draw(figure: Callable[[dict[str, Any]], Any], record: dict[str, Any], path: Path) -> Path | None:
    """``figure(record)`` titled with the device and versions it was measured on, written whole as a PNG.

    None (and no file) when matplotlib is not installed.
    """
    plt = pyplot()
    if plt is None:
        return None
    fig = figure(record)
    environment = record["environment"]
    versions = environment.get("versions", {})
    fig.suptitle(f"{environment.get('device_name', '?')} · torch {versions.get('torch', '?')}", fontsize=9)
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)
    return path
