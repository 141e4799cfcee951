"""Named init strategies: ``register_strategy`` / ``get_strategy`` / ``available_strategies``.

Names are matched case-insensitively with ``-`` and ``_`` equivalent; the name
given at registration stays the canonical one. A strategy sees the weight it
fills through a ``SpectralGeometry`` (channels, summed branches, kept modes);
its functions receive it as the keyword ``geometry`` when they name that
parameter, so fill functions written before geometry existed keep working. Third-party packages add
strategies through the entry-point group ``spectral_init.strategies``, loaded
lazily on the first lookup.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any, Protocol

import pydantic
import torch

from .checks import check_positive_int
from .geometry import SpectralGeometry
from .plugins import PluginLoadWarning, PluginRegistry, normalize_name

__all__ = [
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "FillFunction",
    "PluginLoadWarning",
    "SecondMomentFunction",
    "Strategy",
    "UnknownStrategyError",
    "available_strategies",
    "check_complex_tensor",
    "check_gain",
    "check_positive_int",
    "get_strategy",
    "normalize_name",
    "register_strategy",
    "required_params",
    "resolve_geometry",
]

ENTRY_POINT_GROUP = "spectral_init.strategies"


class FillFunction(Protocol):
    def __call__(
        self,
        weight: torch.Tensor,
        *,
        in_channels: int,
        out_channels: int,
        gain: float,
        generator: torch.Generator | None,
        **params: Any,
    ) -> Any: ...
    # A fill function may also take ``geometry: SpectralGeometry`` (keyword).


SecondMomentFunction = Callable[..., float]


class UnknownStrategyError(ValueError):
    """A strategy name that is not registered; the message lists the known ones."""


def check_complex_tensor(weight: object) -> torch.Tensor:
    """``weight`` if it is a complex tensor, else a TypeError saying what it is."""
    if not isinstance(weight, torch.Tensor) or not weight.is_complex():
        got = weight.dtype if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise TypeError(f"weight must be a complex tensor (torch.complex64 or torch.complex128); got {got}")
    return weight


def _takes_geometry(function: Callable[..., Any]) -> bool:
    """Whether ``function`` names a ``geometry`` parameter (``**kwargs`` alone does not count)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    param = parameters.get("geometry")
    return param is not None and param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD)


def resolve_geometry(
    in_channels: int | None, out_channels: int | None, geometry: SpectralGeometry | None
) -> SpectralGeometry:
    """The geometry of a call that gives channels, a geometry, or both (which must then agree)."""
    if geometry is None:
        if in_channels is None or out_channels is None:
            raise TypeError("give in_channels and out_channels, or geometry=SpectralGeometry(...)")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        return SpectralGeometry(in_channels, out_channels)
    if not isinstance(geometry, SpectralGeometry):
        raise TypeError(f"geometry must be a SpectralGeometry; got {type(geometry).__name__}")
    for name, given in (("in_channels", in_channels), ("out_channels", out_channels)):
        if given is not None and given != getattr(geometry, name):
            raise ValueError(f"{name}={given!r} disagrees with geometry.{name}={getattr(geometry, name)}")
    return geometry


