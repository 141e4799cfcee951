"""``benchmarks.operator_tasks``: its models and inits, its statistics, and the command in a tiny configuration."""

from __future__ import annotations

import json
import math

import pytest
import torch

pytest.importorskip("neuralop")
pytest.importorskip("scipy")

from resumable import recording, without_timings  # noqa: E402

from benchmarks import operator_tasks  # noqa: E402
from benchmarks.operator_models import MODELS, apply_init, build_model, parse_init  # noqa: E402
from spectral_init.adapters.discovery import find_spectral_weights  # noqa: E402

TINY = ["--tasks", "darcy", "--seeds", "2", "--epochs", "2", "--n-train", "16", "--n-test", "8",
        "--darcy-resolution", "8", "--burgers-resolution", "16", "--width", "4", "--modes", "4", "--batch-size", "8",
        "--device", "cpu", "--no-progress", "--threads", "1"]


def spectral_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every spectral weight's current (reconstructed, complex) values."""
    plans, _ = find_spectral_weights(model)
    return [plan.dense().detach().clone() for plan in plans]


def test_parse_init_reads_names_and_gains_and_says_what_is_allowed() -> None:
    assert parse_init("default") == ("default", 1.0)
    assert parse_init("calibrated") == ("calibrated", 1.0)
    assert parse_init("Xavier_Complex") == ("xavier-complex", 1.0)
    assert parse_init("sqrt_in@0.1") == ("sqrt_in", 0.1)
    for bad in ("sqrt_in@0", "sqrt_in@-1", "sqrt_in@nan", "sqrt_in@inf", "sqrt_in@x"):
        with pytest.raises(ValueError, match="finite number > 0"):
            parse_init(bad)
    with pytest.raises(ValueError, match="takes no gain"):
        parse_init("default@2")
    with pytest.raises(ValueError, match="did you mean 'xavier-complex'"):
        parse_init("xavier")
    with pytest.raises(ValueError, match="mup needs base_modes, which this benchmark does not set"):
        parse_init("mup")


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_maps_one_channel_to_one_at_each_rank_it_claims(name) -> None:
    for dims in (1, 2):
        if dims in MODELS[name].dims:
            x = torch.randn(2, 1, *(16,) * dims)
            assert build_model(name, dims, 4, 8)(x).shape == x.shape
        else:
            with pytest.raises(ValueError, match=f"{name} runs on"):
                build_model(name, dims, 4, 8)


@pytest.mark.parametrize("name", ["fno", "tfno-tt", "plain-fno-8", "ffno"])
def test_a_gain_scales_the_same_draw_and_default_keeps_the_models_own(name) -> None:
    """``sqrt_in@0.1`` is sqrt_in's draw (same seed) times 0.1, exactly; ``default`` leaves what the
    constructor drew. A benchmark that dropped the gain, or re-drew the default, would break both."""
    def built(init: str, gain: float) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = build_model(name, 2, 4, 8)
        apply_init(model, init, gain, seed=3, resolution=16, activation="gelu", first_batch=None)
        return spectral_tensors(model)

    torch.manual_seed(0)
    own = spectral_tensors(build_model(name, 2, 4, 8))
    for a, b in zip(built("default", 1.0), own):
        assert torch.equal(a, b)
    for small, full in zip(built("sqrt_in", 0.1), built("sqrt_in", 1.0)):
        assert torch.allclose(small, 0.1 * full, rtol=1e-5, atol=0)
        assert full.abs().std() > 0  # a real draw, not a constant


def test_calibrated_brings_each_spectral_output_to_unit_second_moment() -> None:
    torch.manual_seed(0)
    model = build_model("fno", 2, 4, 8)
    batch = torch.randn(4, 1, 16, 16)
    apply_init(model, "calibrated", 1.0, seed=0, resolution=16, activation="gelu", first_batch=lambda: batch)
    seen = []
    hooks = [conv.register_forward_hook(lambda m, i, o: seen.append(o.detach().square().mean().item()))
             for conv in model.fno_blocks.convs]
    with torch.no_grad():
        model(batch)
    for hook in hooks:
        hook.remove()
    assert len(seen) == 4 and all(abs(s - 1) < 1e-3 for s in seen)


def test_late_change_is_the_relative_change_over_the_last_quarter_of_epochs() -> None:
    assert operator_tasks.late_change([1.0, 0.8, 0.6, 0.5, 0.4, 0.4, 0.4, 0.3, 0.2]) == pytest.approx(-0.5)
    assert operator_tasks.late_change([1.0, 0.5, 0.4]) == pytest.approx(-0.2)  # two epochs: the last one


def test_steps_to_reach() -> None:
    curve = [1.0, 0.5, 0.3, 0.2, 0.25]
    assert operator_tasks.steps_to_reach(curve, 10, 0.3) == 20
    assert operator_tasks.steps_to_reach(curve, 10, 2.0) == 0
    assert operator_tasks.steps_to_reach(curve, 10, 0.1) is None


