"""``SpectralInitSettings``: which strategy, with what gain and seed, from code, env or file.

Precedence, highest first: explicit arguments, environment variables
(``SPECTRAL_INIT_STRATEGY``, ``SPECTRAL_INIT_GAIN``, ``SPECTRAL_INIT_SEED``,
``SPECTRAL_INIT_PARAMS`` as JSON), a settings file given to ``from_file``
(TOML or JSON), then the defaults.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .config_files import read_config_file
from .registry import get_strategy

DEFAULT_STRATEGY = "sqrt_in"
ENV_PREFIX = "SPECTRAL_INIT_"

# The file handed to ``from_file`` for the duration of that one construction.
_settings_file: ContextVar[Path | None] = ContextVar("spectral_init_settings_file", default=None)


class SpectralInitSettings(BaseSettings):
    """How to initialize the complex weights of spectral convolutions."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

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
        default_factory=dict, description="Parameters of strategies that declare their own."
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

    @model_validator(mode="after")
    def _strategy_params(self) -> "SpectralInitSettings":
        checked = get_strategy(self.strategy).validate_params(self.params)
        # frozen model: write through object.__setattr__ once, during validation.
        object.__setattr__(self, "params", checked)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _settings_file.get()
        if path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, _file_source(settings_cls, path))

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "SpectralInitSettings":
        """Settings from a TOML or JSON file; env vars and ``overrides`` take precedence."""
        path = Path(path)
        read_config_file(path, "settings file")  # clear errors before pydantic-settings reads it
        token = _settings_file.set(path)
        try:
            return cls(**overrides)
        finally:
            _settings_file.reset(token)


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if path.suffix.lower() == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    return JsonConfigSettingsSource(settings_cls, json_file=path)


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
