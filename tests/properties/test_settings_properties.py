"""Properties of ``SpectralInitSettings`` and name lookup: round trips, spellings, precedence, bad gains."""

from __future__ import annotations

import math

import pydantic
import pytest
import torch
from draws import gains, needs_params
from hypothesis import assume, given
from hypothesis import strategies as st

import spectral_init as si
from ptycho_torch.generators import _FallbackSpectralConv2d
from spectral_init.registry import UnknownStrategyError, normalize_name

NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,24}\Z")
seeds_or_none = st.none() | st.integers(0, 2**63 - 1)


@st.composite
def spellings(draw: st.DrawFn, name: str) -> str:
    """``name`` with each letter's case and each separator ('-' or '_') chosen freely."""
    out = []
    for ch in name:
        if ch in "-_":
            out.append(draw(st.sampled_from("-_")))
        else:
            out.append(ch.upper() if draw(st.booleans()) else ch.lower())
    return "".join(out)


@given(gain=gains, seed=seeds_or_none, data=st.data())
def test_json_round_trip(strategy_name, gain, seed, data) -> None:
    settings = si.SpectralInitSettings(strategy=data.draw(spellings(strategy_name)), gain=gain, seed=seed)
    again = si.SpectralInitSettings.model_validate_json(settings.model_dump_json())
    assert again == settings
    assert (again.strategy, again.gain, again.seed) == (strategy_name, gain, seed)


@given(data=st.data())
def test_every_spelling_of_a_registered_name_resolves_to_it(strategy_name, data) -> None:
    spelled = data.draw(spellings(strategy_name))
    assert si.get_strategy(spelled).name == strategy_name
    assert si.SpectralInitSettings(strategy=spelled).strategy == strategy_name


@given(name=names)
def test_an_unregistered_name_is_rejected_naming_a_known_one(name) -> None:
    known = si.available_strategies()
    assume(normalize_name(name) not in {normalize_name(k) for k in known})
    with pytest.raises(UnknownStrategyError) as info:
        si.get_strategy(name)
    message = str(info.value)
    suggested = message.split("did you mean ")[1].split("?")[0].strip("'")
    assert suggested in known
    assert all(k in message for k in known)
    with pytest.raises(pydantic.ValidationError, match="strategy"):
        si.SpectralInitSettings(strategy=name)


@given(
    position=st.integers(0, 40),
    char=st.sampled_from(NAME_ALPHABET),
    edit=st.sampled_from(["replace", "insert", "delete"]),
)
def test_a_one_character_typo_suggests_the_intended_name(strategy_name, position, char, edit) -> None:
    i = position % len(strategy_name)
    head, tail = strategy_name[:i], strategy_name[i:]
    typo = {"replace": head + char + tail[1:], "insert": head + char + tail, "delete": head + tail[1:]}[edit]
    assume(typo and typo[0].isalpha())
    assume(normalize_name(typo) not in {normalize_name(k) for k in si.available_strategies()})
    with pytest.raises(UnknownStrategyError, match=f"did you mean '{strategy_name}'"):
        si.get_strategy(typo)


@given(env_gain=gains, arg_gain=gains, env_seed=seeds_or_none, data=st.data())
def test_env_overrides_defaults_and_arguments_override_env(strategy_name, env_gain, arg_gain, env_seed, data) -> None:
    arg_strategy = data.draw(st.sampled_from([n for n in si.available_strategies() if not needs_params(n)]))
    defaults = si.SpectralInitSettings()
    assert (defaults.strategy, defaults.gain, defaults.seed) == ("sqrt_in", 1.0, None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECTRAL_INIT_STRATEGY", data.draw(spellings(strategy_name)))
        mp.setenv("SPECTRAL_INIT_GAIN", repr(env_gain))
        if env_seed is not None:
            mp.setenv("SPECTRAL_INIT_SEED", str(env_seed))
        from_env = si.SpectralInitSettings()
        assert (from_env.strategy, from_env.gain, from_env.seed) == (strategy_name, env_gain, env_seed)
        explicit = si.SpectralInitSettings(strategy=arg_strategy, gain=arg_gain)
        assert (explicit.strategy, explicit.gain, explicit.seed) == (arg_strategy, arg_gain, env_seed)


not_a_number = st.text(alphabet=NAME_ALPHABET + " .,-+", min_size=1, max_size=8).filter(
    lambda t: not _parses_as_float(t)
)


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


bad_gains = (
    st.floats(max_value=0.0)
    | st.sampled_from([math.nan, math.inf, -math.inf, True, False, None, "", "nan", "inf", "-1", "0"])
    | not_a_number
    | st.lists(st.floats(0.1, 2), min_size=1, max_size=2)
)


@given(gain=bad_gains)
def test_invalid_gains_of_any_kind_are_rejected(gain) -> None:
    with pytest.raises(pydantic.ValidationError, match="gain"):
        si.SpectralInitSettings(gain=gain)
    with pytest.raises(pydantic.ValidationError, match="gain"):
        _FallbackSpectralConv2d(2, 2, 2, spectral_init={"gain": gain})
    weight = torch.zeros(2, 2, 2, 1, dtype=torch.complex64)
    with pytest.raises((ValueError, TypeError), match="gain"):
        si.get_strategy("sqrt_in")(weight, in_channels=2, out_channels=2, gain=gain)
    assert not weight.abs().any()  # nothing half-written
    if isinstance(gain, str):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SPECTRAL_INIT_GAIN", gain)
            with pytest.raises(pydantic.ValidationError, match="gain"):
                si.SpectralInitSettings()
