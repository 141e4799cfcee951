"""Training on scans from files: what the simulation writes in the reference format trains end to end, a
file without truth still gives its object, and a malformed file or a simulation setting beside files is
refused before any work (exit 2, the file and key named)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data_files import BAD, MUTATIONS, hand_built, save

from ptycho_torch.data.measured import DataFiles, datasets_from_files, lattice_step
from ptycho_torch.data.scan_files import write_scan_file
from ptycho_torch.simulation import SimulationConfig, simulate_dataset
from ptycho_torch.train import main

MODEL_FLAGS = ["--architecture", "ffno", "--fno-width", "4", "--fno-modes", "4", "--fno-blocks", "1", "--batch-size",
               "4", "--nepochs", "1", "--device", "cpu", "--no-progress", "--no-figure", "--threads", "1"]


def simulated_files(tmp_path, scan="grid"):
    config = SimulationConfig(N=16, object_size=48, scan=scan)
    paths = []
    for name, seed in (("train", 0), ("test", 1)):
        data = simulate_dataset(config, 1, seed=seed)
        path = tmp_path / f"{name}.npz"
        write_scan_file(path, data.amplitudes, data.probe, config.scan_positions, patch_truth=data.objects,
                        metadata={"intensity_scale": data.intensity_scale})
        paths.append(path)
    return paths, config


def test_simulated_files_train_to_the_same_data_as_the_simulation(tmp_path) -> None:
    (train, test), config = simulated_files(tmp_path, scan="random")
    train_set, test_set = datasets_from_files(DataFiles(train_path=train, test_path=test))
    simulated = simulate_dataset(config, 1, seed=0)
    assert torch.equal(train_set.amplitudes, simulated.amplitudes) and torch.equal(train_set.objects, simulated.objects)
    assert np.allclose(train_set.positions, config.scan_positions) and train_set.canvas == (47, 47)
    # counts back from the file's own scale: the simulation's Poisson counts, to float32 round-off
    assert torch.allclose(train_set.counts, simulated.counts, rtol=1e-5, atol=1e-3)
    assert train_set.intensity_scale == simulated.intensity_scale and test_set.intensity_scale != 0


def test_the_cli_trains_on_files_and_writes_the_object(tmp_path, capsys) -> None:
    (train, test), config = simulated_files(tmp_path)
    out = tmp_path / "run"
    assert main(["--train-data", str(train), "--test-data", str(test), *MODEL_FLAGS, "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_files"]["train_patterns"] == config.patches_per_object and metrics["config"]["data"]["N"] == 16
    assert all(metrics["reconstruction"][k] is not None for k in ("mae_amp", "ssim_amp", "lattice_amp"))
    with np.load(out / "object.npz") as written:
        assert written["object"].shape == (1, config.canvas, config.canvas) and written["object"].dtype == np.complex64
        assert np.allclose(written["xcoords"] - 8, [c for _, c in config.scan_positions])
        assert (written["coverage"] > 0).mean() > 0.5


def test_a_file_without_truth_gives_its_object_and_says_the_metrics_are_skipped(tmp_path, capsys) -> None:
    path = save(tmp_path, hand_built(objectGuess=None))
    out = tmp_path / "run"
    assert main(["--train-data", str(path), *MODEL_FLAGS, "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert "tested on the training scan itself" in err and "reconstruction metrics are skipped" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(v is None for v in metrics["reconstruction"].values())
    with np.load(out / "object.npz") as written:
        assert written["object"].shape == (1, 24, 24)  # 3 × 3 centres 4 px apart, patches 16 px


@pytest.mark.parametrize("case", ["missing probe", "NaN amplitude", "counts as floats", "off the object",
                                  "lengths differ", "probe of another size"])
def test_a_malformed_file_exits_2_naming_file_and_key_before_any_work(tmp_path, capsys, case) -> None:
    override, key, problem = BAD[case]
    path = save(tmp_path, hand_built(**override))
    out = tmp_path / "run"
    assert main(["--train-data", str(path), *MODEL_FLAGS, "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {key}: " in err and problem in err and "Traceback" not in err
    # the file's problem, said as the file's: not as a field of the configuration
    assert err.startswith(f"error: data file {path}: {key}: ") and "config:" not in err
    assert not out.exists()


def test_simulation_settings_beside_files_are_refused(tmp_path, capsys) -> None:
    path = save(tmp_path, hand_built())
    assert main(["--train-data", str(path), "--nimgs-train", "3", *MODEL_FLAGS, "--output-dir",
                 str(tmp_path / "run")]) == 2
    assert "data.nimgs_train: simulation settings have no effect with files" in capsys.readouterr().err
    assert main(["--train-data", str(path), "--N", "32", *MODEL_FLAGS, "--output-dir", str(tmp_path / "run")]) == 2
    assert "must equal the files' pattern size (16)" in capsys.readouterr().err


def test_lattice_step_is_the_scans_spacing() -> None:
    assert lattice_step([(r * 4.0, c * 4.0) for r in range(5) for c in range(5)]) == 4
    assert lattice_step([(0.0, 0.0)]) == 1


def test_the_simulation_command_writes_the_reference_format(tmp_path, capsys) -> None:
    from ptycho_torch.simulation import lines_object
    from ptycho_torch.simulation.__main__ import main as simulate

    path = tmp_path / "spiral.npz"
    assert simulate(["--output", str(path), "--N", "16", "--object-size", "48", "--scan", "spiral", "--seed", "7"]) == 0
    with np.load(path) as arrays:  # the contract's keys, shapes and dtypes, as the reference's loader expects
        n = arrays["xcoords"].shape[0]
        assert arrays["diff3d"].shape == (n, 16, 16) and arrays["diff3d"].dtype == np.float32
        assert arrays["probeGuess"].dtype == np.complex64 and arrays["objectGuess"].shape == (48, 48)
        assert arrays["xcoords"].dtype == arrays["ycoords"].dtype == np.float64 and arrays["Y"].dtype == np.complex64
        assert np.array_equal(arrays["objectGuess"], lines_object(48, 100, seed=7).numpy())
    config = SimulationConfig(N=16, object_size=48, scan="spiral")
    data = simulate_dataset(config, 1, seed=7)
    from ptycho_torch.data.scan_files import read_scan_file

    scan = read_scan_file(path)
    assert torch.equal(scan.amplitudes, data.amplitudes[:, 0]) and np.allclose(scan.positions, config.scan_positions)
    assert scan.metadata["intensity_scale"] == data.intensity_scale and scan.metadata["simulation"]["scan"] == "spiral"
    # and it trains here
    assert main(["--train-data", str(path), *MODEL_FLAGS, "--output-dir", str(tmp_path / "run")]) == 0
    # an existing file is kept unless --overwrite
    assert simulate(["--output", str(path), "--N", "16"]) == 2 and "exists" in capsys.readouterr().err


def test_the_simulation_command_scans_objects_of_the_kinds_asked(tmp_path, capsys) -> None:
    from ptycho_torch.simulation import object_of_kind
    from ptycho_torch.simulation.__main__ import main as simulate

    path = tmp_path / "unseen.npz"
    assert simulate(["--output", str(path), "--N", "16", "--object-size", "32", "--object-kinds", "siemens, natural",
                     "--seed", "3"]) == 0
    with np.load(path) as arrays:
        assert np.array_equal(arrays["objectGuess"], object_of_kind("siemens", 32, 3).numpy())
    bad = tmp_path / "bad.npz"
    assert simulate(["--output", str(bad), "--N", "16", "--object-kinds", "siemens,cat"]) == 2
    assert "object_kinds.1: Input should be 'lines', 'siemens', 'smooth' or 'natural'" in capsys.readouterr().err
    assert not bad.exists()


class ReachedTraining(Exception):
    """Raised in place of training: the file passed every check."""


@given(key=st.sampled_from(["diff3d", "probeGuess", "xcoords", "ycoords", "objectGuess", "Y"]),
       mutations=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=2), seed=st.integers(0, 100))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_cli_refuses_any_mutated_file_with_exit_2_or_takes_it(tmp_path_factory, monkeypatch, capsys, key,
                                                                   mutations, seed) -> None:
    """A mutated file is refused by the command (exit 2, the file named, no traceback, nothing written) or
    passes every check and reaches training; it never crashes the command before that."""
    import ptycho_torch.train as train_module

    def reached(*args, **kwargs):
        raise ReachedTraining

    monkeypatch.setattr(train_module, "train", reached)
    rng = np.random.default_rng(seed)
    arrays = hand_built(Y=np.ones((9, 16, 16), np.complex64))
    for mutation in mutations:
        if arrays.get(key) is None:  # dropped already
            break
        try:
            arrays[key] = MUTATIONS[mutation](arrays[key], rng)
        except (TypeError, ValueError):  # a mutation that makes no sense for this array
            continue
    tmp_path = tmp_path_factory.mktemp("cli-fuzz")
    path = save(tmp_path, {k: v for k, v in arrays.items() if v is not None})
    out = tmp_path / "run"
    try:
        code = main(["--train-data", str(path), *MODEL_FLAGS, "--output-dir", str(out)])
    except ReachedTraining:
        return
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "Traceback" not in err and not (out / "metrics.json").exists()
