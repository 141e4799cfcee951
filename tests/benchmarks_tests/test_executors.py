"""The sweeps' runs on a cluster engine: a local Dask cluster the tests start (a scheduler and two
single-thread worker processes) and submitit's local stand-in for Slurm give the numbers a run in this
process gives, in the same order, as do local worker processes; the executor flags are checked before any
work."""

from __future__ import annotations

import json

import pytest

from benchmarks import gradient_ratios, signal_propagation, training_comparison
from benchmarks.machinery.common import run_cli

distributed = pytest.importorskip("distributed")

TINY = ["--strategies", "sqrt_in,legacy", "--seeds", "2", "--models", "blocks,ffno", "--width", "4", "--blocks", "2",
        "--modes", "2", "--size", "8", "--batch", "1", "--no-progress", "--device", "cpu"]


# training_comparison: two strategies × two seeds, and the worker's own inputs, tiny; one torch thread here as
# on every worker, so that the arithmetic is the same
TINY_TRAINING = ["--strategies", "sqrt_in", "--seeds", "2", "--N", "16", "--width", "4", "--modes", "2", "--blocks",
                 "1", "--nepochs", "2", "--nimgs-train", "1", "--device", "cpu", "--no-progress", "--threads", "1"]
TINY_SIGNAL = ["--strategies", "legacy,sqrt_in", "--models", "plain-relu,blocks", "--depths", "2,3", "--seeds", "2",
               "--width", "4", "--modes", "2", "--size", "8", "--batch", "1", "--device", "cpu", "--no-progress"]
TIMES = {"seconds", "inference_seconds_per_object"}  # what a run measures of the machine, not of the model


def measured(record):
    return [{k: v for k, v in run.items() if k not in TIMES} for run in record["runs"]]


def run_of(module, argv, out):
    assert module.main([*argv, "--output-dir", str(out)]) == 0
    return json.loads((out / f"{module.STEM}.json").read_text())


@pytest.fixture(scope="module")
def cluster():
    """A Dask scheduler and two single-thread worker processes, for this module's tests."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        assert local.scheduler_address.startswith("tcp://")
        yield local


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert gradient_ratios.main([*TINY, "--jobs", "1", "--output-dir", str(out)]) == 0
    return json.loads((out / "gradient_ratios.json").read_text())


@pytest.mark.heavy
def test_a_dask_cluster_gives_the_local_runs_numbers(local_run, cluster, tmp_path) -> None:
    record = run_of(gradient_ratios, [*TINY, "--executor", cluster.scheduler_address], tmp_path / "dask")
    assert measured(record) == measured(local_run) and len(cluster.scheduler_info["workers"]) == 2
    assert record["spectral_layers"] == local_run["spectral_layers"]


@pytest.mark.heavy
def test_a_sweep_run_as_python_m_takes_back_its_runs_from_the_cluster(local_run, cluster, tmp_path) -> None:
    """Run as ``python -m``, the sweep's classes are ``__main__``'s; the workers send back those of
    ``benchmarks.gradient_ratios`` (the pydantic records refused them as another class before run_cli ran
    the study as its importable module)."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "cli"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gradient_ratios", *TINY, "--executor",
                           cluster.scheduler_address, "--output-dir", str(out)], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert measured(json.loads((out / "gradient_ratios.json").read_text())) == measured(local_run)


@pytest.mark.heavy
def test_training_comparison_gives_the_same_runs_in_one_process_two_workers_and_on_dask(cluster, tmp_path) -> None:
    here = run_of(training_comparison, [*TINY_TRAINING, "--jobs", "1"], tmp_path / "here")
    assert len(here["runs"]) == 4 and here["config"]["workers"] == 1
    for name, flags in (("workers", ["--jobs", "2"]), ("dask", ["--executor", cluster.scheduler_address])):
        record = run_of(training_comparison, [*TINY_TRAINING, *flags], tmp_path / name)
        assert name != "workers" or record["config"]["workers"] == 2
        assert measured(record) == measured(here), name  # the runs, in one process's order
        assert record["objects"] == here["objects"] and record["summary"] == here["summary"], name
        assert record["spectral_layers"] == here["spectral_layers"], name


