"""Fuzzed command lines and config files: every CLI ends with 0, 2 (a one-line message) or, for
training, 3 (diverged) — never a traceback, never an exception out of ``main``.

Each example starts from a tiny valid invocation and appends flags drawn from the CLI's own options
with values from a pool of the wrong kinds: negative, zero, odd, huge, non-numeric, NaN/inf, empty,
unknown names, missing or foreign files. argparse keeps the last value of a repeated flag, so an
example is either refused up front or runs a tiny job.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import (
    adapter_init,
    gradient_ratios,
    lattice_cause,
    neuralop_init,
    signal_propagation,
    spectral_conv_speed,
    training_comparison,
)
from benchmarks.machinery import figures
from benchmarks.machinery.common import run_cli
from ptycho_torch import train as train_cli

EXAMPLES = 40
VALUES = ["-1", "0", "1", "2", "3", "5", "7", "16", "17", "1000000000", str(2**63), "1e400", "nan", "inf",
          "-inf", "1e-3", "0.5", "", "abc", "fno", "ffno", "hybrid", "fno_vanilla", "none", "poisson",
          "sqrt_in", "legacy", "Xavier_Complex", "cuda", "auto", "fallback", "neuralop", "2x2x8x2", "1x1x2x1",
          "0x1x2x3", "9x9x9x9x9", "blocks,ffno", "white-noise", "mean", "ünï"]


def _file_pool(root: Path) -> list[str]:
    """Paths a user might pass by mistake: missing, a directory, text, broken TOML/JSON, a bad probe."""
    (root / "text.txt").write_text("hello")
    (root / "bad.toml").write_text("nepochs = \n")
    (root / "list.json").write_text("[1, 2]")
    (root / "typo.json").write_text(json.dumps({"nepoch": 1, "model": {"fno_widht": 4}}))
    (root / "types.toml").write_text('nepochs = "many"\n[model]\nfno_width = -4\n[data]\nN = 1e9\n')
    np.savez(root / "nanprobe.npz", probeGuess=np.full((16, 16), np.nan))
    np.savez(root / "realprobe.npz", probeGuess=np.ones((16, 16)))
    return [str(root / n) for n in ("missing.toml", ".", "text.txt", "bad.toml", "list.json", "typo.json",
                                    "types.toml", "nanprobe.npz", "realprobe.npz")]


def _options(parser) -> list[tuple[str, bool]]:
    """(flag, takes a value) for every option but help and the output directory."""
    out = []
    for action in parser._actions:  # argparse keeps no public list of its actions
        flags = [f for f in action.option_strings if f.startswith("--") and f not in ("--help", "--output-dir")]
        if flags:
            out.append((flags[0], action.nargs != 0))
    return out


def fuzz_argv(parser, files: list[str]) -> st.SearchStrategy[list[str]]:
    options = _options(parser)
    flag = st.sampled_from(options)

    @st.composite
    def draw(draw_fn: st.DrawFn) -> list[str]:
        argv = []
        for name, takes_value in draw_fn(st.lists(flag, min_size=1, max_size=4)):
            argv.append(name)
            if takes_value:
                argv.append(draw_fn(st.sampled_from(VALUES + files)))
        return argv

    return draw()


def run_and_check(call: Callable[[], int], capsys, allowed: Sequence[int]) -> int:
    try:
        code = call()
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert code in allowed, (code, err)
    if code == 2:
        assert err.strip(), "exit 2 without a message"
    return code


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    return _file_pool(tmp_path_factory.mktemp("fuzz-files"))


@pytest.fixture(scope="module", autouse=True)
def in_a_scratch_directory(tmp_path_factory):
    """Every fuzzed command runs from a scratch directory: a drawn value may be a relative path that a
    command writes to (an MLflow store for --tracking-uri, submitit's logs for --executor slurm)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("fuzz-cwd"))
        yield


TINY_TRAIN = ["--N", "16", "--fno-width", "4", "--fno-modes", "2", "--fno-blocks", "1", "--fno-cnn-blocks", "0",
              "--nimgs-train", "1", "--nimgs-test", "1", "--nepochs", "1", "--batch-size", "64", "--device", "cpu",
              "--spectral-backend", "fallback", "--no-progress", "--no-figure"]  # the stitching and scores still run
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@FUZZ
@given(data=st.data())
def test_training_cli_never_shows_a_traceback(data, files, capsys) -> None:
    argv = data.draw(fuzz_argv(train_cli.build_parser(), files))
    out = Path(tempfile.mkdtemp())
    try:
        run_and_check(lambda: train_cli.main([*TINY_TRAIN, *argv, "--output-dir", str(out / "run")]), capsys,
                      allowed=(0, 2, 3))
    finally:
        shutil.rmtree(out, ignore_errors=True)


BENCHMARKS = {
    "adapter_init": (adapter_init, ["--seeds", "2", "--width", "2", "--device", "cpu", "--no-progress"]),
    "gradient_ratios": (gradient_ratios, ["--strategies", "legacy", "--seeds", "1", "--models", "blocks", "--inputs",
                                          "white-noise", "--losses", "mean", "--width", "4", "--blocks", "1",
                                          "--modes", "2", "--size", "8", "--batch", "1", "--device", "cpu",
                                          "--no-progress"]),
    "spectral_conv_speed": (spectral_conv_speed, ["--shapes", "1x2x8x2", "--repeats", "1", "--warmup", "0",
                                                  "--no-memory", "--device", "cpu", "--no-progress"]),
    "training_comparison": (training_comparison, ["--strategies", "legacy", "--seeds", "1", "--N", "16", "--width",
                                                  "4", "--modes", "2", "--blocks", "1", "--nepochs", "1",
                                                  "--nimgs-train", "1", "--device", "cpu", "--no-progress"]),
    "neuralop_init": (neuralop_init, ["--seeds", "1", "--width", "2", "--device", "cpu", "--no-progress"]),
    "lattice_cause": (lattice_cause, ["--architectures", "ffno", "--seeds", "1", "--N", "16", "--width", "4",
                                      "--modes", "2", "--blocks", "1", "--nepochs", "1", "--nimgs-train", "1",
                                      "--nimgs-test", "1", "--device", "cpu", "--no-progress"]),
    "signal_propagation": (signal_propagation, ["--strategies", "legacy", "--models", "plain-relu", "--depths", "2",
                                                "--seeds", "1", "--width", "4", "--modes", "2", "--size", "8",
                                                "--batch", "1", "--device", "cpu", "--no-progress"]),
}


def build_figure_only(figure, record, path) -> None:
    """``figures.draw`` without its PNG: each figure is still built from the fuzzed run's record (the part
    that depends on the data), not laid out and rendered (≈ 0.3 s a figure, most of a tiny run's time).
    Rendering is checked on every committed record in test_figures.py."""
    import matplotlib.pyplot as plt

    fig = figure(record)
    if fig is not None:
        plt.close(fig)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
@FUZZ
@given(data=st.data())
def test_benchmark_clis_never_show_a_traceback(name, data, files, capsys, monkeypatch) -> None:
    module, tiny = BENCHMARKS[name]
    if name == "neuralop_init":
        pytest.importorskip("neuralop")
    if name == "spectral_conv_speed":
        # The CPU peak-memory reading spawns a fresh Python per implementation (≈ 6 s each here, importing
        # torch): 80 s of this test's 90. What is fuzzed is the command line; the reading itself is tested in
        # test_benchmarks.py, so here it is replaced by a stand-in that still checks its arguments.
        def peak_memory(name, layer, shape, dtype, device):
            assert name in spectral_conv_speed.IMPLEMENTATIONS and layer in spectral_conv_speed.LAYERS
            return 0

        monkeypatch.setattr(spectral_conv_speed, "peak_memory", peak_memory)
    monkeypatch.setattr(figures, "draw", build_figure_only)
    argv = data.draw(fuzz_argv(module.build_parser(), files))
    out = Path(tempfile.mkdtemp())
    try:
        # run_cli reads sys.argv through main(None), as the real command does
        monkeypatch.setattr("sys.argv", [name, *tiny, *argv, "--output-dir", str(out / "results")])
        # lattice_cause and training_comparison train: a fuzzed --lr may make every run diverge, exit 3 as
        # training does (--lr 1e9 overflowed the outputs into NaN scores and a traceback before)
        trains = name in ("lattice_cause", "training_comparison")
        run_and_check(lambda: run_cli(module.main), capsys, allowed=(0, 2, 3) if trains else (0, 2))
    finally:
        shutil.rmtree(out, ignore_errors=True)

