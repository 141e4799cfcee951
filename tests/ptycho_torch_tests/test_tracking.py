"""Experiment tracking with MLflow: a tiny training and a tiny benchmark logged to a local file store and read
back with mlflow's own search; nothing logged unless asked; asked without MLflow, a clear exit 2 before any
work; a failing store costs a warning, not the run's files."""

from __future__ import annotations

import json
import math

import pytest

from ptycho_torch import tracking
from ptycho_torch.train import main as train_main

mlflow = pytest.importorskip("mlflow")

TINY = ["--N", "16", "--fno-width", "4", "--fno-modes", "2", "--fno-blocks", "1", "--nepochs", "3",
        "--spectral-init", "kaiming-complex", "--threads", "1", "--no-progress", "--no-figure"]


@pytest.fixture(autouse=True)
def no_tracking_environment(monkeypatch):
    monkeypatch.delenv(tracking.ENV_URI, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the reading side here, as log_run sets it


def runs(store, experiment):
    mlflow.set_tracking_uri(f"file:{store}")
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def test_a_training_is_logged_and_read_back(tmp_path, capsys) -> None:
    store, out = tmp_path / "mlruns", tmp_path / "run"
    assert train_main([*TINY, "--output-dir", str(out), "--tracking-uri", f"file:{store}",
                       "--experiment", "tiny"]) == 0
    assert "logged to MLflow" in capsys.readouterr().out
    (run,) = runs(store, "tiny")
    record = json.loads((out / "metrics.json").read_text())
    params = run.data.params
    assert params["spectral_init.strategy"] == "kaiming-complex" and params["nepochs"] == "3"
    assert params["model.fno_width"] == "4" and params["data.N"] == "16" and run.info.run_name == "run"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        list(enumerate(record["epoch_losses"])))
    assert run.data.metrics["object.ssim_phase"] == pytest.approx(record["reconstruction"]["ssim_phase"])
    assert run.data.metrics["test.physics_loss"] == pytest.approx(record["test"]["physics_loss"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert artifacts == {"metrics.json"}  # --no-figure: no reconstruction.png to log


def test_the_environment_asks_too_and_nothing_is_logged_unless_asked(tmp_path, monkeypatch) -> None:
    logged = []
    monkeypatch.setattr("ptycho_torch.train.log_training", lambda *args: logged.append(args))
    assert train_main([*TINY, "--nepochs", "1", "--output-dir", str(tmp_path / "plain")]) == 0
    assert logged == []
    monkeypatch.setenv(tracking.ENV_URI, f"file:{tmp_path / 'env-store'}")
    assert train_main([*TINY, "--nepochs", "1", "--output-dir", str(tmp_path / "env")]) == 0
    assert len(logged) == 1 and logged[0][0].uri == f"file:{tmp_path / 'env-store'}"


def test_asked_without_mlflow_the_command_exits_2_before_any_work(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(tracking, "mlflow_installed", lambda: False)
    out = tmp_path / "run"
    assert train_main([*TINY, "--output-dir", str(out), "--tracking-uri", f"file:{tmp_path / 's'}"]) == 2
    err = capsys.readouterr().err
    assert "--tracking-uri needs MLflow" in err and "spectral-init[tracking]" in err and not out.exists()
    # asked by the environment alone: a note, and the run goes on unlogged
    monkeypatch.setenv(tracking.ENV_URI, f"file:{tmp_path / 's'}")
    assert train_main([*TINY, "--nepochs", "1", "--output-dir", str(out)]) == 0
    assert "MLFLOW_TRACKING_URI is set but MLflow is not installed" in capsys.readouterr().err
    assert (out / "metrics.json").exists() and not (tmp_path / "s").exists()


def test_a_failing_store_costs_a_warning_not_the_runs_files(tmp_path, monkeypatch, capsys) -> None:
    def refuse(*args, **kwargs):
        raise OSError("the store is read-only")

    monkeypatch.setattr(mlflow, "start_run", refuse)
    out = tmp_path / "run"
    assert train_main([*TINY, "--nepochs", "1", "--output-dir", str(out), "--tracking-uri",
                       f"file:{tmp_path / 's'}"]) == 0
    assert "warning: the run was not logged" in capsys.readouterr().err and (out / "metrics.json").exists()


def test_a_benchmark_logs_its_config_summary_and_files(tmp_path, capsys) -> None:
    from benchmarks import generator_inference
    from benchmarks.machinery.common import run_cli

    store, out = tmp_path / "mlruns", tmp_path / "out"
    argv = ["--N", "8", "--modes", "2", "--width", "2", "--blocks", "1", "--object-size", "12", "--step", "4",
            "--repeats", "1", "--warmup", "0", "--threads", "1", "--output-dir", str(out),
            "--tracking-uri", f"file:{store}"]
    assert run_cli(lambda _: generator_inference.main(argv)) == 0
    (run,) = runs(store, "benchmarks.generator_inference")
    assert run.data.params["config.N"] == "8" and run.data.params["environment.threads"] == "1"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"generator_inference.json", "generator_inference.md"} <= artifacts


def test_a_benchmark_asked_to_log_without_mlflow_exits_2_at_the_flag(tmp_path, monkeypatch, capsys) -> None:
    from benchmarks import generator_inference

    monkeypatch.setattr("benchmarks.machinery.common.mlflow_installed", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        generator_inference.main(["--tracking-uri", "file:x", "--output-dir", str(tmp_path / "out")])
    assert exit_.value.code == 2 and "needs MLflow" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_flat_params_and_metrics_keep_what_mlflow_takes() -> None:
    params = tracking.flat_params({"model": {"spectral_init": {"strategy": "sqrt_in", "gain": 1.0}}, "seeds": [0, 1],
                                   "probe": None, "long": "x" * 7000})
    assert params == {"model.spectral_init.strategy": "sqrt_in", "model.spectral_init.gain": "1.0",
                      "seeds": "[0, 1]", "probe": "null"}
    metrics = tracking.flat_metrics({"a": {"mean": 0.5, "n": 3, "ok": True, "name": "x"}, "curve": [1, math.nan, 2],
                                     "p(x)": 1.0})
    assert metrics == {"a.mean": 0.5, "a.n": 3.0, "curve.0": 1.0, "curve.2": 2.0, "p_x_": 1.0}


def test_more_values_than_mlflow_takes_a_call_are_all_logged(tmp_path, monkeypatch) -> None:
    """A tracking server takes at most 100 parameters and 1,000 metrics a call (MLflow's REST limits; the
    file store takes more): the limits stood in here, every value still arrives."""
    def limited(log, most):
        def call(values):
            assert len(values) <= most, f"{len(values)} values in one call, a server takes {most}"
            return log(values)
        return call

    monkeypatch.setattr(mlflow, "log_params", limited(mlflow.log_params, 100))
    monkeypatch.setattr(mlflow, "log_metrics", limited(mlflow.log_metrics, 1000))
    store = tmp_path / "mlruns"
    params = {f"p{i}": str(i) for i in range(250)}
    metrics = {f"m{i}": float(i) for i in range(2500)}
    run_id = tracking.log_run(tracking.Tracking(f"file:{store}", "many"), params, metrics)
    (run,) = runs(store, "many")
    assert run.info.run_id == run_id and len(run.data.params) == 250 and len(run.data.metrics) == 2500
    assert run.data.metrics["m2499"] == 2499.0
