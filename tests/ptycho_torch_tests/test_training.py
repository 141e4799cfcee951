"""Physics-informed training: a falling loss, the CLI and its config, bad input (torchrun: test_resume.py)."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
import torch

import spectral_init as si
from ptycho_torch import GeneratorConfig, build_generator
from ptycho_torch.evaluation import METRIC_NAMES
from ptycho_torch.simulation import SimulationConfig
from ptycho_torch.train import main
from ptycho_torch.training import (
    DistributedContext,
    TrainingConfig,
    make_datasets,
    shard_indices,
    step_batches,
    train,
)

TINY_FLAGS = ["--N", "32", "--fno-width", "8", "--fno-modes", "4", "--fno-blocks", "2", "--fno-cnn-blocks", "1",
              "--batch-size", "8", "--nimgs-train", "1", "--nimgs-test", "1", "--device", "cpu",
              "--spectral-backend", "fallback", "--no-progress", "--no-figure"]


def tiny_config(**overrides) -> TrainingConfig:
    model = dict(N=32, C=1, fno_width=8, fno_modes=4, fno_blocks=2, fno_cnn_blocks=1, spectral_backend="fallback")
    model.update(overrides.pop("model", {}))
    data = overrides.pop("data", SimulationConfig(N=32))
    overrides.setdefault("loss_on", "patches")  # one object's 25 patches in several steps, not one
    overrides.setdefault("batch_size", 8)
    return TrainingConfig(model=GeneratorConfig(**model), data=data, device="cpu", **overrides)


@pytest.mark.parametrize("architecture", ["fno", "hybrid", "fno_vanilla", "ffno"])
def test_loss_falls_on_a_tiny_run(architecture: str) -> None:
    result = train(tiny_config(nepochs=4, model={"architecture": architecture, "spectral_init": "sqrt_in"}))
    assert len(result.epoch_losses) == 4 and len(result.step_losses) == 4 * 4  # 25 patches, batches of 8
    assert result.epoch_losses[-1] < 0.9 * result.epoch_losses[0]
    assert all(np.isfinite(v) for v in result.test.values())
    n_blocks = 3 if architecture == "hybrid" else 2  # hybrid: two encoder stages and the bottleneck
    assert len(result.participation["start"]) == len(result.participation["end"]) == n_blocks
    assert all(np.isfinite(v) and v > 0 for v in result.participation["start"])


def test_poisson_loss_runs_and_falls() -> None:
    result = train(tiny_config(nepochs=3, loss="poisson", data=SimulationConfig(N=32, nphotons=1e4)))
    assert result.epoch_losses[-1] < result.epoch_losses[0]


def test_shards_cover_the_epoch_evenly() -> None:
    shards = [shard_indices(25, epoch=1, seed=3, ctx=DistributedContext(rank, 2, rank)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 13
    assert set(torch.cat(shards).tolist()) == set(range(25))


def test_stitched_loss_steps_take_whole_objects_and_cover_each_epoch_once() -> None:
    """loss_on 'stitched': a step holds every patch of its objects (25 consecutive indices each), an
    epoch every object once, in an order that changes with the epoch; two ranks get as many steps."""
    config = tiny_config(loss_on="stitched", batch_size=40, data=SimulationConfig(N=32, nimgs_train=5))
    data = make_datasets(config)[0]
    epochs = [[s.indices for s in step_batches(data, config, epoch, DistributedContext())] for epoch in (0, 1)]
    for batches in epochs:
        assert [len(b) for b in batches] == [50, 50, 25]  # round(40 / 25) = 2 objects a step
        for batch in batches:
            starts = batch[::25]
            assert all(int(s) % 25 == 0 for s in starts)
            assert torch.equal(batch, (starts[:, None] + torch.arange(25)).flatten())
        assert sorted(torch.cat(batches).tolist()) == list(range(125))
    assert not torch.equal(torch.cat(epochs[0]), torch.cat(epochs[1]))
    ranks = [step_batches(data, config, 0, DistributedContext(rank, 2, rank)) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 2  # 3 objects a rank (one repeated to even the shards)


def test_patch_loss_keeps_the_batches_it_had() -> None:
    """loss_on 'patches' steps through the shuffled patches in batch_size slices, as before loss_on."""
    config = tiny_config()
    data = make_datasets(config)[0]
    order = shard_indices(25, 0, config.seed, DistributedContext())
    assert [s.indices.tolist() for s in step_batches(data, config, 0, DistributedContext())] == \
        [order[i : i + 8].tolist() for i in range(0, 25, 8)]


def test_the_stitched_loss_trains_and_falls() -> None:
    config = tiny_config(nepochs=6, loss_on="stitched", batch_size=25, lr=3e-3,
                         data=SimulationConfig(N=32, nimgs_train=2), model={"architecture": "ffno"})
    result = train(config)
    assert len(result.step_losses) == 6 * 2  # two objects, one a step
    assert result.epoch_losses[-1] < 0.9 * result.epoch_losses[0]
    assert all(np.isfinite(v) for v in result.test.values())


@pytest.mark.parametrize("architecture", ["fno", "ffno"])
def test_cli_writes_metrics_and_a_loadable_checkpoint(tmp_path, architecture) -> None:
    out = tmp_path / "run"
    flags = [f for f in TINY_FLAGS if f != "--no-figure"]
    assert main([*flags, "--nepochs", "2", "--spectral-init", "Xavier_Complex", "--output-dir", str(out),
                 "--architecture", architecture]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["model"]["spectral_init"]["strategy"] == "xavier-complex"
    assert metrics["config"]["model"]["architecture"] == architecture
    assert metrics["spectral_init"]["strategy"] == "xavier-complex"
    assert len(metrics["epoch_losses"]) == 2
    assert {"amplitude_mae", "phase_mae", "physics_loss"} <= set(metrics["test"])
    assert set(metrics["reconstruction"]) == set(METRIC_NAMES)  # the stitched test object's quality
    assert 0 <= metrics["reconstruction"]["mae_amp"] and metrics["reconstruction"]["ssim_amp"] <= 1
    if importlib.util.find_spec("matplotlib"):
        assert (out / "reconstruction.png").read_bytes().startswith(b"\x89PNG")
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    model = build_generator(TrainingConfig.model_validate(checkpoint["config"]).model)
    model.load_state_dict(checkpoint["model_state"])
    assert not (out / "metrics.json.tmp").exists()


@pytest.mark.parametrize(("loss_on", "train_label", "test_label"), [
    ("patches", "train loss", "test loss"),
    # the stitched training loss and the per-patch test loss differ by scope (0.00007 against 0.047 for
    # the same patches): never printed side by side as if comparable
    ("stitched", r"train loss \(stitched\)", r"test loss \(per patch\)"),
])
def test_a_log_gets_one_line_per_epoch_and_metrics_record_threads_and_test_losses(tmp_path, capsys, loss_on,
                                                                                   train_label, test_label) -> None:
    """With --test-each-epoch the epoch's line (stderr is no terminal under pytest) has the test loss too,
    each loss named with its scope where the two differ."""
    out = tmp_path / "run"
    flags = [f for f in TINY_FLAGS if f != "--no-progress"]
    assert main([*flags, "--nepochs", "2", "--test-each-epoch", "--threads", "1", "--loss-on", loss_on,
                 "--output-dir", str(out)]) == 0
    captured = capsys.readouterr()
    err = captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["loss_scopes"] == {"train": loss_on, "test": "patches"}
    tests = metrics["epoch_test_losses"]
    assert len(tests) == 2 and tests[-1] == pytest.approx(metrics["test"]["physics_loss"], rel=1e-6)
    for epoch, (train_loss, test_loss) in enumerate(zip(metrics["epoch_losses"], tests), 1):
        assert re.search(rf"^epoch {epoch}/2: {train_label} {train_loss:.6g}, {test_label} {test_loss:.6g}, "
                         r"[0-9.]+ s$", err, re.MULTILINE), err
    scope = "" if loss_on == "patches" else " (per patch)"
    assert f"test: physics loss{scope} " in captured.out
    threads = metrics["threads"]
    assert threads["torch_threads"] == threads["requested"] == 1
    assert not (out / "reconstruction.png").exists()  # --no-figure
    assert {"load_average_start", "load_average_end"} <= set(threads)


def test_an_object_that_cannot_be_scored_leaves_the_run_and_its_other_results(tmp_path, monkeypatch) -> None:
    import ptycho_torch.training.loop as training_module

    def unscorable(*args, **kwargs):
        raise ValueError("the covered pixels hold no fully covered box")

    monkeypatch.setattr(training_module, "evaluate_objects", unscorable)
    flags = [f for f in TINY_FLAGS if f != "--no-figure"]
    with pytest.warns(UserWarning, match="cannot be scored"):
        assert main([*flags, "--nepochs", "1", "--output-dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["reconstruction"].values()) == {None} and metrics["test"]["physics_loss"] > 0
    assert (tmp_path / "reconstruction.png").exists()  # the object alone, as for a scan without truth


def test_config_file_with_flags_overriding(tmp_path) -> None:
    config = tmp_path / "train.toml"
    config.write_text(
        'nepochs = 3\nlr = 0.002\n[model]\nspectral_init = "legacy"\nfno_width = 8\nfno_modes = 4\n'
        'fno_blocks = 2\nfno_cnn_blocks = 1\n[data]\nN = 32\n'
    )
    out = tmp_path / "run"
    argv = ["--config", str(config), "--nepochs", "1", "--spectral-init", "kaiming-complex",
            "--device", "cpu", "--spectral-backend", "fallback", "--no-progress", "--output-dir", str(out)]
    assert main(argv) == 0
    saved = json.loads((out / "metrics.json").read_text())["config"]
    assert saved["nepochs"] == 1 and saved["lr"] == 0.002
    assert saved["model"]["spectral_init"]["strategy"] == "kaiming-complex"
    assert saved["model"]["N"] == saved["data"]["N"] == 32 and saved["model"]["C"] == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--architecture", "unet"], "model.architecture"),
        (["--spectral-init", "xavier"], "did you mean 'xavier-complex'"),
        (["--N", "33"], "N must be a positive even size"),
        (["--fno-modes", "20"], "fno_modes must be <= N // 2 = 16"),
        (["--gridsize", "2"], "gridsize must be 1"),
        (["--loss", "mse"], "loss"),
        (["--spectral-init", "[1, 2]"], "expected a strategy name or a JSON object of settings fields; got [1, 2]"),
        (["--spectral-init", '{"strategy": "legacy", "gain": -1}'], "gain"),
        (["--allow-config-change"], "--allow-config-change has no effect without --resume"),
        (["--lr-scaling", "mup"], "lr_scaling = 'mup' scales the learning rate from the mup strategy's base_modes"),
        (["--lr-scaling", "fast"], "lr_scaling"),
        (["--spectral-init", '{"strategy": "mup"}'], "base_modes"),
        (["--spectral-init", '{"strategy": "mup", "params": {"base_modes": 0}}'], "base_modes must be an integer"),
    ],
)
def test_cli_bad_input_names_the_problem_and_writes_nothing(tmp_path, capsys, extra, message) -> None:
    out = tmp_path / "run"
    assert main([*TINY_FLAGS, "--nepochs", "1", "--output-dir", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("value, message", [("calibrated", "add --calibrate"), ("Calibrated", "add --calibrate"),
                                            ('{"strategy": "legacy",', "not a JSON object"),
                                            ('{"strategy": "legacy"} x', "not a JSON object")])
def test_cli_spectral_init_flag_refuses_with_a_hint(tmp_path, capsys, value, message) -> None:
    out = tmp_path / "run"
    assert main([*TINY_FLAGS, "--output-dir", str(out), "--spectral-init", value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


MUP_FLAGS = ["--spectral-init", '{"strategy": "mup", "params": {"base_modes": 2}}', "--lr-scaling", "mup"]


def test_mup_trains_with_the_spectral_weights_at_their_scaled_rate_and_resumes_only_as_mup(tmp_path, capsys) -> None:
    import math

    from spectral_init.strategies.mup import mup_learning_rate_factor

    out = tmp_path / "run"
    assert main([*TINY_FLAGS, "--nepochs", "1", "--lr", "0.002", "--output-dir", str(out), *MUP_FLAGS]) == 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    config = TrainingConfig.model_validate(checkpoint["config"])
    model = build_generator(config.model)
    rates = sorted({g["lr"] for g in checkpoint["optimizer_state"]["param_groups"]})
    report = si.initialize_(model, config.model.spectral_init)  # the weights' geometries, as the run drew them
    expected = {0.002 * mup_learning_rate_factor(w.geometry, 2) for w in report.weights}
    assert rates == sorted({*expected, 0.002}) and all(r < 0.002 for r in expected)
    assert all(math.isfinite(v) for v in json.loads((out / "metrics.json").read_text())["epoch_losses"])
    capsys.readouterr()
    again = [*TINY_FLAGS, "--nepochs", "2", "--output-dir", str(out), "--resume", "--allow-config-change"]
    assert main([*again, "--spectral-init", '{"strategy": "mup", "params": {"base_modes": 2}}']) == 2
    assert "used lr_scaling 'mup', this one 'standard'" in capsys.readouterr().err
    assert main([*again, *MUP_FLAGS]) == 0


def test_cli_takes_spectral_init_settings_as_json(tmp_path) -> None:
    out = tmp_path / "run"
    argv = [*TINY_FLAGS, "--nepochs", "1", "--output-dir", str(out), "--calibrate",
            "--spectral-init", '{"strategy": "legacy", "gain": 2}']
    assert main(argv) == 0
    spec = json.loads((out / "metrics.json").read_text())["config"]["model"]["spectral_init"]
    assert (spec["strategy"], spec["gain"], spec["calibrate"]) == ("legacy", 2.0, True)


def test_cli_bad_probe_files(tmp_path, capsys) -> None:
    no_key = tmp_path / "nokey.npz"
    np.savez(no_key, probe=np.ones((32, 32), np.complex64))
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, probeGuess=np.ones((16, 16), np.complex64))
    for path, message in ((no_key, "no 'probeGuess'"), (wrong_shape, "expected (32, 32)")):
        out = tmp_path / path.stem
        assert main([*TINY_FLAGS, "--nepochs", "1", "--probe", str(path), "--output-dir", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()


def test_cli_output_dir_that_is_a_file(tmp_path, capsys) -> None:
    afile = tmp_path / "file"
    afile.write_text("keep me")
    assert main([*TINY_FLAGS, "--output-dir", str(afile)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert afile.read_text() == "keep me"


def test_cli_bad_config_file(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("nepochs = \n")
    assert main(["--config", str(bad), "--output-dir", str(tmp_path / "o")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes("nepochs = 1 # café\n".encode("latin-1"))
    assert main(["--config", str(latin1), "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{str(latin1)!r} is not UTF-8 text" in err and "Traceback" not in err
    typo = tmp_path / "typo.json"
    typo.write_text('{"nepoch": 3, "model": {"fno_mode": 4}, "training": {}}')
    assert main(["--config", str(typo), "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    # the closest known key at each level, or the keys allowed there
    assert "nepoch: Extra inputs are not permitted; did you mean 'nepochs'?" in err
    assert "model.fno_mode: Extra inputs are not permitted; did you mean 'fno_modes'?" in err
    assert "training: Extra inputs are not permitted; allowed here: model, data, files, nepochs," in err


@pytest.mark.parametrize(("architecture", "layers"), [("fno", {"SpectralConv2d": 2}),
                                                       ("ffno", {"FactorizedSpectralConv2d": 1})])
def test_metrics_name_the_spectral_layers_that_ran(tmp_path, architecture, layers) -> None:
    flags = [f for f in TINY_FLAGS if f not in ("--spectral-backend", "fallback")]  # the default: auto
    assert main([*flags, "--nepochs", "1", "--architecture", architecture, "--output-dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["spectral_layers"] == layers


def test_sizes_are_given_once() -> None:
    from_data = TrainingConfig(data=SimulationConfig(N=32))
    assert (from_data.model.N, from_data.model.C) == (32, 1)
    from_model = TrainingConfig(model={"N": 32, "fno_modes": 4})
    assert from_model.data.N == 32
    with pytest.raises(ValueError, match=r"model.N \(48\) must equal data.N \(32\)"):
        TrainingConfig(model={"N": 48}, data={"N": 32})


def test_default_generator_takes_what_training_feeds_it() -> None:
    config = GeneratorConfig()
    assert config.C == TrainingConfig().data.gridsize ** 2
    y = build_generator(config)(torch.randn(2, 1, config.N, config.N))
    assert y.shape[0] == 2 and y.shape[1:3] == (config.N, config.N)


def test_evaluate_leaves_the_models_mode_as_it_was() -> None:
    from ptycho_torch.simulation import simulate_dataset
    from ptycho_torch.training import evaluate

    config = tiny_config()
    data = simulate_dataset(config.data, 1, seed=0)
    model = build_generator(config.model)
    for training in (False, True):
        model.train(training)
        evaluate(model, data, config, torch.device("cpu"))
        assert all(m.training == training for m in model.modules())


def _config_leaves(model: type, prefix: str = ""):
    """(flag, field) for every field of ``model`` that is not itself a table, nested tables walked."""
    from typing import Annotated, Union, get_args, get_origin

    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        flag = prefix + name.replace("_", "-")
        annotation = field.annotation
        members = get_args(annotation) if get_origin(annotation) in (Union, type(int | None)) else (annotation,)
        members = [get_args(m)[0] if get_origin(m) is Annotated else m for m in members]
        tables = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if tables:
            yield from _config_leaves(tables[0], flag + ".")
        else:
            yield flag, field


def test_every_config_field_is_a_flag_with_its_description_allowed_values_and_default() -> None:
    """The flags come from TrainingConfig: a field added there is a flag, with the field's own words."""
    from typing import Literal, get_args, get_origin

    from ptycho_torch.train import build_parser

    parser = build_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
    by_flag = {name: action for action in parser._actions for name in action.option_strings}
    leaves = dict(_config_leaves(TrainingConfig))
    assert {"data.N", "model.fno-width", "files.train-path", "model.spectral-init.gain", "nepochs"} <= set(leaves)
    for flag, field in leaves.items():
        action = by_flag[f"--{flag}"]
        assert field.description and field.description.split()[0] in action.help, flag
        literal = next((a for a in get_args(field.annotation) or (field.annotation,) if get_origin(a) is Literal),
                       None)
        if literal is not None:  # a list of choices shows them inside list[…]
            choices = "{" + ",".join(get_args(literal)) + "}"
            assert action.metavar == (f"list[{choices}]" if get_origin(field.annotation) is list else choices), flag
    assert by_flag["--nepochs"].help.endswith("(default: 5)")
    assert by_flag["--loss"].metavar == "{mae,poisson}"