def check_gain(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"gain must be a finite number > 0; got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class Strategy:
    """A registered init strategy: call it to fill a complex weight in place.

    ``second_moment(in_channels, out_channels, gain)`` is the E|w|² it promises;
    tests, ``describe`` and the docs all read that one declaration. Both
    functions get ``geometry=`` as well when they name that parameter.
    """

    name: str
    description: str
    fill: FillFunction
    second_moment_fn: SecondMomentFunction
    formula: str
    distribution: str
    params_model: type[pydantic.BaseModel] | None = None

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check strategy-specific parameters against ``params_model``; return them completed."""
        if self.params_model is None:
            if params:
                raise ValueError(
                    f"strategy {self.name!r} takes no parameters; got {sorted(params)}"
                )
            return {}
        return self.params_model.model_validate(params).model_dump()

    def second_moment(
        self,
        in_channels: int | None = None,
        out_channels: int | None = None,
        gain: float = 1.0,
        *,
        geometry: SpectralGeometry | None = None,
        **params: Any,
    ) -> float:
        """E|w|² of the weights this strategy draws for ``geometry`` (or just the channel counts)."""
        geometry = resolve_geometry(in_channels, out_channels, geometry)
        extra = {"geometry": geometry} if _takes_geometry(self.second_moment_fn) else {}
        return float(
            self.second_moment_fn(
                geometry.in_channels, geometry.out_channels, check_gain(gain), **extra,
                **self.validate_params(params),
            )
        )

    def __call__(
        self,
        weight: torch.Tensor,
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
        gain: float = 1.0,
        generator: torch.Generator | None = None,
        geometry: SpectralGeometry | None = None,
        **params: Any,
    ) -> torch.Tensor:
        """Fill the complex tensor ``weight`` in place and return it.

        Give the channel counts, or ``geometry`` for a weight whose layer sums
        several branches. Every argument is checked before ``weight`` is touched.
        """
        check_complex_tensor(weight)
        geometry = resolve_geometry(in_channels, out_channels, geometry)
        gain = check_gain(gain)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
        checked = self.validate_params(params)
        extra = {"geometry": geometry} if _takes_geometry(self.fill) else {}
        with torch.no_grad():
            self.fill(
                weight,
                in_channels=geometry.in_channels,
                out_channels=geometry.out_channels,
                gain=gain,
                generator=generator,
                **extra,
                **checked,
            )
        return weight


def required_params(strategy: Strategy) -> list[str]:
    """The names of ``strategy``'s parameters that have no default (``mup``'s ``base_modes``)."""
    model = strategy.params_model
    return [] if model is None else [name for name, f in model.model_fields.items() if f.is_required()]


REGISTRY: PluginRegistry[Strategy] = PluginRegistry(
    "strategy", "strategies", ENTRY_POINT_GROUP, UnknownStrategyError, lookup_noun="spectral init strategy"
)


def register_strategy(
    name: str,
    *,
    second_moment: SecondMomentFunction,
    description: str,
    override: bool = False,
    formula: str = "see second_moment",
    distribution: str = "custom",
    params_model: type[pydantic.BaseModel] | None = None,
) -> Callable[[FillFunction], Strategy]:
    """Decorator: register ``fill(weight, *, in_channels, out_channels, gain, generator)``.

    ``second_moment(in_channels, out_channels, gain) -> float`` declares the E|w|²
    that ``fill`` draws. Either function that names a ``geometry`` parameter
    also receives the weight's ``SpectralGeometry`` (summed branches, kept modes). A strategy
    with parameters of its own declares them as a pydantic ``params_model``; they then reach both functions as keyword
    arguments, validated, and settings validate them too. A name already taken
    (case-insensitively, ``-`` = ``_``) raises unless ``override=True``.
    """
    if not callable(second_moment):
        raise TypeError("second_moment must be a callable (in_channels, out_channels, gain) -> float")
    if params_model is not None and not (
        isinstance(params_model, type) and issubclass(params_model, pydantic.BaseModel)
    ):
        raise TypeError("params_model must be a pydantic.BaseModel subclass or None")

    def decorator(fill: FillFunction) -> Strategy:
        if not callable(fill):
            raise TypeError("register_strategy decorates a fill function")
        strategy = Strategy(
            name=name,
            description=description,
            fill=fill,
            second_moment_fn=second_moment,
            formula=formula,
            distribution=distribution,
            params_model=params_model,
        )
        return REGISTRY.add(strategy, override=override)

    return decorator


def get_strategy(name: str) -> Strategy:
    """The strategy registered under ``name`` (any case, ``-`` or ``_``)."""
    return REGISTRY.get(name)


def available_strategies() -> list[str]:
    """Sorted canonical names of all strategies, plugins included."""
    return REGISTRY.names()
