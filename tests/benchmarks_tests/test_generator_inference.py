"""benchmarks.generator_inference in a tiny configuration: the scan's patterns counted, the forward passes and
the stitch timed apart and together, bad sizes refused before any work."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import generator_inference
from benchmarks.machinery.common import run_cli


def test_a_tiny_run_times_every_architecture_over_the_whole_scan(tmp_path) -> None:
    out = tmp_path / "out"
    argv = ["--N", "16", "--modes", "4", "--width", "4", "--blocks", "1", "--object-size", "40", "--step", "6",
            "--batches", "7,100", "--repeats", "2", "--warmup", "0", "--threads", "1", "--output-dir", str(out)]
    assert run_cli(lambda _: generator_inference.main(argv)) == 0
    record = json.loads((out / "generator_inference.json").read_text())
    assert [(r["architecture"], r["batch"]) for r in record["results"]] == [("ffno", 7), ("ffno", 100), ("fno", 7),
                                                                           ("fno", 100)]
    for r in record["results"]:
        assert r["patterns"] == 25  # corners 0, 6, 12, 18, 24 on each axis of a 40 px canvas
        m = r["median_seconds"]
        assert m["forward"] > 0 and m["stitch"] > 0 and m["total"] >= max(m["forward"], m["stitch"])
        assert r["patterns_per_second"] == pytest.approx(25 / m["total"])
        assert r["forward_patterns_per_second"] > r["patterns_per_second"]
    report = (out / "generator_inference.md").read_text()
    assert "| ffno | 7 |" in report and "(25 patterns)" in report and (out / "generator_inference.png").exists()


def test_the_timed_scan_predicts_every_pattern_in_batches(monkeypatch) -> None:
    """Batches of 7 over 25 patterns: four forward passes, the last of 4, in order; every patch stitched."""
    seen, stitched = [], {}

    class Echo(torch.nn.Module):
        def forward(self, x):
            seen.append(x.shape[0])
            return x, torch.zeros_like(x)  # (amplitude, phase): the pattern itself as the patch

    monkeypatch.setattr(generator_inference, "stitch", lambda patches, *rest: stitched.setdefault("p", patches))
    patterns = torch.rand(25, 1, 16, 16)
    positions = generator_inference.grid_positions(40, 16, 6)
    generator_inference.time_scan(Echo(), patterns, positions, 40, torch.ones(16, 16), 7, torch.device("cpu"))
    assert seen == [7, 7, 7, 4]
    torch.testing.assert_close(stitched["p"], patterns[:, 0].to(torch.complex64))


@pytest.mark.parametrize(("flags", "message"), [(["--N", "15"], "--N must be even"),
                                                (["--N", "16", "--modes", "9"], "--modes at most N // 2"),
                                                (["--N", "16", "--modes", "4", "--object-size", "8"],
                                                 "--object-size must be at least --N = 16")])
def test_bad_sizes_are_refused_before_any_work(tmp_path, capsys, flags, message) -> None:
    out = tmp_path / "out"
    assert run_cli(lambda _: generator_inference.main([*flags, "--output-dir", str(out)])) == 2
    assert message in capsys.readouterr().err and not out.exists()
