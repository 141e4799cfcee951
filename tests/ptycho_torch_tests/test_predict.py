"""``python -m ptycho_torch.predict``: a checkpoint and a scan file in, the object, its picture and its
metrics out; the same numbers as the training run's own test; bad input refused before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_data_files import hand_built, save
from test_measured import MODEL_FLAGS, simulated_files

from ptycho_torch import predict as predict_module
from ptycho_torch.predict import main as predict
from ptycho_torch.train import main as train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("trained")
    (train_file, test_file), config = simulated_files(tmp_path)
    run = tmp_path / "run"
    assert train(["--train-data", str(train_file), "--test-data", str(test_file), *MODEL_FLAGS,
                  "--output-dir", str(run)]) == 0
    return run, test_file, config


def test_predict_gives_the_training_runs_test_object_and_writes_three_files(trained, tmp_path) -> None:
    run, test_file, config = trained
    out = tmp_path / "pred"
    assert predict([str(run / "checkpoint.pt"), str(test_file), "--output-dir", str(out), "--batch-size", "7"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    trained_metrics = json.loads((run / "metrics.json").read_text())
    # the same model on the same patterns: equal up to float32 round-off (another batch size sums differently)
    assert metrics["reconstruction"] == pytest.approx(trained_metrics["reconstruction"], rel=1e-6)
    assert metrics["physics_loss"] == pytest.approx(trained_metrics["test"]["physics_loss"], rel=1e-6)
    assert metrics["patterns"] == config.patches_per_object and metrics["inference_seconds_per_pattern"] > 0
    with np.load(out / "object.npz") as ours, np.load(run / "object.npz") as theirs:
        assert np.allclose(ours["object"], theirs["object"], atol=1e-6)
    if (out / "object.png").exists():  # matplotlib installed
        assert (out / "object.png").read_bytes().startswith(b"\x89PNG")


def test_predict_on_a_scan_without_truth_writes_the_files_own_coordinates(trained, tmp_path) -> None:
    # without objectGuess the scan is moved to start at pixel 0; object.npz gives the file's coordinates back
    run, test_file, _ = trained
    with np.load(test_file) as arrays:
        untruthful = {k: arrays[k] for k in ("diff3d", "probeGuess")}
        untruthful.update(xcoords=arrays["xcoords"] + 37.25, ycoords=arrays["ycoords"] + 101.5)
    out = tmp_path / "pred"
    assert predict([str(run / "checkpoint.pt"), str(save(tmp_path, untruthful)), "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reconstruction"] is None and "no objectGuess or Y" in metrics["notes"][-1]
    with np.load(out / "object.npz") as written:
        assert written["object"].shape[0] == 1
        assert np.allclose(written["xcoords"], untruthful["xcoords"]) and np.allclose(written["ycoords"],
                                                                                       untruthful["ycoords"])
        # the object's pixel (0, 0) in the file's frame: a patch centre minus the origin is on the canvas
        row0, col0 = written["origin"]
        assert (row0, col0) == (np.floor(untruthful["ycoords"].min() - 8), np.floor(untruthful["xcoords"].min() - 8))


def test_predict_refuses_a_scan_of_another_probe_and_says_what_the_checkpoint_is(trained, tmp_path, capsys) -> None:
    run, test_file, _ = trained
    with np.load(test_file) as arrays:
        other = {k: arrays[k] for k in arrays.files}
    other["probeGuess"] = other["probeGuess"] * np.exp(0.3j * np.arange(16) / 16)[None, :].astype(np.complex64)
    out = tmp_path / "pred"
    assert predict([str(run / "checkpoint.pt"), str(save(tmp_path, other, "other.npz")), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "other.npz: probeGuess is not the probe the model was trained with (relative difference" in err
    assert "Traceback" not in err and not out.exists()
    # an unfinished run's checkpoint, and one from before the probe was kept: said, not refused
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    checkpoint.update(complete=False, epoch=1)
    del checkpoint["probe"]
    torch.save(checkpoint, tmp_path / "old.pt")
    assert predict([str(tmp_path / "old.pt"), str(test_file), "--output-dir", str(out), "--no-figure"]) == 0
    err = capsys.readouterr().err
    assert "a checkpoint of an unfinished run (epoch 1 of" in err and "predates keeping the training probe" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete_run"] is False and any("unfinished run" in note for note in metrics["notes"])


def test_predict_refuses_bad_input_before_any_work(trained, tmp_path, capsys) -> None:
    run, test_file, _ = trained
    checkpoint = str(run / "checkpoint.pt")
    cases = [
        ([str(run / "metrics.json"), str(test_file)], "is not a torch checkpoint (a zip archive); it starts with"),
        ([str(tmp_path / "none.pt"), str(test_file)], "no such file"),
        ([str(run), str(test_file)], f"is a directory: give {str(run / 'checkpoint.pt')!r}"),
        ([str(test_file), checkpoint], "is a NumPy .npz archive (a scan?), not a checkpoint: the checkpoint comes "
                                       "first"),
        ([checkpoint, str(save(tmp_path, hand_built(probeGuess=None), "bad.npz"))], "bad.npz: probeGuess: missing"),
        ([checkpoint, str(save(tmp_path, hand_built(diff3d=np.ones((9, 32, 32), np.float32),
                                                    probeGuess=np.ones((32, 32), np.complex64), objectGuess=None),
                                 "big.npz"))],
         "patterns of 32 px, but the model was trained on 16 px"),
        ([checkpoint, str(test_file), "--batch-size", "0"], "batch_size: Input should be greater than or equal to 1"),
    ]
    for argv, message in cases:
        out = tmp_path / "refused"
        assert predict([*argv, "--output-dir", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not (out / "object.npz").exists()
    out = tmp_path / "twice"
    assert predict([checkpoint, str(test_file), "--output-dir", str(out), "--no-figure"]) == 0
    assert predict([checkpoint, str(test_file), "--output-dir", str(out), "--no-figure"]) == 2
    assert "already holds a prediction" in capsys.readouterr().err
    assert predict([checkpoint, str(test_file), "--output-dir", str(out), "--no-figure", "--overwrite"]) == 0
    assert len(list(out.glob("replaced-*/object.npz"))) == 1  # the earlier one kept, aside


def test_the_python_api_reconstructs_in_three_calls_what_predict_writes(trained, tmp_path) -> None:
    from ptycho_torch import load_model, read_scan, reconstruct
    from ptycho_torch.training import CheckpointError

    run, test_file, _ = trained
    result = reconstruct(load_model(run / "checkpoint.pt"), read_scan(test_file))
    with np.load(run / "object.npz") as written:  # the training run's own reconstruction of its test scan
        assert np.allclose(result.object.numpy(), written["object"], atol=1e-6)
        assert np.allclose(result.coverage.numpy(), written["coverage"])
    assert len(result.positions) == len(result.patches) and result.scored()[0].metrics["ssim_amp"] is not None
    with pytest.raises(CheckpointError, match="is a directory"):
        load_model(run)
    other = read_scan(test_file)
    other.probe = other.probe * 1.1
    with pytest.raises(ValueError, match="probeGuess is not the probe the model was trained with"):
        reconstruct(load_model(run / "checkpoint.pt"), other)
    with pytest.raises(ValueError, match="batch_size"):
        reconstruct(load_model(run / "checkpoint.pt"), read_scan(test_file), batch_size=0)


def test_an_interrupted_prediction_writes_nothing(trained, tmp_path, monkeypatch, capsys) -> None:
    run, test_file, _ = trained

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(predict_module, "reconstruct", interrupted)
    out = tmp_path / "pred"
    assert predict([str(run / "checkpoint.pt"), str(test_file), "--output-dir", str(out)]) == 130
    assert "nothing was written" in capsys.readouterr().err and not list(out.glob("*.npz"))
