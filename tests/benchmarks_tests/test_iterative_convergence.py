"""benchmarks.iterative_convergence in a tiny configuration: both solvers to convergence on two seeds, the
record, its report and figure; bad flags refused before any work."""

from __future__ import annotations

import json

import pytest

from benchmarks import iterative_convergence
from benchmarks.machinery.common import run_cli


@pytest.mark.heavy
def test_a_tiny_run_stops_each_solver_where_ssim_stops_changing(tmp_path) -> None:
    from ptycho_torch.solvers.ptylab import ptylab_available

    solvers = ",".join(["rpie"] + ["cdtools"] * iterative_convergence.anchor_available()
                       + ["ptylab-mpie"] * ptylab_available())
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
    assert record["config"]["packages"]["rpie"] == "spectral-init rPIE"
    if "ptylab-mpie" in solvers:
        assert "| PtyLab mPIE |" in report and record["config"]["packages"]["ptylab-mpie"].startswith("ptylab ")


def test_a_ptylab_solver_without_ptylab_is_refused_naming_the_package(tmp_path, capsys, monkeypatch) -> None:
    from ptycho_torch.solvers import choice

    monkeypatch.setattr(choice, "ptylab_available", lambda: False)
    out = tmp_path / "out"
    argv = ["--solvers", "rpie,ptylab-epie", "--output-dir", str(out)]
    assert run_cli(lambda _: iterative_convergence.main(argv)) == 2
    assert "--solvers: ptylab-epie needs PtyLab: pip install ptylab" in capsys.readouterr().err and not out.exists()


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


def test_each_cdtools_rate_is_its_own_run_and_reaches_the_solver(tmp_path, monkeypatch) -> None:
    """--cdtools-lrs 0.05,0.01: rows "cdtools" (the anchor's own rate) and "cdtools@0.01", each solved at its
    rate, named in the report."""
    import torch

    from ptycho_torch.anchor import DEFAULT_LR

    assert iterative_convergence.solver_runs(["rpie", "cdtools"], [DEFAULT_LR, 0.01]) == [
        ("rpie", None), ("cdtools", DEFAULT_LR), ("cdtools@0.01", 0.01)]
    assert iterative_convergence.solver_runs(["rpie"], [0.01]) == [("rpie", None)]
    rates = []

    class Flat:  # a transparent object's patches: a fixed SSIM, so each run converges at its second checkpoint
        def __init__(self, data):
            self.patches, self.seconds_per_object = torch.ones(len(data), 16, 16, dtype=torch.complex64), 0.1

    def fake(data, iterations, lr, seed):
        rates.append(lr)
        return Flat(data)

    monkeypatch.setattr(iterative_convergence, "anchor_available", lambda: True)
    monkeypatch.setattr(iterative_convergence, "iterative_reconstruction", fake)
    out = tmp_path / "out"
    argv = ["--N", "16", "--nimgs-train", "1", "--nimgs-test", "1", "--seeds", "1", "--checkpoints", "2,4",
            "--solvers", "cdtools", "--cdtools-lrs", f"{DEFAULT_LR},0.01", "--threads", "1", "--output-dir", str(out)]
    assert run_cli(lambda _: iterative_convergence.main(argv)) == 0
    record = json.loads((out / "iterative_convergence.json").read_text())
    assert [r["solver"] for r in record["rows"]] == ["cdtools", "cdtools@0.01"]
    assert sorted(set(rates)) == [0.01, DEFAULT_LR] and rates.count(0.01) == 3  # warm-up, checkpoints 2 and 4
    assert "| CDTools (Adam 0.01) | 1/1 |" in (out / "iterative_convergence.md").read_text()
