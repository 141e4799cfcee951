"""The ``spectral-init`` command."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from reference_table import FORMULAS

from spectral_init.cli import main


def test_list_prints_every_strategy_with_its_formula(capsys) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "E|w|²", "distribution"]
    for name, formula in FORMULAS.items():
        row = next(line for line in lines if line.startswith(name + " "))
        assert formula in row


def test_list_json(capsys) -> None:
    assert main(["list", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert {name: entries[name]["second_moment"] for name in FORMULAS} == FORMULAS
    assert entries["fno-uniform"]["distribution"].startswith("Re, Im each")


def test_describe(capsys) -> None:
    assert main(["describe", "XAVIER_COMPLEX", "--json", "--gain", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "xavier-complex"
    example = next(e for e in data["examples"] if (e["in"], e["out"]) == (32, 16))
    assert example["second_moment"] == pytest.approx(2 * 4 / 48)
    assert main(["describe", "legacy"]) == 0
    assert "gain²/(in·out)²" in capsys.readouterr().out


def test_describe_shows_examples_for_a_strategy_with_parameters(capsys) -> None:
    assert main(["describe", "edge-of-chaos", "--json"]) == 0
    examples = json.loads(capsys.readouterr().out)["examples"]
    square = next(e for e in examples if (e["in"], e["out"]) == (32, 32))
    # ReLU, 64 × 64 input, 12 × 12 modes (the defaults): E|w|²·in = 2.87 (README, Strategies)
    assert square["modes"] == [12, 12] and square["second_moment"] * 32 == pytest.approx(2.87, abs=0.005)
    assert main(["describe", "edge-of-chaos"]) == 0
    assert "in=32   out=32   modes=12×12 gain=1: E|w|² = 0.08955" in capsys.readouterr().out


def test_describe_mup_at_an_example_base_or_the_one_given(capsys) -> None:
    import math

    assert main(["describe", "mup", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    square = next(e for e in data["examples"] if (e["in"], e["out"]) == (32, 32))
    # base 8 per axis of 2 (N_b = 64) against 12 × 12 = 144 kept modes
    assert data["example_params"] == {"base_modes": 8}
    assert square["second_moment"] == pytest.approx(math.log(64) / math.log(144) / 32, rel=1e-12)
    assert main(["describe", "mup", "--params", '{"base_modes": [12, 12]}', "--json"]) == 0
    at_base = json.loads(capsys.readouterr().out)["examples"]
    assert next(e for e in at_base if e["in"] == 32)["second_moment"] == pytest.approx(1 / 32, rel=1e-12)
    for bad, said in (('{"base_modes": 0}', "base_modes must be an integer"), ("[8]", "JSON object"),
                      ("{8", "not JSON")):
        assert main(["describe", "mup", "--params", bad]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err


def test_schema(capsys) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["strategy"]["default"] == "sqrt_in"
    assert schema["properties"]["gain"]["exclusiveMinimum"] == 0


def test_describe_unknown_exits_2_with_suggestion(capsys) -> None:
    assert main(["describe", "kaiming"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'kaiming-complex'" in err


@pytest.mark.skipif(shutil.which("spectral-init") is None, reason="package not installed (console script missing)")
def test_console_script() -> None:
    out = subprocess.run(["spectral-init", "list"], check=True, capture_output=True, text=True).stdout
    assert all(name in out for name in FORMULAS)


@pytest.mark.skipif(shutil.which("spectral-init") is None, reason="package not installed (console script missing)")
def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`spectral-init list --json | head`: the pipe closes before the output is written."""
    proc = subprocess.Popen(["spectral-init", "list", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 1) and "Traceback" not in err and "BrokenPipe" not in err


def test_list_fits_100_columns_and_points_to_describe(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "spectral-init describe NAME" in out


def test_version(capsys) -> None:
    import spectral_init

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"spectral-init {spectral_init.__version__}"


def test_every_option_of_every_command_has_help() -> None:
    import argparse

    from spectral_init.cli import build_parser

    parsers = [build_parser()]
    for action in parsers[0]._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    for parser in parsers:
        for action in parser._actions:
            assert action.help, f"{parser.prog}: {action.option_strings or action.dest} has no help"


def test_no_commands_help_shows_raw_rest_markup() -> None:
    # the module docstrings that describe the commands are reST (``literal``, :func:`name`); --help and
    # the CLI page built from it show plain text
    import importlib

    from benchmarks.replot import benchmark_modules

    modules = ["spectral_init.cli", "ptycho_torch.train", "ptycho_torch.predict", "ptycho_torch.simulation.__main__",
               "benchmarks.replot", *(m.__name__ for m in benchmark_modules())]
    for name in modules:
        text = importlib.import_module(name).build_parser().format_help()
        assert "``" not in text and ":func:`" not in text and ":class:`" not in text, name


def test_a_check_across_fields_is_said_without_a_made_up_field_name() -> None:
    # before: "config: N must be …", as though a field named config were wrong
    import pydantic

    from ptycho_torch.simulation import SimulationConfig
    from spectral_init.cli.usage import format_validation_error

    with pytest.raises(pydantic.ValidationError) as info:
        SimulationConfig(N=7)
    assert format_validation_error(info.value, "simulation settings").splitlines()[1].startswith("  N must be")
