"""benchmarks.generator_variants in a tiny configuration: each change trained beside the baseline on the same
unseen scans, the paired differences, the solver's gap, an interrupt keeping the finished trainings, bad flags
refused before any work."""

from __future__ import annotations

import argparse
import json

import pytest

from benchmarks import generator_variants, learned_vs_iterative
from benchmarks.machinery.common import run_cli

TINY = ["--N", "16", "--modes", "4", "--width", "8", "--blocks", "2", "--nepochs", "2", "--nimgs-train", "2",
        "--nimgs-test", "1", "--step", "4", "--nphotons", "1e4", "--threads", "1"]


@pytest.mark.heavy
def test_each_change_is_paired_with_the_baseline_on_the_same_scans(tmp_path) -> None:
    out = tmp_path / "out"
    argv = [*TINY, "--variants", "longer,more-data", "--kinds", "smooth,siemens", "--seeds", "2",
            "--output-dir", str(out)]
    assert run_cli(lambda _: generator_variants.main(argv)) == 0
    record = json.loads((out / "generator_variants.json").read_text())
    assert record["config"]["variants"] == ["baseline", "longer", "more-data"]  # the baseline always, first
    trainings = {(t["variant"], t["seed"]) for t in record["trainings"]}
    assert trainings == {(v, s) for v in ("baseline", "longer", "more-data") for s in (0, 1)}
    rows = record["rows"]
    solver = [r for r in rows if r["method"] == "iterative"]
    assert sorted((r["object_kind"], r["seed"]) for r in solver) == [("siemens", 0), ("siemens", 1), ("smooth", 0),
                                                                     ("smooth", 1)]
    by = {(r["variant"], r["object_kind"], r["seed"]): r for r in rows if r["method"] == "generator"}
    assert len(by) == 3 * 2 * 2
    summary = {(s["variant"], s["object_kind"]): s for s in record["summary"]}
    longer = summary[("longer", "smooth")]["vs_baseline"]["ssim_amp"]
    deltas = [by[("longer", "smooth", s)]["ssim_amp"] - by[("baseline", "smooth", s)]["ssim_amp"] for s in (0, 1)]
    assert longer["n"] == 2 and longer["mean"] == pytest.approx(sum(deltas) / 2)
    pooled = summary[("more-data", "all")]["vs_baseline"]["ssim_phase"]  # over seed × kind
    assert pooled["n"] == 4 and pooled["mean"] == pytest.approx(sum(
        by[("more-data", k, s)]["ssim_phase"] - by[("baseline", k, s)]["ssim_phase"]
        for k in ("smooth", "siemens") for s in (0, 1)) / 4)
    gap = summary[(None, "siemens")]["vs_baseline"]["ssim_phase"]  # the solver's lead over the baseline
    assert gap["mean"] == pytest.approx(sum(
        next(r for r in solver if r["object_kind"] == "siemens" and r["seed"] == s)["ssim_phase"]
        - by[("baseline", "siemens", s)]["ssim_phase"] for s in (0, 1)) / 2)
    assert summary[("baseline", "smooth")]["vs_baseline"] is None
    report = (out / "generator_variants.md").read_text()
    assert "| longer | 3× the epochs | smooth |" in report and "| rPIE (converged) | — | all |" in report
    assert (out / "generator_variants.png").exists()


def test_a_variant_changes_only_its_own_flag() -> None:
    args = generator_variants.build_parser().parse_args(TINY + ["--output-dir", "unused"])
    args.train_kinds = ["lines"]
    for name, expected in {"more-data": {"nimgs_train": 8}, "longer": {"nepochs": 6}, "wider": {"width": 16},
                           "diverse": {"train_kinds": ["lines", "smooth"]}, "baseline": {}}.items():
        changed = vars(generator_variants.variant_arguments(args, name))
        assert {k: v for k, v in changed.items() if vars(args)[k] != v} == expected
    assert isinstance(generator_variants.variant_arguments(args, "wider"), argparse.Namespace)
    # the other architecture and loss, each way: the loss's switch is the Poisson threshold around the dose
    assert generator_variants.variant_arguments(args, "other-architecture").architecture == "fno"
    args.architecture = "fno"
    assert generator_variants.variant_arguments(args, "other-architecture").architecture == "ffno"
    for nphotons, poisson_below, trains_with in ((1e6, 1e7, "mae"), (1e8, 1e7, "poisson")):
        args.nphotons, args.poisson_below = nphotons, poisson_below
        other = generator_variants.variant_arguments(args, "other-loss")
        assert learned_vs_iterative.training_config(other, nphotons, 8, 0).loss == trains_with
        assert learned_vs_iterative.training_config(args, nphotons, 8, 0).loss != trains_with


def test_an_interrupt_keeps_the_finished_trainings(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    real_train, calls = generator_variants.train, []

    def train_then_interrupt(config):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_train(config)

    monkeypatch.setattr(generator_variants, "train", train_then_interrupt)
    argv = [*TINY, "--variants", "wider", "--kinds", "smooth", "--seeds", "1", "--output-dir", str(out)]
    assert run_cli(lambda _: generator_variants.main(argv)) == 130
    record = json.loads((out / "generator_variants.json").read_text())
    assert record["incomplete"] is True and [t["variant"] for t in record["trainings"]] == ["baseline"]
    assert {r["method"] for r in record["rows"]} == {"generator", "iterative"}
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [(["--variants", "deeper"], "unknown variants"),
                                                (["--kinds", "cat"], "unknown object kinds"),
                                                (["--nphotons", "0"], "must be a finite number > 0; got 0")])
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, flags, message) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        generator_variants.main([*flags, "--output-dir", str(out)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err and not out.exists()


def test_modes_beyond_the_patch_are_refused_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert run_cli(lambda _: generator_variants.main(["--N", "16", "--output-dir", str(out)])) == 2
    assert "--modes <= N // 2" in capsys.readouterr().err and not out.exists()