def _run(init: str, seed: int, final: float, curve: list[float] | None = None) -> dict:
    curve = curve or [1.0, final]
    return {"task": "darcy", "model": "fno", "init": init, "seed": seed, "diverged": False, "final_rel_l2": final,
            "best_rel_l2": min(curve[1:]), "late_change": 0.0, "wall_seconds": 1.0, "test_curve": curve,
            "steps_per_epoch": 5}


def test_summary_pairs_seeds_and_reports_the_error_ratio_against_default() -> None:
    runs = [_run("default", s, f) for s, f in enumerate((0.10, 0.20, 0.40))]
    runs += [_run("sqrt_in", s, f) for s, f in enumerate((0.05, 0.10, 0.20))]  # half of default, every seed
    runs += [_run("sqrt_in@0.1", s, f, [1.0, 0.5, f]) for s, f in enumerate((0.2, 0.4, 0.8))]
    runs.append({**_run("sqrt_in", 3, 9.0), "diverged": True})
    [group] = operator_tasks.summarize(runs, ["default", "sqrt_in", "sqrt_in@0.1"])
    assert group["threshold_rel_l2"] == pytest.approx(0.1)  # twice the best final error, diverged runs left out
    ratio = group["inits"]["sqrt_in"]["final_ratio_vs_default"]
    assert ratio["geometric_mean"] == pytest.approx(0.5) and ratio["low"] == pytest.approx(0.5)
    assert group["inits"]["sqrt_in@0.1"]["final_ratio_vs_default"]["geometric_mean"] == pytest.approx(2.0)
    delta = group["inits"]["sqrt_in"]["vs_baseline"]["final_rel_l2"]
    assert delta["mean"] == pytest.approx(-(0.05 + 0.1 + 0.2) / 3) and delta["n"] == 3
    assert group["inits"]["default"]["final_ratio_vs_default"] is None
    # reached 0.1 after the first epoch: default once (seed 0), sqrt_in twice (not 0.2), sqrt_in@0.1 never
    assert group["inits"]["default"]["steps_to_2x_best"]["reached"] == 1
    assert group["inits"]["sqrt_in"]["steps_to_2x_best"] == {**group["inits"]["sqrt_in"]["steps_to_2x_best"],
                                                            "reached": 2, "of": 3, "mean": 5.0}
    assert group["inits"]["sqrt_in@0.1"]["steps_to_2x_best"] == {"reached": 0, "of": 3}


@pytest.fixture(scope="module")
def tiny_record(tmp_path_factory):
    out = tmp_path_factory.mktemp("operator_tasks")
    argv = ["--models", "fno,tfno-tt,plain-fno-8,ffno", "--inits", "default,sqrt_in@0.1,edge-of-chaos",
            "--jobs", "1", "--output-dir", str(out), *TINY]
    assert operator_tasks.main(argv) == 0
    return out, json.loads((out / "operator_tasks.json").read_text())


TINY_GROUP = pytest.mark.xdist_group("operator-tasks-tiny-run")


@TINY_GROUP
def test_the_tiny_grid_trains_every_model_init_and_seed(tiny_record) -> None:
    out, record = tiny_record
    assert record["schema"] == operator_tasks.SCHEMA
    runs = record["runs"]
    assert len(runs) == 4 * 3 * 2 and not record["diverged"]
    for run in runs:
        assert len(run["test_curve"]) == 3 and run["final_rel_l2"] == run["test_curve"][-1]
        assert run["best_rel_l2"] == min(run["test_curve"][1:]) and run["steps_per_epoch"] == 2
        assert math.isfinite(run["final_rel_l2"]) and run["final_rel_l2"] > 0
    # the step-0 audit sees each init: the small branch at 1% of sqrt_in's E|w|², neuralop's tt init far below
    audits = {(r["model"], r["init"]): r["audit_step0"] for r in runs if r["seed"] == 0}
    assert audits[("fno", "sqrt_in@0.1")]["median_ratio_sqrt_in"] == pytest.approx(0.01, rel=0.3)
    assert audits[("tfno-tt", "default")]["median_ratio_sqrt_in"] < 0.25
    assert "rows" in audits[("fno", "default")]
    assert [g["model"] for g in record["summary"]] == ["fno", "tfno-tt", "plain-fno-8", "ffno"]
    markdown = (out / "operator_tasks.md").read_text()
    assert markdown.startswith("# Operator-learning tasks") and "## darcy · plain-fno-8" in markdown
    assert "| sqrt_in@0.1 |" in markdown and "×default" in markdown
    assert record["config"]["data"]["darcy"]["generated"] is True
    assert (out / "data" / record["config"]["data"]["darcy"]["file"]).exists()


