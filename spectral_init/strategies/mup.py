"""``mup``: the maximal-update parametrization of the kept modes (Li, Yoo & Yang, ICML 2025, "μTransfer-FNO").

Tune a small FNO, then raise the number of kept modes K: under the standard parametrization the best
learning rate moves; under μP it is meant to stay. For a kernel integral operator R ∈ ℂ^(K^d × m × m)
trained with Adam, the paper derives

    init variance  b(K)² ∝ 1 / (d·log K)        Adam learning rate  c(K) ∝ 1 / √(d·log K)

— a logarithm, not a power, because the operator's spectral norm behaves like the maximum over its K^d
modes of sub-Gaussian variables, which grows as √(2·log K^d). Width is not covered by the paper, and not
here.

**What K is here.** d·log K = log(K^d) = log N, with N the number of kept modes a weight holds: the
product of ``SpectralGeometry.modes`` (the weight's own mode axes; for neuraloperator's
``FNO(n_modes=(M, M))`` that is (M, M//2 + 1), the last axis being rfft's half spectrum). An anisotropic
weight (K_1, …, K_d) so reduces to log N = Σ log K_i, i.e. K = the geometric mean of the K_i: the
maximum over the N modes is what the derivation bounds, and it depends on N alone.

**The base.** ``base_modes`` names the small model the learning rate was tuned on: an int K_b counts
modes as the layer's constructor does (this package's ``modes`` / ``--fno-modes``, neuraloperator's
``n_modes``, Li et al.'s ``modes1…``), so N_b is what the same layer built with K_b per axis keeps
(``SpectralGeometry.modes_for``: (2K_b, K_b) here, K_b·(K_b//2 + 1) in neuraloperator's 2-D layer); a
tuple gives the weight's own kept modes per axis (N_b = Π), as ``base_modes_of(small_model)`` reads
them. Relative to the base, this strategy draws

    E|w|² = gain² / (b·in) · log N_b / log N

— sqrt_in's variance-preserving target at the base, shrinking as 1/log N beyond it — and
``mup_param_groups`` gives Adam the spectral weights' learning rate × √(log N_b / log N), every other
parameter the base rate. At the base both are the standard parametrization (sqrt_in, one rate).
N = 1 (a single kept mode) has log N = 0 and is refused.
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..adapters.discovery import find_spectral_weights
from ..geometry import SpectralGeometry
from ..registry import Strategy, register_strategy
from .scaling import complex_normal_

__all__ = ["MupParams", "base_modes_of", "mup_learning_rate_factor", "mup_param_groups", "mup_variance_factor"]

BaseModes = int | tuple[int, ...]


class MupParams(BaseModel):
    """The strategy's own parameters (``SpectralInitSettings.params``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_modes: BaseModes = Field(
        examples=[8],
        description="Kept modes of the base (tuned) model: an int K as the layer's constructor counts them "
        "(modes, n_modes, modes1…), or the weights' own kept modes per axis as a tuple, as SpectralGeometry.modes "
        "counts them (base_modes_of(small_model) reads them).",
    )

    @field_validator("base_modes", mode="before")
    @classmethod
    def _whole_positive(cls, value: Any) -> Any:
        axes = value if isinstance(value, (list, tuple)) else [value]
        if not axes or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in axes):
            raise ValueError(f"base_modes must be an integer ≥ 2, or a tuple of integers ≥ 1 per axis; got {value!r}")
        if math.prod(axes) < 2:
            raise ValueError(f"base_modes {value!r} keeps one mode: log N = 0 there, so μP has no base to scale from")
        return tuple(value) if isinstance(value, list) else value


def _log_modes(modes: tuple[int, ...]) -> float:
    if not modes:
        raise ValueError("mup needs the kept modes of this weight: fill it through initialize_ (its layer adapter "
                         "knows them) or give geometry=SpectralGeometry(..., modes=...)")
    count = math.prod(modes)
    if count < 2:
        raise ValueError(f"mup: this weight keeps one mode (modes {modes}): log N = 0, there is nothing to scale")
    return math.log(count)


def _base_log_modes(base_modes: BaseModes, geometry: SpectralGeometry) -> float:
    if isinstance(base_modes, int):  # K as the layer counts it: the same layer built with K modes per axis
        return _log_modes(geometry.modes_for(base_modes))
    if len(base_modes) != geometry.spatial_rank:
        raise ValueError(f"base_modes {base_modes} has {len(base_modes)} axes; the weight has "
                         f"{geometry.spatial_rank} (give one int, or a tuple per axis of this weight)")
    return math.log(math.prod(base_modes))


