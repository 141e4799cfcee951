"""Registration, lookup by any spelling, errors, and entry-point plugins."""

from __future__ import annotations

import warnings

import pydantic
import pytest
import torch
from plugins import installed

import spectral_init as si
from spectral_init.plugins import PluginLoadWarning
from spectral_init.registry import Strategy, UnknownStrategyError


@pytest.mark.parametrize(
    "spelling, canonical",
    [
        ("xavier_complex", "xavier-complex"),
        ("Xavier-Complex", "xavier-complex"),
        ("SQRT-IN", "sqrt_in"),
        ("sqrt_in", "sqrt_in"),
        ("Fno_Uniform", "fno-uniform"),
        ("LEGACY", "legacy"),
    ],
)
def test_names_resolve_case_and_separator_insensitively(spelling: str, canonical: str) -> None:
    assert si.get_strategy(spelling).name == canonical


def test_available_strategies_is_sorted_canonical() -> None:
    names = si.available_strategies()
    assert names == sorted(names)
    assert {"legacy", "sqrt_in", "xavier-complex", "kaiming-complex", "fno-uniform"} <= set(names)


def test_unknown_name_lists_known_and_suggests_closest() -> None:
    with pytest.raises(UnknownStrategyError) as info:
        si.get_strategy("xavier")
    message = str(info.value)
    assert "did you mean 'xavier-complex'" in message
    for name in si.available_strategies():
        assert name in message
    assert isinstance(info.value, ValueError)


def test_register_and_duplicate(isolated_registry) -> None:
    @si.register_strategy("tiny", second_moment=lambda i, o, g: 1e-4 * g * g, description="test")
    def fill(weight, *, in_channels, out_channels, gain, generator):
        return weight.normal_(0, 1e-2 * gain, generator=generator)

    assert isinstance(fill, Strategy)
    assert si.get_strategy("TINY") is fill
    assert "tiny" in si.available_strategies()
    with pytest.raises(ValueError, match="already registered"):
        si.register_strategy("Tiny", second_moment=lambda i, o, g: 1.0, description="dup")(lambda w, **k: w)
    replacement = si.register_strategy("Tiny", second_moment=lambda i, o, g: 2.0, description="new", override=True)(
        lambda w, **k: w
    )
    assert si.get_strategy("tiny") is replacement
    assert si.available_strategies().count("Tiny") == 1 and "tiny" not in si.available_strategies()


def test_registration_in_isolation_does_not_leak() -> None:
    assert "tiny" not in si.available_strategies()


@pytest.mark.parametrize("bad", ["", "1abc", "has space", "dot.name", "-lead"])
def test_invalid_names_rejected(isolated_registry, bad: str) -> None:
    with pytest.raises(ValueError, match="strategy name must start with a letter"):
        si.register_strategy(bad, second_moment=lambda i, o, g: 1.0, description="x")(lambda w, **k: w)


def test_strategy_call_rejects_bad_arguments_without_touching_weight() -> None:
    strategy = si.get_strategy("sqrt_in")
    w = torch.full((2, 3, 4, 4), 5 + 5j, dtype=torch.complex64)
    original = w.clone()
    cases = [
        (dict(weight=torch.zeros(2, 3, 4, 4), in_channels=2, out_channels=3), TypeError, "complex tensor"),
        (dict(weight=w, in_channels=0, out_channels=3), ValueError, "in_channels must be an integer >= 1"),
        (dict(weight=w, in_channels=2, out_channels=2.5), ValueError, "out_channels must be an integer >= 1"),
        (dict(weight=w, in_channels=True, out_channels=3), ValueError, "in_channels"),
        (dict(weight=w, in_channels=2, out_channels=3, gain=0.0), ValueError, "gain must be a finite number > 0"),
        (dict(weight=w, in_channels=2, out_channels=3, gain=float("nan")), ValueError, "gain"),
        (dict(weight=w, in_channels=2, out_channels=3, gain=float("inf")), ValueError, "gain"),
        (dict(weight=w, in_channels=2, out_channels=3, gain=-1.0), ValueError, "gain"),
        (dict(weight=w, in_channels=2, out_channels=3, generator=3), TypeError, "generator"),
        (dict(weight=w, in_channels=2, out_channels=3, mode_fraction=0.5), ValueError, "takes no parameters"),
    ]
    for kwargs, error, pattern in cases:
        weight = kwargs.pop("weight")
        with pytest.raises(error, match=pattern):
            strategy(weight, **kwargs)
    assert torch.equal(w, original)


class ModeFraction(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    mode_fraction: float = pydantic.Field(gt=0, le=1)


def test_strategy_with_its_own_parameters(isolated_registry) -> None:
    @si.register_strategy(
        "mode-aware",
        second_moment=lambda i, o, g, mode_fraction: g * g / (i * mode_fraction),
        description="scales with the retained-mode fraction",
        params_model=ModeFraction,
    )
    def fill(weight, *, in_channels, out_channels, gain, generator, mode_fraction):
        return si.complex_normal_(weight, gain * gain / (in_channels * mode_fraction), generator)

    assert fill.second_moment(4, 4, 1.0, mode_fraction=0.5) == pytest.approx(0.5)
    w = torch.empty(4, 4, 8, 8, dtype=torch.complex64)
    fill(w, in_channels=4, out_channels=4, mode_fraction=0.25)
    with pytest.raises(pydantic.ValidationError, match="mode_fraction"):
        fill(w, in_channels=4, out_channels=4, mode_fraction=2.0)
    with pytest.raises(pydantic.ValidationError, match="mode_fraction"):
        fill(w, in_channels=4, out_channels=4)
    settings = si.SpectralInitSettings(strategy="mode_aware", params={"mode_fraction": 0.5})
    assert settings.params == {"mode_fraction": 0.5}
    with pytest.raises(pydantic.ValidationError, match="mode_fraction"):
        si.SpectralInitSettings(strategy="mode-aware", params={"mode_fraction": 0})
    with pytest.raises(pydantic.ValidationError, match="takes no parameters"):
        si.SpectralInitSettings(strategy="sqrt_in", params={"mode_fraction": 0.5})


def test_plugins_load_lazily_and_a_broken_one_only_warns() -> None:
    plugins = [
        ("fan-out", "plugins.good_plugin"),
        ("by-function", "plugins.function_plugin:register"),
        ("broken", "plugins.broken_plugin"),
    ]
    with installed(*plugins):
        with pytest.warns(PluginLoadWarning, match=r"'broken'.*broken on purpose"):
            names = si.available_strategies()
        assert {"plugin-fan-out", "plugin-by-function", "sqrt_in"} <= set(names)
        assert si.get_strategy("Plugin_Fan_Out").second_moment(3, 8, 2.0) == pytest.approx(4 / 8)
        assert si.get_strategy("plugin-by-function").second_moment(3, 8) == pytest.approx(1.0)
        # Loaded once: later lookups neither re-import nor warn again.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert si.get_strategy("sqrt_in").name == "sqrt_in"
    assert "plugin-fan-out" not in si.available_strategies()  # uninstalled again


def test_plugin_strategy_is_validated_by_settings() -> None:
    with installed(("fan-out", "plugins.good_plugin")):
        assert si.SpectralInitSettings(strategy="PLUGIN-FAN-OUT").strategy == "plugin-fan-out"