def test_the_older_flag_names_set_the_same_fields_as_the_field_paths(tmp_path) -> None:
    from ptycho_torch.train import _parser_and_fields, assemble_config
    from ptycho_torch.training import resolved_spectral_init

    parser, fields = _parser_and_fields()
    out = ["--output-dir", str(tmp_path / "o")]
    short = ["--N", "32", "--fno-modes", "4", "--torch-epochs", "2", "--torch-infer-batch-size", "3",
             "--probe-defocus", "1.5", "--spectral-init", "legacy", "--calibrate"]
    dotted = ["--data.N", "32", "--model.fno-modes", "4", "--nepochs", "2", "--infer-batch-size", "3",
              "--data.probe-defocus", "1.5", "--model.spectral-init.strategy", "legacy",
              "--model.spectral-init.calibrate"]
    a, b = (assemble_config(parser.parse_args([*out, *argv]), fields) for argv in (short, dotted))
    assert a == b
    assert (a.data.N, a.model.fno_modes, a.nepochs, a.infer_batch_size, a.data.probe_defocus) == (32, 4, 2, 3, 1.5)
    assert resolved_spectral_init(a)["strategy"] == "legacy" and resolved_spectral_init(a)["calibrate"] is True


def test_flags_complete_a_config_files_tables_field_by_field(tmp_path) -> None:
    from ptycho_torch.train import _parser_and_fields, assemble_config
    from ptycho_torch.training import resolved_spectral_init

    config = tmp_path / "train.toml"
    config.write_text('nepochs = 3\n[model]\nspectral_init = "legacy"\nfno_modes = 4\n[data]\nN = 32\n')
    parser, fields = _parser_and_fields()
    args = parser.parse_args(["--output-dir", str(tmp_path / "o"), "--config", str(config),
                              "--model.spectral-init.gain", "2", "--fno-width", "8"])
    merged = assemble_config(args, fields)
    assert (merged.nepochs, merged.model.fno_modes, merged.model.fno_width, merged.data.N) == (3, 4, 8, 32)
    assert (resolved_spectral_init(merged)["strategy"], resolved_spectral_init(merged)["gain"]) == ("legacy", 2.0)