def mup_variance_factor(geometry: SpectralGeometry, base_modes: BaseModes) -> float:
    """log N_b / log N: μP's E|w|² relative to the variance-preserving target (1 at the base)."""
    log_n = _log_modes(geometry.modes)
    return _base_log_modes(base_modes, geometry) / log_n


def mup_learning_rate_factor(geometry: SpectralGeometry, base_modes: BaseModes) -> float:
    """√(log N_b / log N): μP's Adam learning rate relative to the base's (1 at the base)."""
    return math.sqrt(mup_variance_factor(geometry, base_modes))


def _second_moment(in_channels: int, out_channels: int, gain: float, *, geometry: SpectralGeometry,
                   base_modes: BaseModes) -> float:
    return gain * gain / geometry.fan_in * mup_variance_factor(geometry, base_modes)


def _fill(weight: Any, *, in_channels: int, out_channels: int, gain: float, generator: Any,
          geometry: SpectralGeometry, base_modes: BaseModes) -> None:
    complex_normal_(weight, _second_moment(in_channels, out_channels, gain, geometry=geometry,
                                           base_modes=base_modes), generator)


MUP: Strategy = register_strategy(
    "mup",
    second_moment=_second_moment,
    description="Maximal-update parametrization over the kept modes (Li, Yoo & Yang 2025): sqrt_in's target "
    "at the base model, × log N_base / log N (N = kept modes of the weight; param: base_modes). Pair it with "
    "mup_param_groups for the learning rate.",
    formula="gain²/(b·in) · log N_b/log N",
    distribution="circular complex normal",
    params_model=MupParams,
)(_fill)


def base_modes_of(model: nn.Module) -> tuple[int, ...]:
    """The kept modes of ``model``'s spectral weights (``SpectralGeometry.modes``), to use as ``base_modes``.

    A model whose weights keep different modes has no single base: the ValueError names each weight's.
    """
    plans, _ = find_spectral_weights(model)
    if not plans:
        raise ValueError("base_modes_of: no layer adapter recognizes a spectral weight in this model")
    distinct = {plan.geometry.modes for plan in plans}
    if len(distinct) != 1:
        listing = ", ".join(f"{plan.name} {plan.geometry.modes}" for plan in plans)
        raise ValueError(f"base_modes_of: the spectral weights keep different modes ({listing}); μP's base is one "
                         "K: give base_modes yourself, e.g. the modes of the weights that grow with K")
    return distinct.pop()


def mup_param_groups(model: nn.Module, lr: float, base_modes: BaseModes, **group_options: Any) -> list[dict[str, Any]]:
    """Optimizer parameter groups for μP with Adam: every spectral weight's parameters at
    ``lr`` · √(log N_b / log N) (its own N; layers that keep different modes get different rates), every
    other parameter at ``lr``. ``group_options`` (``weight_decay``, …) go into every group.

        optimizer = torch.optim.Adam(mup_param_groups(model, 3e-3, base_modes=(8, 5)))

    Works with any optimizer that takes parameter groups, and so with neuraloperator's ``Trainer``, which
    takes the optimizer built. Learning-rate schedulers scale each group's rate, so the ratio stays.
    A factorized weight's factors all get its weight's rate (the paper derives dense weights only).
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0; got {lr!r}")
    MupParams(base_modes=base_modes)  # the same checks as the strategy's
    plans, _ = find_spectral_weights(model)
    if not plans:
        raise ValueError("mup_param_groups: no layer adapter recognizes a spectral weight in this model; "
                         "μP's learning rate has nothing to scale")
    factors: dict[float, list[nn.Parameter]] = {}
    spectral: set[int] = set()
    for plan in plans:
        factor = mup_learning_rate_factor(plan.geometry, base_modes)
        for param in plan.owned:
            if id(param) not in spectral and param.requires_grad:
                spectral.add(id(param))
                factors.setdefault(factor, []).append(param)
    rest = [p for p in model.parameters() if id(p) not in spectral and p.requires_grad]
    groups = [{"params": params, "lr": lr * factor, **group_options} for factor, params in sorted(factors.items())]
    if rest:
        groups.append({"params": rest, "lr": lr, **group_options})
    return groups