@pytest.mark.heavy
def test_signal_propagation_gives_the_same_runs_in_one_process_two_workers_and_on_dask(cluster, tmp_path) -> None:
    here = run_of(signal_propagation, [*TINY_SIGNAL, "--jobs", "1"], tmp_path / "here")
    assert len(here["runs"]) == 2 * 2 * 2 * 3  # models × depths × seeds × variants
    for name, flags in (("workers", ["--jobs", "2"]), ("dask", ["--executor", cluster.scheduler_address])):
        record = run_of(signal_propagation, [*TINY_SIGNAL, *flags], tmp_path / name)
        assert name != "workers" or record["config"]["workers"] == 2
        assert record["runs"] == here["runs"], name
        assert record["spectral_layers"] == here["spectral_layers"] and record["summary"] == here["summary"], name


@pytest.mark.heavy
def test_submitits_local_stand_in_for_slurm_gives_the_local_runs_numbers(local_run, tmp_path) -> None:
    pytest.importorskip("submitit")
    config = tmp_path / "executor.toml"
    config.write_text(f'[slurm]\ncluster = "local"\nfolder = "{tmp_path / "logs"}"\ntimeout_min = 10\n')
    out = tmp_path / "slurm"
    assert gradient_ratios.main([*TINY, "--executor", "slurm", "--executor-config", str(config),
                                 "--output-dir", str(out)]) == 0
    record = json.loads((out / "gradient_ratios.json").read_text())
    assert measured(record) == measured(local_run)
    assert any((tmp_path / "logs").iterdir())  # submitit's own job files: the runs went through it


@pytest.mark.parametrize(("flags", "message"), [
    (["--executor", "ssh://host"], "expected local, slurm or tcp://HOST:PORT"),
    (["--executor", "tcp://host"], "a Dask scheduler is tcp://HOST:PORT"),
])
def test_a_bad_executor_is_refused_at_the_flag(tmp_path, capsys, flags, message) -> None:
    with pytest.raises(SystemExit) as exit_:
        gradient_ratios.main([*flags, "--output-dir", str(tmp_path / "out")])
    assert exit_.value.code == 2 and message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_executor_flags_without_effect_are_refused_before_any_work(tmp_path, capsys) -> None:
    config = tmp_path / "executor.toml"
    config.write_text("[slurm]\ntimeout_min = 1\n")
    out = tmp_path / "out"
    assert run_cli(lambda _: gradient_ratios.main(["--executor", "tcp://localhost:8786", "--jobs", "2",
                                                   "--output-dir", str(out)])) == 2
    assert "--jobs has no effect with --executor tcp://localhost:8786" in capsys.readouterr().err
    assert run_cli(lambda _: gradient_ratios.main(["--executor-config", str(config), "--output-dir", str(out)])) == 2
    assert "--executor-config has no effect without --executor slurm" in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_engine_names_what_to_install(tmp_path, monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(SystemExit):
        gradient_ratios.main(["--executor", "tcp://localhost:8786", "--output-dir", str(tmp_path / "out")])
    assert "pip install 'dask[distributed]'" in capsys.readouterr().err


def test_an_unreachable_scheduler_is_a_usage_error_not_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    def refuse(address, timeout):
        raise OSError(f"Timed out trying to connect to {address} after {timeout}")

    monkeypatch.setattr(distributed, "Client", refuse)
    out = tmp_path / "out"
    assert run_cli(lambda _: gradient_ratios.main([*TINY, "--executor", "tcp://127.0.0.1:9", "--output-dir",
                                                   str(out)])) == 2
    err = capsys.readouterr().err
    assert "--executor tcp://127.0.0.1:9: no Dask scheduler answers there" in err and "Traceback" not in err
