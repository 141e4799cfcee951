"""Benchmark figures: drawn from the JSON record alone, every panel labelled, a legend, twins merged."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from benchmarks import replot
from benchmarks.machinery.figures import merged_series

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
RECORDS = sorted(RESULTS.rglob("*.json"))


def test_equal_series_are_drawn_once_under_a_joined_label() -> None:
    merged = merged_series([("a", [1.0, 2.0]), ("b", [1.0, 3.0]), ("c", [1.0, 2.0])])
    assert merged == [("a = c", [1.0, 2.0], 0), ("b", [1.0, 3.0], 1)]
    assert merged_series([]) == []


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_committed_record_draws_a_labelled_figure_with_a_legend(path: Path) -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    from matplotlib.patches import Rectangle

    record = json.loads(path.read_text())
    fig = replot._views()[record["schema"]].figure(record)
    try:
        axes = [ax for ax in fig.axes if ax.has_data()]
        assert axes
        for ax in axes:
            assert ax.get_xlabel() and ax.get_ylabel(), f"unlabelled axis in {path.name}"
            assert ax.get_title(), f"a panel without a title in {path.name}"
            # bars only on a linear axis from 0, so that their lengths compare as ratios; a log axis
            # (for values spanning decades) carries dots or lines
            bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() > 0]
            if bars:
                assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0, f"bars not from 0 in {path.name}"
        legends = list(fig.legends) + [ax.get_legend() for ax in axes if ax.get_legend() is not None]
        assert len(legends) == 1 and legends[0].get_texts(), f"{len(legends)} legends in {path.name}"
    finally:
        plt.close(fig)


def test_an_encoded_object_image_keeps_its_range_within_half_a_level() -> None:
    import numpy as np

    from benchmarks.machinery.object_grid import decode_image, encode_image

    image = np.random.default_rng(0).normal(size=(9, 13)) * 3 - 1
    encoded = json.loads(json.dumps(encode_image(image)))  # it travels in a JSON record
    decoded = decode_image(encoded)
    assert decoded.shape == (9, 13)
    assert decoded.min() == image.min() and decoded.max() == image.max()
    assert np.abs(decoded - image).max() <= (image.max() - image.min()) / 510 + 1e-12
    flat = decode_image(encode_image(np.full((2, 3), 0.25)))
    assert np.array_equal(flat, np.full((2, 3), 0.25))


def test_replot_writes_the_report_and_png_beside_the_record(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    source = RESULTS / "cpu-2core" / "spectral_conv_speed.json"
    copy = tmp_path / "speed.json"
    shutil.copy(source, copy)
    assert replot.main([str(copy)]) == 0
    png = tmp_path / "speed.png"
    assert png.read_bytes().startswith(b"\x89PNG")
    report = (tmp_path / "speed.md").read_text()
    assert report.startswith("# Spectral convolution speed") and "16×32×64², 12" in report


def test_replot_checks_every_file_before_drawing_any(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    good = tmp_path / "good.json"
    shutil.copy(RESULTS / "cpu-2core" / "spectral_conv_speed.json", good)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "something/else"}))
    with pytest.raises(SystemExit, match="has schema 'something/else'"):
        replot.main([str(good), str(bad)])
    assert not (tmp_path / "good.png").exists()


def test_a_panel_with_no_positive_value_is_drawn_linear_from_zero() -> None:
    """A CPU peak memory that did not grow reads 0: the panel stays linear instead of failing on a log axis."""
    plt = pytest.importorskip("matplotlib.pyplot")
    from benchmarks import spectral_conv_speed

    record = json.loads((RESULTS / "cpu-2core" / "spectral_conv_speed.json").read_text())
    for result in record["results"]:
        result["peak_memory_bytes"] = dict.fromkeys(result["peak_memory_bytes"], 0)
    fig = spectral_conv_speed.figure(record)
    try:
        memory_axes = [ax for ax in fig.axes if "memory" in ax.get_ylabel()]
        assert memory_axes and all(ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0 for ax in memory_axes)
    finally:
        plt.close(fig)


@pytest.mark.parametrize(("values", "scale", "bars"), [
    ([6.9, 7.0, 3.0], "linear", True),  # within a decade: bars from 0, so 6.9 and 7.0 look alike
    ([0.001, 1.0, 40.0], "log", False),  # across decades: dots on a log axis
    ([0.0, 0.0, 0.0], "linear", True),  # nothing positive: linear from 0
])
def test_bar_groups_draws_bars_from_zero_or_dots_on_a_log_axis(values, scale, bars) -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    from matplotlib.patches import Rectangle

    from benchmarks.machinery.figures import bar_groups

    fig, ax = plt.subplots()
    try:
        bar_groups(ax, ["a", "b", "c"], [("s", values, None)])
        assert ax.get_yscale() == scale
        assert bool([p for p in ax.patches if isinstance(p, Rectangle)]) == bars
        if bars:
            assert ax.get_ylim()[0] == 0
    finally:
        plt.close(fig)


def test_signal_propagation_names_each_init_once_and_keeps_the_curves_worth_comparing_in_view() -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    from benchmarks import signal_propagation

    record = json.loads((RESULTS / "cpu-2core" / "signal_propagation.json").read_text())
    fig = signal_propagation.figure(record)
    try:
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        names = [name for label in labels if label != signal_propagation.UNDERFLOW_LABEL for name in label.split(" = ")]
        assert sorted(names) == sorted(record["config"]["variants"])  # every init under one label, once
        for ax in fig.axes:
            low, high = ax.get_ylim()
            assert high / low <= 10.0**signal_propagation.DECADES_SHOWN * 1.001, ax.get_title()
    finally:
        plt.close(fig)


def test_operator_tasks_names_each_init_once_and_its_threshold_does_not_set_the_range() -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    from benchmarks import operator_tasks

    record = json.loads((RESULTS / "cpu-2core" / "operator-tasks" / "operator_tasks.json").read_text())
    fig = operator_tasks.figure(record)
    try:
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        names = [name for label in labels for name in label.split(" = ")]
        assert sorted(names) == sorted(record["config"]["inits"])  # equal runs joined, every init once
        for ax in (ax for ax in fig.axes if ax.get_visible() and ax.has_data()):
            curves = [line.get_ydata() for line in ax.get_lines() if line.get_linestyle() != ":"]
            low, high = ax.get_ylim()
            # the limits are the curves' own with matplotlib's 5% margin a side (in log space on a log axis),
            # whatever the dotted line's height
            span = max(max(c) for c in curves) / min(min(c) for c in curves)
            assert low <= min(min(c) for c in curves) and high >= max(max(c) for c in curves)
            assert math.log(high / low) <= 1.1 * math.log(span) * 1.001, ax.get_title()
    finally:
        plt.close(fig)


def test_a_sparse_scans_gaps_are_masked_and_left_out_of_the_colour_scale() -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    from benchmarks import training_comparison

    record = json.loads((RESULTS / "cpu-2core" / "ffno-regimes" / "nphotons-1e9-step-16" /
                         "training_comparison.json").read_text())
    fig = training_comparison.objects_figure(record)
    try:
        truth_amplitude = fig.axes[0].get_images()[0]
        # the lines object's amplitude spans 0.5…1; the gaps, stitched as 0, neither set the scale nor show
        assert truth_amplitude.get_clim()[0] >= 0.5 - 1e-6
        assert truth_amplitude.get_array().mask.any()
    finally:
        plt.close(fig)


def test_an_object_picture_leaves_unreached_pixels_blank() -> None:
    # before: pixels no patch reached were drawn as amplitude 0 and phase 0, as if measured so
    import numpy as np

    from ptycho_torch.evaluation.figures import object_panels

    obj = np.full((4, 5), 2 * np.exp(0.5j))
    covered = np.ones((4, 5), dtype=bool)
    covered[1:3, 2] = False
    for name, image in object_panels(obj, covered):
        assert np.array_equal(image.mask, ~covered), name
        assert image.min() > 0.4  # no 0 among the values drawn
