"""SpectralInitSettings: defaults, env vars, files, precedence, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest
import torch

import spectral_init as si
from spectral_init import SpectralInitSettings
from spectral_init.settings import SpectralInitSpec, resolve_settings
from spectral_init.spectral_initializer import init_spectral_weight_


def test_defaults() -> None:
    s = SpectralInitSettings()
    assert (s.strategy, s.gain, s.seed, s.params) == ("sqrt_in", 1.0, None, {})


def test_env_vars_apply_and_explicit_arguments_win(monkeypatch) -> None:
    monkeypatch.setenv("SPECTRAL_INIT_STRATEGY", "Xavier_Complex")
    monkeypatch.setenv("SPECTRAL_INIT_GAIN", "2.5")
    monkeypatch.setenv("SPECTRAL_INIT_SEED", "11")
    s = SpectralInitSettings()
    assert (s.strategy, s.gain, s.seed) == ("xavier-complex", 2.5, 11)
    explicit = SpectralInitSettings(strategy="legacy", gain=0.5)
    assert (explicit.strategy, explicit.gain, explicit.seed) == ("legacy", 0.5, 11)


def test_default_is_read_when_resolved_not_at_import(monkeypatch) -> None:
    assert resolve_settings(None).strategy == "sqrt_in"
    monkeypatch.setenv("SPECTRAL_INIT_STRATEGY", "kaiming-complex")
    assert resolve_settings(None).strategy == "kaiming-complex"


@pytest.mark.parametrize(
    "var, value, field",
    [
        ("SPECTRAL_INIT_STRATEGY", "xavier", "strategy"),
        ("SPECTRAL_INIT_GAIN", "abc", "gain"),
        ("SPECTRAL_INIT_GAIN", "-1", "gain"),
        ("SPECTRAL_INIT_GAIN", "nan", "gain"),
        ("SPECTRAL_INIT_SEED", "1.5", "seed"),
        ("SPECTRAL_INIT_SEED", "-3", "seed"),
    ],
)
def test_malformed_env_var_names_the_field(monkeypatch, var: str, value: str, field: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(pydantic.ValidationError) as info:
        SpectralInitSettings()
    assert info.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize("gain", [0, -1.0, float("nan"), float("inf"), float("-inf"), "big", None])
def test_invalid_gain_rejected(gain) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        SpectralInitSettings(gain=gain)
    assert info.value.errors()[0]["loc"] == ("gain",)


def test_unknown_strategy_message_suggests_closest() -> None:
    with pytest.raises(pydantic.ValidationError, match="did you mean 'kaiming-complex'"):
        SpectralInitSettings(strategy="kaiming")


def test_unknown_field_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="stratgy"):
        SpectralInitSettings(stratgy="legacy")


def test_frozen() -> None:
    s = SpectralInitSettings()
    with pytest.raises(pydantic.ValidationError):
        s.gain = 2.0  # type: ignore[misc]


def test_json_round_trip_and_schema() -> None:
    s = SpectralInitSettings(strategy="fno_uniform", gain=0.25, seed=3)
    assert SpectralInitSettings.model_validate_json(s.model_dump_json()) == s
    schema = SpectralInitSettings.model_json_schema()
    assert {"strategy", "gain", "seed", "params"} <= set(schema["properties"])


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_from_file_with_env_and_argument_precedence(tmp_path, monkeypatch, suffix: str) -> None:
    path = tmp_path / f"init{suffix}"
    if suffix == ".toml":
        path.write_text('strategy = "LEGACY"\ngain = 3.0\nseed = 5\n')
    else:
        path.write_text(json.dumps({"strategy": "LEGACY", "gain": 3.0, "seed": 5}))
    s = SpectralInitSettings.from_file(path)
    assert (s.strategy, s.gain, s.seed) == ("legacy", 3.0, 5)
    monkeypatch.setenv("SPECTRAL_INIT_GAIN", "4")
    assert SpectralInitSettings.from_file(path).gain == 4.0
    assert SpectralInitSettings.from_file(path, gain=0.5).gain == 0.5
    # The file applies only to from_file.
    assert SpectralInitSettings().strategy == "sqrt_in"


def test_bad_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        SpectralInitSettings.from_file(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        SpectralInitSettings.from_file(tmp_path / "init.yaml")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("strategy = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        SpectralInitSettings.from_file(bad_toml)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("[1, 2]")
    with pytest.raises(ValueError, match="table/object"):
        SpectralInitSettings.from_file(bad_json)
    bad_value = tmp_path / "value.toml"
    bad_value.write_text('strategy = "nope"\n')
    with pytest.raises(pydantic.ValidationError, match="unknown spectral init strategy 'nope'"):
        SpectralInitSettings.from_file(bad_value)
    extra = tmp_path / "extra.json"
    extra.write_text('{"gian": 2}')
    with pytest.raises(pydantic.ValidationError, match="gian"):
        SpectralInitSettings.from_file(extra)


def test_params_from_env_as_json(isolated_registry, monkeypatch) -> None:
    class Params(pydantic.BaseModel):
        alpha: float = 1.0

    si.register_strategy(
        "with-alpha", second_moment=lambda i, o, g, alpha: alpha, description="x", params_model=Params
    )(lambda w, *, in_channels, out_channels, gain, generator, alpha: si.complex_normal_(w, alpha, generator))
    monkeypatch.setenv("SPECTRAL_INIT_STRATEGY", "with-alpha")
    monkeypatch.setenv("SPECTRAL_INIT_PARAMS", '{"alpha": 0.25}')
    assert SpectralInitSettings().params == {"alpha": 0.25}
    monkeypatch.setenv("SPECTRAL_INIT_PARAMS", "{not json")
    # pydantic-settings reports unparsable JSON as a SettingsError (a ValueError) naming the field.
    with pytest.raises(ValueError, match='field "params"'):
        SpectralInitSettings()


def test_resolve_settings_accepts_name_settings_dict() -> None:
    assert resolve_settings("Kaiming_Complex").strategy == "kaiming-complex"
    s = SpectralInitSettings(strategy="legacy")
    assert resolve_settings(s) is s
    assert resolve_settings({"strategy": "legacy", "gain": 2}).gain == 2.0
    with pytest.raises(TypeError, match="strategy name, SpectralInitSettings"):
        resolve_settings(3)  # type: ignore[arg-type]


def test_spec_field_accepts_a_string() -> None:
    class Model(pydantic.BaseModel):
        init: SpectralInitSpec

    assert Model(init="xavier_complex").init.strategy == "xavier-complex"
    assert Model(init={"strategy": "legacy", "seed": 1}).init.seed == 1
    with pytest.raises(pydantic.ValidationError, match="init"):
        Model(init="xaviar")


def test_spec_field_reads_env_for_fields_not_given(monkeypatch) -> None:
    """A name, a mapping and a direct SpectralInitSettings(...) follow one precedence."""

    class Model(pydantic.BaseModel):
        init: SpectralInitSpec

    monkeypatch.setenv("SPECTRAL_INIT_GAIN", "2")
    assert Model(init="legacy").init.gain == 2.0
    assert Model(init={"strategy": "legacy"}).init.gain == 2.0
    assert Model(init={"strategy": "legacy", "gain": 3}).init.gain == 3.0
    assert resolve_settings({"strategy": "legacy"}).gain == 2.0


def test_seeded_initializer_is_reproducible_and_leaves_global_rng() -> None:
    before = torch.random.get_rng_state()
    a = init_spectral_weight_(torch.empty(3, 4, 6, 3, dtype=torch.complex64), in_channels=3, out_channels=4,
                                 spectral_init={"strategy": "xavier-complex", "seed": 9})
    b = init_spectral_weight_(torch.empty(3, 4, 6, 3, dtype=torch.complex64), in_channels=3, out_channels=4,
                                 spectral_init={"strategy": "xavier-complex", "seed": 9})
    assert torch.equal(a, b)
    assert torch.equal(before, torch.random.get_rng_state())
    shared = si.make_initializer({"strategy": "xavier-complex", "seed": 9})
    first = shared(torch.empty(3, 4, 6, 3, dtype=torch.complex64), in_channels=3, out_channels=4)
    second = shared(torch.empty(3, 4, 6, 3, dtype=torch.complex64), in_channels=3, out_channels=4)
    assert torch.equal(first, a) and not torch.equal(first, second)


def test_failed_initialization_leaves_weight_untouched(isolated_registry) -> None:
    @si.register_strategy("half-then-fail", second_moment=lambda i, o, g: 1.0, description="fails midway")
    def fill(weight, *, in_channels, out_channels, gain, generator):
        weight[0].fill_(1.0)
        raise RuntimeError("midway")

    @si.register_strategy("non-finite", second_moment=lambda i, o, g: 1.0, description="NaN")
    def fill_nan(weight, *, in_channels, out_channels, gain, generator):
        weight.fill_(float("nan"))

    w = torch.full((2, 2, 2, 2), 3 + 1j, dtype=torch.complex64)
    original = w.clone()
    with pytest.raises(RuntimeError, match="midway"):
        init_spectral_weight_(w, in_channels=2, out_channels=2, spectral_init="half-then-fail")
    with pytest.raises(FloatingPointError, match="non-finite"):
        init_spectral_weight_(w, in_channels=2, out_channels=2, spectral_init="non-finite")
    with pytest.raises(TypeError, match="complex tensor"):
        init_spectral_weight_(torch.zeros(2, 2), in_channels=2, out_channels=2)
    assert torch.equal(w, original)


def test_a_settings_file_is_read_once(tmp_path, monkeypatch) -> None:
    import builtins

    path = tmp_path / "init.toml"
    path.write_text('strategy = "legacy"\ngain = 2.0\n')
    reads = []
    real_path_open, real_open = Path.open, builtins.open

    def path_open(self, *args, **kwargs):  # Path.read_text and read_bytes open through it
        if self == path:
            reads.append("Path.open")
        return real_path_open(self, *args, **kwargs)

    def open_(file, *args, **kwargs):
        if isinstance(file, (str, Path)) and Path(file) == path:
            reads.append("open")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(Path, "open", path_open)
    monkeypatch.setattr(builtins, "open", open_)
    settings = SpectralInitSettings.from_file(path)
    assert (settings.strategy, settings.gain) == ("legacy", 2.0)
    assert len(reads) == 1, reads


def test_a_misspelled_variable_is_named_once_wherever_settings_read_the_environment(monkeypatch) -> None:
    import warnings

    from ptycho_torch import GeneratorConfig, build_generator
    from spectral_init.settings import MisspelledEnvironmentWarning

    monkeypatch.setenv("SPECTRAL_INIT_GAINN", "2")
    with pytest.warns(MisspelledEnvironmentWarning, match="SPECTRAL_INIT_GAINN .*did you mean SPECTRAL_INIT_GAIN"):
        assert SpectralInitSettings().gain == 1.0  # ignored, and said so
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per variable per process: no second warning
        SpectralInitSettings()
        build_generator(GeneratorConfig(N=16, fno_width=4, fno_modes=2, fno_blocks=1))
    monkeypatch.setenv("SPECTRAL_INIT_SEDE", "3")
    with pytest.warns(MisspelledEnvironmentWarning, match="SPECTRAL_INIT_SEDE") as record:
        build_generator(GeneratorConfig(N=16, fno_width=4, fno_modes=2, fno_blocks=1))
    assert not any("GAINN" in str(w.message) for w in record)
    # it points at the line of the user's code that read the settings, not at the library's inside
    assert [w.filename for w in record] == [__file__]


def test_the_clis_print_a_misspelled_variable_once(monkeypatch, capsys) -> None:
    import warnings

    from spectral_init.cli.usage import check_spectral_init_environment

    monkeypatch.setenv("SPECTRAL_INIT_STRATEGI", "legacy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the printed line is the only report: settings built after it stay quiet
        check_spectral_init_environment()
        SpectralInitSettings()
    err = capsys.readouterr().err
    assert err.count("warning: SPECTRAL_INIT_STRATEGI is not a spectral-init variable") == 1
    assert "did you mean SPECTRAL_INIT_STRATEGY" in err
