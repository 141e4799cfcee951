"""How every benchmark draws: matplotlib when installed, one style per series, twins merged, a PNG.

Each benchmark has a ``figure(record)`` that builds a matplotlib figure (with
``layout="constrained"``, so that legends outside the axes get room) from its
JSON record alone, so a committed record can be drawn again (``python -m
benchmarks.replot``) without rerunning it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from spectral_init.cli.output_files import write_atomically

__all__ = ["DECADES_FOR_LOG", "bar_groups", "draw", "draw_all", "merged_series", "one_legend", "plain_log_ticks",
           "pyplot", "style"]

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


def style(index: int, dash: int | None = None) -> dict[str, Any]:
    """Colour and line style of the ``index``-th series: ten colours, then the same with another dash
    (or the ``dash``-th dash, for series that vary along a second axis)."""
    dash = index // 10 if dash is None else dash
    return {"color": f"C{index % 10}", "linestyle": _LINESTYLES[dash % len(_LINESTYLES)]}


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


DECADES_FOR_LOG = 1.5  # values spanning more than this many decades are drawn as dots on a log axis


def bar_groups(ax: Any, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float], Sequence[float] | None]],
               *, styles: Sequence[int] | None = None, log: bool = True) -> None:
    """Grouped values: one group per entry of ``groups`` on x, one mark per series (label, values, error).

    Bars on a linear axis from 0, so that their lengths compare; where the positive values span more
    than ``DECADES_FOR_LOG`` decades (and ``log`` allows it), dots with error bars on a log axis instead —
    a bar's length means nothing on a log axis, whose bottom is arbitrary. ``styles``: each series'
    ``style`` index (default its position), so that one name keeps one colour across panels.
    """
    width = 0.8 / max(len(series), 1)
    positive = [v for _, values, _ in series for v in values if math.isfinite(v) and v > 0]
    dots = log and bool(positive) and math.log10(max(positive) / min(positive)) > DECADES_FOR_LOG
    for i, (label, values, errors) in enumerate(series):
        offsets = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        color = style(i if styles is None else styles[i])["color"]
        if dots:
            ax.errorbar(offsets, values, yerr=errors, fmt="o", markersize=5, capsize=2, label=label, color=color,
                        elinewidth=0.8)
        else:
            ax.bar(offsets, values, width, yerr=errors, capsize=2, label=label, color=color,
                   error_kw={"linewidth": 0.8})
    ax.set_xticks(range(len(groups)), groups)
    if dots:
        ax.set_yscale("log")
        ax.grid(axis="y", which="major", alpha=0.3)
    else:
        ax.set_ylim(bottom=0)


def plain_log_ticks(ax: Any) -> None:
    """Plain numbers on a log y axis ("0.12", not "1.2 × 10⁻¹"); minor ticks labelled only within one decade,
    where they are the only labels, not where they would crowd between powers of ten. Call it once the
    axis has its final limits."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    low, high = ax.get_ylim()
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g") if high / low < 10 else NullFormatter())


def one_legend(fig: Any, axes: Iterable[Any], title: str, order: Sequence[str] | None = None,
               columns: int = 5) -> None:
    """One legend for the whole figure, below the panels: every label drawn in any panel, once (in
    ``order`` where given, else as first drawn), in at most ``columns`` columns. A legend per panel
    repeats itself and covers data."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if order is not None:
        handles = {label: handles[label] for label in order if label in handles}
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=min(len(handles), columns),
               fontsize=8, title=title, title_fontsize=8)


def draw(figure: Callable[[dict[str, Any]], Any], record: dict[str, Any], path: Path) -> Path | None:
    """``figure(record)`` titled with the device and versions it was measured on, written whole as a PNG.

    None (and no file) when matplotlib is not installed or the figure has nothing to draw (None).
    """
    plt = pyplot()
    if plt is None:
        return None
    fig = figure(record)
    if fig is None:
        return None
    environment = record["environment"]
    versions = environment.get("versions", {})
    fig.suptitle(f"{environment.get('device_name', '?')} · torch {versions.get('torch', '?')}", fontsize=9)
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)
    return path


def draw_all(figure: Callable[[dict[str, Any]], Any], extra_figures: Mapping[str, Callable[[dict[str, Any]], Any]],
             record: dict[str, Any], path: Path) -> list[Path | None]:
    """``draw`` of ``figure`` to ``path`` (NAME.png), then of each extra figure to NAME_KEY.png beside it."""
    return [draw(figure, record, path)] + [draw(extra, record, path.with_name(f"{path.stem}_{key}.png"))
                                           for key, extra in extra_figures.items()]
