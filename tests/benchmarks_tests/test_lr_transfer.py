"""``benchmarks.lr_transfer``: its analysis on a grid with known answers, and the command in a tiny
configuration."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("neuralop")
pytest.importorskip("scipy")

from benchmarks import lr_transfer  # noqa: E402
from benchmarks.lr_transfer import Sizes, summarize  # noqa: E402
from benchmarks.machinery.common import run_cli  # noqa: E402

TINY = ["--tasks", "burgers", "--burgers-resolution", "16", "--burgers-modes", "4,8", "--lrs", "0.001,0.01,0.1",
        "--n-train", "16", "--n-test", "8", "--epochs", "1", "--batch-size", "8", "--width", "4", "--seeds", "2",
        "--jobs", "1", "--device", "cpu", "--no-progress", "--threads", "1"]


def grid_runs(best: dict[int, float], seeds: int, noise: float = 0.0) -> list[dict]:
    """Runs whose log error is a parabola in log₂ lr with its minimum at ``best[K]`` (plus a seed offset)."""
    runs = []
    for k, lr_best in best.items():
        for parametrization in lr_transfer.PARAMETRIZATIONS:
            for lr in (2.0**e for e in range(-8, -1)):
                for seed in range(seeds):
                    log_error = 0.1 * (math.log2(lr) - math.log2(lr_best)) ** 2 - 2 + noise * seed
                    runs.append({"task": "burgers", "modes": k, "parametrization": parametrization, "lr": lr,
                                 "seed": seed, "diverged": False, "final_rel_l2": math.exp(log_error)})
    return runs


def sizes(modes: tuple[int, ...]) -> Sizes:
    return Sizes(16, 16, (4,), modes, tuple(2.0**e for e in range(-8, -1)), 16, 8, 4, 1, 8, 3)


def test_the_drift_and_the_transfer_cost_of_a_known_grid() -> None:
    runs = grid_runs({4: 2.0**-6, 8: 2.0**-5, 16: 2.0**-4}, seeds=3, noise=0.3)
    [standard, _] = summarize(runs, sizes((4, 8, 16)), ["burgers"])
    assert standard["best_lr"] == {"4": 2.0**-6, "8": 2.0**-5, "16": 2.0**-4}
    assert standard["drift_factors_of_2"] == pytest.approx(2.0)
    # at K = 16 the base's rate 2^-6 is two octaves off: log error higher by 0.1·2² = 0.4
    assert standard["transfer_error_ratio"] == pytest.approx(math.exp(0.4))
    # a seed offset moves every cell alike: no resample changes the best rates, so the intervals are points
    assert standard["drift_ci95"]["low"] == standard["drift_ci95"]["high"] == pytest.approx(2.0)


def test_a_diverged_run_makes_its_cell_unusable_and_a_rate_that_transfers_drifts_by_zero() -> None:
    runs = grid_runs({4: 2.0**-5, 8: 2.0**-5}, seeds=2)
    for run in runs:
        if (run["parametrization"], run["modes"], run["lr"], run["seed"]) == ("standard", 8, 2.0**-5, 1):
            run.update(diverged=True, final_rel_l2=None)
    [standard, mup] = summarize(runs, sizes((4, 8)), ["burgers"])
    assert standard["best_lr"]["8"] in (2.0**-6, 2.0**-4)  # the diverged cell cannot be the best
    assert standard["geometric_mean_error"]["8"][3] is None
    assert abs(standard["drift_factors_of_2"]) == 1
    assert mup["drift_factors_of_2"] == 0 and mup["transfer_error_ratio"] == pytest.approx(1.0)


def test_a_tiny_sweep_records_mups_rates_and_writes_its_report(tmp_path) -> None:
    out = tmp_path / "out"
    assert lr_transfer.main([*TINY, "--output-dir", str(out)]) == 0
    record = json.loads((out / "lr_transfer.json").read_text())
    assert record["schema"] == lr_transfer.SCHEMA and len(record["runs"]) == 2 * 2 * 3 * 2
    for run in record["runs"]:
        if run["parametrization"] == "standard" or run["modes"] == 4:  # the base: μP is the standard rate
            assert run["spectral_lr"] == pytest.approx(run["lr"])
        else:  # K = 8 keeps 5 modes against the base's 3: √(log 3 / log 5)
            assert run["spectral_lr"] == pytest.approx(run["lr"] * math.sqrt(math.log(3) / math.log(5)))
    assert {(s["task"], s["parametrization"]) for s in record["summary"]} == {("burgers", "standard"),
                                                                             ("burgers", "mup")}
    markdown = (out / "lr_transfer.md").read_text()
    assert "| burgers | mup |" in markdown and "## burgers · standard" in markdown
    assert (out / "lr_transfer.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("extra, message", [
    (["--lrs", "0,0.01,0.1"], "finite number > 0"),
    (["--lrs", "0.01,0.1"], "at least 3 different learning rates"),
    (["--lrs", "x,0.01,0.1"], "comma-separated floats"),
    (["--burgers-modes", "1,4"], "μP needs K ≥ 2"),
    (["--burgers-modes", "4,32"], "raise --burgers-resolution"),
    (["--burgers-modes", "8"], "at least 2 different burgers modes"),
    (["--tasks", "heat"], "unknown tasks ['heat']; allowed: darcy, burgers"),
    (["--batch-size", "32"], "larger than --n-train 16"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, capsys, extra, message) -> None:
    out = tmp_path / "out"
    try:
        code = run_cli(lambda _argv: lr_transfer.main([*TINY, "--output-dir", str(out), *extra]))
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (out / "lr_transfer.json").exists()
