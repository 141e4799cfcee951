"""benchmarks.iterative_convergence in a tiny configuration: both solvers to convergence on two seeds, the
record, its report and figure; bad flags refused before any work."""

from __future__ import annotations

import json

import pytest

from benchmarks import iterative_convergence
from benchmarks.machinery.common import run_cli


@pytest.mark.heavy
def test_a_tiny_run_stops_each_solver_where_ssim_stops_changing(tmp_path) -> None:
    solvers = "rpie,cdtools" if iterative_convergence.anchor_available() else "rpie"
    out = tmp_path / "out"
    argv = ["--N", "16", "--nimgs-train", "1", "--nimgs-test", "1", "--seeds", "2", "--checkpoints", "2,4,8,16,32,64",
            "--solvers", solvers, "--threads", "1", "--output-dir", str(out)]
    assert run_cli(lambda _: iterative_convergence.main(argv)) == 0
    record = json.loads((out / "iterative_convergence.json").read_text())
    assert record["schema"] == iterative_convergence.SCHEMA
    assert sorted((r["solver"], r["seed"]) for r in record["rows"]) == sorted(
        (s, seed) for s in solvers.split(",") for seed in (0, 1))
    for row in record["rows"]:
        history = row["history"]
        steps = [abs(a[k] - b[k]) for a, b in zip(history[1:], history) for k in ("ssim_amp", "ssim_phase")]
        # stopped at the first checkpoint where both SSIMs moved by less than the tolerance, or at the last
        assert row["converged"] == (max(steps[-2:]) < 0.002) and (row["converged"] or row["iterations"] == 64)
        assert all(max(steps[2 * i:2 * i + 2]) >= 0.002 for i in range(len(history) - 2))
        assert [h["iterations"] for h in history] == [2, 4, 8, 16, 32, 64][:len(history)]
        assert all(0 < h["seconds_per_object"] for h in history)
    assert set(record["summary"]) == set(solvers.split(","))
    report = iterative_convergence.markdown_report(record)
    assert "| rPIE (this package) |" in report and (out / "iterative_convergence.png").exists()


@pytest.mark.parametrize(("flags", "message"), [(["--checkpoints", "5,3"], "increasing"),
                                                (["--solvers", "epie"], "unknown solver")])
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, flags, message) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        iterative_convergence.main([*flags, "--output-dir", str(out)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err and not out.exists()


def test_an_odd_patch_size_is_refused_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert run_cli(lambda _: iterative_convergence.main(["--N", "15", "--output-dir", str(out)])) == 2
    assert "--N must be even" in capsys.readouterr().err and not out.exists()
