"""The sweeps' runs on a cluster engine: a local Dask cluster the test starts (a scheduler and two
single-thread worker processes) and submitit's local stand-in for Slurm give the numbers a run in this
process gives; the executor flags are checked before any work."""

from __future__ import annotations

import json

import pytest

from benchmarks import gradient_ratios
from benchmarks.machinery.common import run_cli

distributed = pytest.importorskip("distributed")

TINY = ["--strategies", "sqrt_in,legacy", "--seeds", "2", "--models", "blocks,ffno", "--width", "4", "--blocks", "2",
        "--modes", "2", "--size", "8", "--batch", "1", "--no-progress", "--device", "cpu"]


def measured(record):
    return [{k: v for k, v in run.items() if k != "seconds"} for run in record["runs"]]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert gradient_ratios.main([*TINY, "--jobs", "1", "--output-dir", str(out)]) == 0
    return json.loads((out / "gradient_ratios.json").read_text())


@pytest.mark.heavy
def test_a_dask_cluster_gives_the_local_runs_numbers(local_run, tmp_path) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        out = tmp_path / "dask"
        assert gradient_ratios.main([*TINY, "--executor", address, "--output-dir", str(out)]) == 0
        workers = len(cluster.scheduler_info["workers"])  # read while the cluster is up
    record = json.loads((out / "gradient_ratios.json").read_text())
    assert measured(record) == measured(local_run) and workers == 2
    assert record["spectral_layers"] == local_run["spectral_layers"]


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
