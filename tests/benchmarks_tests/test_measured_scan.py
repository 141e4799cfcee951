"""benchmarks.measured_scan in a tiny configuration: a simulated near-field CXI scan, the generator for two
epochs and CDTools for one, the record, its report and its figure, replotted from the JSON alone."""

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
            "--batch-size", "8", "--cdtools-schedule", "1:0.04:8", "--output-dir", str(out), "--threads", "1"]
    assert run_cli(lambda _: measured_scan.main(argv)) == 0
    record = json.loads((out / "measured_scan.json").read_text())
    assert record["schema"] == measured_scan.SCHEMA and record["ours"]["epochs"] == 2
    assert record["cdtools"]["epochs"] == 1 and -1 <= record["agreement"]["phase_pearson"] <= 1
    assert set(record["images"]) == {"pixel_m", "ours", "cdtools"}
    assert (out / "object.npz").exists() and (out / "cdtools.npz").exists() and (out / "measured_scan.png").exists()
    assert "Phase agreement" in measured_scan.markdown_report(record)
    assert measured_scan.figure(record) is not None


def test_a_missing_scan_is_refused_before_any_work(tmp_path, capsys) -> None:
    argv = ["--data", str(tmp_path / "absent.cxi"), "--output-dir", str(tmp_path / "out")]
    assert run_cli(lambda _: measured_scan.main(argv)) == 2
    assert "absent.cxi" in capsys.readouterr().err and not (tmp_path / "out").exists()