@TINY_GROUP
def test_a_rerun_reads_the_cached_data_and_worker_processes_give_the_same_numbers(tiny_record, tmp_path) -> None:
    """Two worker processes train the same runs to the same errors as one process (a seed fixes a run
    wherever it runs), and the data generated by the first run is read, not generated again."""
    out, first = tiny_record
    cached = tmp_path / "again"
    (cached / "data").mkdir(parents=True)
    name = first["config"]["data"]["darcy"]["file"]
    (cached / "data" / name).write_bytes((out / "data" / name).read_bytes())
    argv = ["--models", "fno,ffno", "--inits", "default,sqrt_in@0.1", "--jobs", "2", "--output-dir", str(cached),
            *TINY]
    assert operator_tasks.main(argv) == 0
    again = json.loads((cached / "operator_tasks.json").read_text())
    assert again["config"]["data"]["darcy"]["generated"] is False and again["config"]["workers"] == 2
    before = {(r["model"], r["init"], r["seed"]): r["test_curve"] for r in first["runs"]}
    for run in again["runs"]:
        assert run["test_curve"] == pytest.approx(before[(run["model"], run["init"], run["seed"])], rel=1e-5)


@TINY_GROUP
def test_replot_redraws_the_record(tiny_record) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks import replot

    out, _ = tiny_record
    (out / "operator_tasks.md").unlink()
    assert replot.main([str(out / "operator_tasks.json")]) == 0
    assert (out / "operator_tasks.md").exists() and (out / "operator_tasks_final.png").exists()


def test_a_run_that_raises_is_reported_and_the_others_are_kept(tmp_path, monkeypatch) -> None:
    from benchmarks import operator_models

    real = operator_models.apply_init

    def refuse_calibration(model, init, *args, **kwargs):
        if init == "calibrated":
            raise ValueError("calibrate_: layer fno_blocks.convs.0 outputs only zeros")
        return real(model, init, *args, **kwargs)

    monkeypatch.setattr(operator_tasks, "apply_init", refuse_calibration)
    monkeypatch.setattr(operator_tasks, "_refusal", lambda *args: None)  # the up-front trial would catch it
    out = tmp_path / "out"
    argv = ["--models", "fno", "--inits", "default,calibrated", "--jobs", "1", "--output-dir", str(out), *TINY]
    assert operator_tasks.main(argv) == 0
    record = json.loads((out / "operator_tasks.json").read_text())
    assert [d["init"] for d in record["diverged"]] == ["calibrated", "calibrated"]
    assert "outputs only zeros" in record["diverged"][0]["error"]
    assert list(record["summary"][0]["inits"]) == ["default"]
    assert "(ValueError: calibrate_: layer" in (out / "operator_tasks.md").read_text()


def test_bad_input_is_refused_before_any_work(tmp_path, capsys) -> None:
    from benchmarks.machinery.common import run_cli

    out = tmp_path / "out"
    cases = [
        (["--inits", "sqrt_in@0"], "finite number > 0"),
        (["--inits", "xavier"], "did you mean 'xavier-complex'"),
        (["--models", "resnet"], "unknown models ['resnet']"),
        (["--tasks", "burgers", "--models", "ffno"], "no model of --models runs on a task of --tasks"),
        (["--modes", "12"], "lower --modes or raise the resolution"),
    ]
    for extra, message in cases:
        try:
            code = run_cli(lambda _argv, extra=extra: operator_tasks.main([*TINY, "--output-dir", str(out), *extra]))
        except SystemExit as exc:  # argparse's own refusal
            code = exc.code
        assert code == 2, extra
        assert message in capsys.readouterr().err
        assert not (out / "operator_tasks.json").exists()


def test_a_resumed_sweep_equals_an_uninterrupted_one_run_for_run(tmp_path, monkeypatch) -> None:
    """Interrupted after two of its four runs, then --resume: each run trains once, and the runs and
    the summary equal an uninterrupted sweep's (the seconds aside)."""
    from benchmarks.machinery.common import run_cli

    argv = [*TINY, "--models", "fno", "--inits", "default,sqrt_in", "--jobs", "1"]
    whole = tmp_path / "whole"
    assert operator_tasks.main([*argv, "--output-dir", str(whole)]) == 0
    real_train, trained = operator_tasks.train_one, []

    def which(job):
        return job.init, job.seed

    monkeypatch.setattr(operator_tasks, "train_one", recording(real_train, trained, which, stop_after=2))
    stopped = tmp_path / "stopped"
    assert run_cli(lambda _: operator_tasks.main([*argv, "--output-dir", str(stopped)])) == 130
    monkeypatch.setattr(operator_tasks, "train_one", recording(real_train, trained, which))
    assert operator_tasks.main([*argv, "--output-dir", str(stopped), "--resume"]) == 0
    assert sorted(trained) == [("default", 0), ("default", 1), ("sqrt_in", 0), ("sqrt_in", 1)]
    resumed, uninterrupted = (json.loads((d / "operator_tasks.json").read_text()) for d in (stopped, whole))
    assert without_timings(resumed["runs"]) == without_timings(uninterrupted["runs"])
    assert without_timings(resumed["summary"]) == without_timings(uninterrupted["summary"])
