"""benchmarks.measured_scan in a tiny configuration: a simulated near-field CXI scan, the generator for two
epochs and CDTools for one (then two more, the convergence check), the record, its report and its figure,
replotted from the JSON alone."""

from __future__ import annotations

import json

import pytest
from cxi_scans import Z1, simulated_cxi

from benchmarks import measured_scan
from benchmarks.machinery.common import run_cli


@pytest.mark.heavy
def test_a_tiny_comparison_runs_and_replots(tmp_path, capsys) -> None:
    pytest.importorskip("cdtools")
    path = tmp_path / "near.cxi"
    simulated_cxi(path, "near-field", n=16, side=5, step=3)
    out = tmp_path / "out"
    argv = ["--data", str(path), "--focus-distance", str(Z1), "--epochs", "2", "--width", "4", "--modes", "2",
            "--batch-size", "8", "--cdtools-schedule", "1:0.04:8", "--cdtools-extension", "2", "--output-dir", str(out),
            "--threads", "1"]
    assert run_cli(lambda _: measured_scan.main(argv)) == 0
    record = json.loads((out / "measured_scan.json").read_text())
    assert record["schema"] == measured_scan.SCHEMA and record["ours"]["epochs"] == 2
    assert record["cdtools"]["epochs"] == 1 and -1 <= record["agreement"]["phase_pearson"] <= 1
    assert set(record["images"]) == {"pixel_m", "ours", "cdtools"}
    assert (out / "object.npz").exists() and (out / "cdtools.npz").exists() and (out / "measured_scan.png").exists()
    convergence = record["convergence"]  # the example's 1 epoch against the 3 of the extension's end
    assert convergence["reference_epochs"] == 3 and [row["epochs"] for row in convergence["cdtools"]] == [1]
    for scores in (convergence["cdtools"][0], convergence["generator"]):  # SSIM: null where no 7 × 7 box is lit
        assert -1 <= scores["phase_pearson"] <= 1 and (scores["phase_ssim"] is None or -1 <= scores["phase_ssim"] <= 1)
    report = measured_scan.markdown_report(record)
    assert "Phase agreement" in report and "Is the anchor converged?" in report
    assert measured_scan.figure(record) is not None and (out / "measured_scan_convergence.png").exists()


def test_a_missing_scan_is_refused_before_any_work(tmp_path, capsys) -> None:
    argv = ["--data", str(tmp_path / "absent.cxi"), "--output-dir", str(tmp_path / "out")]
    assert run_cli(lambda _: measured_scan.main(argv)) == 2
    assert "absent.cxi" in capsys.readouterr().err and not (tmp_path / "out").exists()
