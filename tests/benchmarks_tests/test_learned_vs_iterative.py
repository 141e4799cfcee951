"""benchmarks.learned_vs_iterative in a tiny configuration: one generator trained for two epochs, every object
kind reconstructed the three ways, the rows the issue asks for, the report and the figure; bad flags refused
before any work."""

from __future__ import annotations

import json

import pytest

from benchmarks import learned_vs_iterative
from benchmarks.machinery.common import run_cli


@pytest.mark.heavy
def test_a_tiny_run_writes_a_row_per_method_kind_and_regime(tmp_path) -> None:
    out = tmp_path / "out"
    argv = ["--N", "16", "--modes", "4", "--width", "8", "--blocks", "2", "--nepochs", "2", "--nimgs-train", "2",
            "--nimgs-test", "1", "--steps", "4", "--nphotons", "1e4", "--threads", "1", "--output-dir", str(out)]
    assert run_cli(lambda _: learned_vs_iterative.main(argv)) == 0
    record = json.loads((out / "learned_vs_iterative.json").read_text())
    assert record["schema"] == learned_vs_iterative.SCHEMA
    rows = record["rows"]
    assert sorted((r["object_kind"], r["method"]) for r in rows) == sorted(
        (k, m) for k in ("lines", "siemens", "smooth", "natural") for m in learned_vs_iterative.METHODS)
    for row in rows:
        assert {"method", "object_kind", "nphotons", "step", "seed", "ssim_amp", "ssim_phase", "seconds_per_object",
                "iterations"} <= set(row)
        assert row["nphotons"] == 1e4 and row["step"] == 4 and row["seconds_per_object"] > 0
        assert (row["iterations"] is None) == (row["method"] == "generator")
        if row["method"] == "generator":  # the forward passes alone: patterns over their seconds
            assert row["patterns_per_second"] * row["seconds_per_object"] == pytest.approx(25)  # 5 x 5 positions
        else:  # the best checkpoint is one of the run's, at least as good in the mean of both SSIMs
            assert row["best_iterations"] <= row["iterations"]
            assert (row["best_ssim_amp"] + row["best_ssim_phase"]
                    >= row["ssim_amp"] + row["ssim_phase"] - 1e-12)
    generator = {r["object_kind"]: r["seconds_per_object"] for r in rows if r["method"] == "generator"}
    for row in rows:  # the warm start's time counts the generator's
        if row["method"] == "generator+iterative":
            assert row["seconds_per_object"] > generator[row["object_kind"]]
    assert record["trainings"][0]["nphotons"] == 1e4 and len(record["summary"]) == 12
    report = learned_vs_iterative.markdown_report(record)
    assert "| 1e+04 | 4 | siemens | iterative |" in report
    generator, solver = (next(r for r in rows if r["object_kind"] == "lines" and r["method"] == m)
                         for m in ("generator", "iterative"))
    delta = generator["ssim_amp"] - solver["ssim_amp"]
    assert f"| 1e+04 | 4 | lines | {delta:.2g} / " in report  # one seed: the paired difference is the difference
    assert (out / "learned_vs_iterative.png").exists() and (out / "learned_vs_iterative_objects.png").exists()
    pictured = {o["object_kind"]: o for o in record["objects"]}  # seed 0's first object, as scored
    assert sorted(pictured) == ["lines", "natural", "siemens", "smooth"]
    assert pictured["lines"]["generator"]["ssim_phase"] == pytest.approx(
        next(r for r in rows if r["object_kind"] == "lines" and r["method"] == "generator")["ssim_phase"])


@pytest.mark.parametrize(("flags", "message"), [(["--kinds", "cat"], "unknown object kind"),
                                                (["--nphotons", "1e4,0"], "must be a finite number > 0; got 0"),
                                                (["--steps", "8,,4"], "without empty items")])
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, flags, message) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        learned_vs_iterative.main([*flags, "--output-dir", str(out)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err and not out.exists()


def test_modes_beyond_the_patch_are_refused_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert run_cli(lambda _: learned_vs_iterative.main(["--N", "16", "--output-dir", str(out)])) == 2
    assert "--modes <= N // 2" in capsys.readouterr().err and not out.exists()


def test_a_ptylab_solver_without_ptylab_is_refused_before_any_work(tmp_path, capsys, monkeypatch) -> None:
    from ptycho_torch.solvers import choice

    monkeypatch.setattr(choice, "ptylab_available", lambda: False)
    out = tmp_path / "out"
    assert run_cli(lambda _: learned_vs_iterative.main(["--solver", "ptylab-mpie", "--output-dir", str(out)])) == 2
    assert "--solver: ptylab-mpie needs PtyLab: pip install ptylab" in capsys.readouterr().err and not out.exists()