@pytest.mark.parametrize("N, object_size, offset", [(16, None, None), (16, 40, 3), (32, 64, 1000), (8, 8, 1)])
def test_patches_per_object_is_what_the_simulation_yields(N, object_size, offset) -> None:
    from ptycho_torch.simulation import SimulationConfig
    from ptycho_torch.simulation.dataset import simulate_dataset

    config = SimulationConfig(N=N, object_size=object_size, offset=offset)
    assert len(simulate_dataset(config, 1, seed=0)) == config.patches_per_object


def test_cli_warns_when_the_scan_gives_fewer_patterns_than_a_batch(tmp_path, capsys) -> None:
    assert main([*TINY_FLAGS, "--nepochs", "1", "--output-dir", str(tmp_path / "few"), "--offset", "1000"]) == 0
    err = capsys.readouterr().err
    assert "gives 1 patch per object, 1 training pattern in all: fewer than --batch-size 8" in err
    assert main([*TINY_FLAGS, "--nepochs", "1", "--output-dir", str(tmp_path / "enough")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_scan_larger_than_a_batch_is_stitched_in_tiles_that_move() -> None:
    """169 patterns an object, batches of 16: tiles of 4 × 4 neighbouring positions (edges joined up to
    5 wide), each pattern once an epoch, the positions those of its patterns, and the tile edges not the
    same in every epoch."""
    config = tiny_config(loss_on="stitched", batch_size=16, model={"N": 16},
                         data=SimulationConfig(N=16, nimgs_train=2, object_size=64, offset=4))
    data = make_datasets(config)[0]
    per_object, positions = config.data.patches_per_object, config.data.scan_positions
    tilings = set()
    for epoch in range(8):
        steps = step_batches(data, config, epoch, DistributedContext())
        assert sorted(torch.cat([s.indices for s in steps]).tolist()) == list(range(2 * per_object))
        for s in steps:
            assert len(s.indices) <= 25 and len({int(i) // per_object for i in s.indices}) == 1  # one object
            assert s.positions == tuple(positions[int(i) % per_object] for i in s.indices)
        tilings.add(frozenset(frozenset(s.indices.tolist()) for s in steps))
    assert len(tilings) > 1


def test_training_on_tiles_runs_and_its_loss_falls() -> None:
    config = tiny_config(nepochs=3, loss_on="stitched", batch_size=16, lr=3e-3,  # a 9 × 9 scan: tiles of 4 × 4
                         data=SimulationConfig(N=16, object_size=48, offset=4), model={"N": 16, "fno_modes": 4})
    result = train(config)
    assert result.epoch_losses[-1] < result.epoch_losses[0] and all(np.isfinite(result.step_losses))


def test_the_step_total_counts_each_epochs_own_tiling() -> None:
    """The tiles move every epoch, and with them the step count (here 4, 9, 4, 9, …): the total the progress
    bar is given is the number of steps the run takes, not epoch 0's count times the epochs."""
    config = tiny_config(nepochs=4, loss_on="stitched", batch_size=16, lr=3e-3,
                         data=SimulationConfig(N=16, object_size=48, offset=4), model={"N": 16, "fno_modes": 4})
    data = make_datasets(config)[0]
    counts = [len(step_batches(data, config, epoch, DistributedContext())) for epoch in range(config.nepochs)]
    assert len(set(counts)) > 1  # else this test could not tell the two totals apart
    seen: list[tuple[int, int]] = []
    train(config, on_step=lambda epoch, step, total, loss: seen.append((step, total)))
    assert [step for step, _ in seen] == list(range(1, sum(counts) + 1))
    assert {total for _, total in seen} == {sum(counts)}


def test_the_finite_check_names_the_gradient_or_says_the_norm_overflows() -> None:
    from ptycho_torch.training import DivergenceError, check_finite

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    check_finite(0.5, model, 1, 1)  # finite: nothing
    model[1].bias.grad[0] = float("nan")
    with pytest.raises(DivergenceError, match="the gradient of 1.bias has non-finite values"):
        check_finite(0.5, model, 1, 1)
    for p in model.parameters():
        p.grad = torch.full_like(p, 3e38)  # each finite in float32, their norm is not
    with pytest.raises(DivergenceError, match="total norm overflows"):
        check_finite(0.5, model, 2, 7)
    with pytest.raises(DivergenceError, match="the loss is inf"):
        check_finite(float("inf"), model, 2, 7)


def test_predict_patches_gives_predicts_patches_in_any_batch_size_and_keeps_the_models_mode() -> None:
    """The forward passes alone: the patches predict returns (whose loss it leaves out), the same in
    batches of 3 as of 8 (eval mode: no batch statistics), the model left in the mode it was in."""
    from ptycho_torch.training import predict, predict_patches

    config = tiny_config()
    data, _ = make_datasets(config)
    model = build_generator(config.model).train()
    expected, _ = predict(model, data, config, torch.device("cpu"))
    for batch in (3, 8, len(data) + 5):
        got = predict_patches(model, data, batch, torch.device("cpu"))
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert model.training and got.shape == (len(data), 32, 32) and got.is_complex()
