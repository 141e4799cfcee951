"""``SpectralInitSettings``: which strategy, with what gain and seed, from code, env or file.

Precedence, highest first: explicit arguments, environment variables
(``SPECTRAL_INIT_STRATEGY``, ``SPECTRAL_INIT_GAIN``, ``SPECTRAL_INIT_SEED``,
``SPECTRAL_INIT_PARAMS`` as JSON), a settings file given to ``from_file``
(TOML or JSON), then the defaults.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .config_files import read_config_file
from .registry import get_strategy

__all__ = [
    "DEFAULT_STRATEGY",
    "ENV_PREFIX",
    "MisspelledEnvironmentWarning",
    "SpectralInitSettings",
    "SpectralInitSpec",
    "environment_settings",
    "misspelled_environment",
    "resolve_settings",
    "unreported_misspellings",
]

DEFAULT_STRATEGY = "sqrt_in"
ENV_PREFIX = "SPECTRAL_INIT_"

# The values of the file handed to ``from_file``, for the duration of that one construction.
_settings_file: ContextVar[dict[str, Any] | None] = ContextVar("spectral_init_settings_file", default=None)


# packages whose frames a warning skips, so that it names the line of the user's code that read the settings
_INTERNAL_PACKAGES = ("spectral_init", "ptycho_torch", "pydantic", "pydantic_settings", "pydantic_core")


def _callers_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this package, ptycho_torch and pydantic, for a
    ``warnings.warn`` in the function that calls this one (``warn``'s convention: 1 = that function)."""
    frame, level = sys._getframe(1), 1  # the function that calls warnings.warn
    while frame is not None:
        # by the frame's module, not its file's path: a user's folder may be named like one of these
        if frame.f_globals.get("__name__", "").partition(".")[0] not in _INTERNAL_PACKAGES:
            return level
        frame, level = frame.f_back, level + 1
    return 2


class MisspelledEnvironmentWarning(UserWarning):
    """A ``SPECTRAL_INIT_*`` variable that names no settings field, so it is ignored."""


class SpectralInitSettings(BaseSettings):
    """How to initialize the complex weights of spectral convolutions."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    def __init__(self, **values: Any) -> None:
        # every construction reads the environment: a misspelled variable would otherwise be ignored silently
        for message in unreported_misspellings():
            warnings.warn(message, MisspelledEnvironmentWarning, stacklevel=_callers_stacklevel())
        super().__init__(**values)

    strategy: str = Field(
        DEFAULT_STRATEGY,
        description="Registered strategy name (any case, '-' or '_'); see `spectral-init list`.",
    )
    gain: float = Field(1.0, gt=0, allow_inf_nan=False, description="Multiplies the std; E|w|² scales with gain².")
    seed: int | None = Field(
        None,
        ge=0,
        lt=2**63,
        description="Draw from a private torch.Generator seeded with this; the global RNG is left untouched.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,  # a strategy's declared defaults are filled in even when none are given
        description="Parameters of strategies that declare their own.",
    )
    calibrate: bool = Field(
        False,
        description="After drawing, rescale each spectral layer to unit output second moment on the first "
        "training batch (spectral_init.calibrate_; the training CLI does it).",
    )

    @field_validator("strategy")
    @classmethod
    def _canonical_strategy(cls, value: str) -> str:
        return get_strategy(value).name

    @field_validator("gain", mode="before")
    @classmethod
    def _gain_is_not_a_bool(cls, value: Any) -> Any:
        # pydantic reads True as 1.0; the registry's check_gain refuses bools, and so do the settings
        if isinstance(value, bool):
            raise ValueError(f"gain must be a finite number > 0, not a bool; got {value!r}")
        return value

    @field_validator("params")
    @classmethod
    def _strategy_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # fields validate in order: ``strategy`` is already canonical here, unless it failed
        strategy = info.data.get("strategy")
        if strategy is None:
            return value  # the strategy's own error is the one to report
        return get_strategy(strategy).validate_params(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_values = _settings_file.get()
        if file_values is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=file_values))

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> SpectralInitSettings:
        """Settings from a TOML or JSON file; env vars and ``overrides`` take precedence."""
        file_values = read_config_file(path, "settings file")  # read once; its errors name the file
        token = _settings_file.set(file_values)
        try:
            return cls(**overrides)
        finally:
            _settings_file.reset(token)


def _coerce_spec(value: Any) -> Any:
    """A bare strategy name stands for settings with that strategy."""
    if isinstance(value, str):
        return SpectralInitSettings(strategy=value)
    return value


SpectralInitSpec = Annotated[SpectralInitSettings, BeforeValidator(_coerce_spec)]
"""Field type for configs: accepts settings, a mapping of their fields, or a strategy name."""


def resolve_settings(spec: SpectralInitSettings | str | dict[str, Any] | None = None) -> SpectralInitSettings:
    """Settings from ``spec``; ``None`` reads the defaults and environment now, not at import."""
    if spec is None:
        return SpectralInitSettings()
    if isinstance(spec, SpectralInitSettings):
        return spec
    if isinstance(spec, str):
        get_strategy(spec)  # an unknown name raises UnknownStrategyError, not a wrapped ValidationError
        return SpectralInitSettings(strategy=spec)
    if isinstance(spec, dict):
        return SpectralInitSettings(**spec)
    raise TypeError(
        "spectral_init must be a strategy name, SpectralInitSettings, a dict of its fields, "
        f"or None; got {type(spec).__name__}"
    )


ENV_FIELDS: tuple[str, ...] = tuple(ENV_PREFIX + name.upper() for name in SpectralInitSettings.model_fields)


def _misspellings(environ: Mapping[str, str]) -> dict[str, str]:
    """Variable → message for each ``SPECTRAL_INIT_*`` variable that names no field, with the closest valid name."""
    messages = {}
    for key in sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in ENV_FIELDS):
        closest = difflib.get_close_matches(key.upper(), ENV_FIELDS, n=1, cutoff=0.0)
        messages[key] = (f"{key} is not a spectral-init variable and is ignored; did you mean {closest[0]}? "
                         f"(valid: {', '.join(ENV_FIELDS)})")
    return messages


def misspelled_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """One message per ``SPECTRAL_INIT_*`` variable that names no field, with the closest valid name."""
    return list(_misspellings(os.environ if environ is None else environ).values())


_reported: set[str] = set()  # variables already reported in this process: each is named once


def unreported_misspellings() -> list[str]:
    """``misspelled_environment()``'s messages for the variables not yet reported in this process, which
    then count as reported (settings construction warns with them; the CLIs print them)."""
    fresh = {key: message for key, message in _misspellings(os.environ).items() if key not in _reported}
    _reported.update(fresh)
    return list(fresh.values())


def environment_settings() -> SpectralInitSettings:
    """The defaults with the ``SPECTRAL_INIT_*`` environment applied; a bad variable raises a
    ValueError naming it (pydantic's own error names only the field)."""
    try:
        return SpectralInitSettings()
    except SettingsError as exc:  # a variable pydantic-settings could not parse (PARAMS that is not JSON)
        raise ValueError(f"invalid spectral-init environment: {exc} (SPECTRAL_INIT_PARAMS takes a JSON "
                         "object)") from None
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            variable = ENV_PREFIX + field.upper()
            shown = os.environ.get(variable)
            problems.append(f"{variable}={shown!r}: {err['msg']}" if shown is not None else f"{field}: {err['msg']}")
        raise ValueError("invalid spectral-init environment: " + "; ".join(problems)) from None
