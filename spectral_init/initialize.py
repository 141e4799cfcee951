"""``initialize_(module, spectral_init)``: re-draw every spectral weight of any model, with a report.

Recognised layers:

- any module with a ``spectral_weights()`` method returning
  ``(name, complex parameter, SpectralGeometry)`` triples — this package's
  2-D layer and its neuraloperator wrapper, the factorized FFNO layer, and
  third-party layers that adopt the method;
- neuraloperator's ``SpectralConv`` in any dimension, with a dense weight or a
  tucker, cp or tt factorized one (hence ``FNO`` and ``TFNO`` models).

A parameter held by several modules (the FFNO stack's shared layer) is drawn
once. All draws are made and checked first, and only then written, so a
failure leaves every weight as it was. With one seeded initializer the
weights are drawn in module order from one stream: same seed, same weights.

Factorized weights. A factorized weight is a sum of ``T``-fold products of
independent tensors (tucker: core and one factor per mode; cp: one factor per
mode, with the cp weights λ set to 1; tt: one core per mode). Every entry of
the reconstructed dense weight is

    W[i] = Σ_{t ∈ terms} Π_{j=1..T} F_j[i, t]

where each term picks one entry from each tensor, and ``n_terms`` is the
number of terms: Π ranks for tucker (the core's size), the rank R for cp, and
Π of the inner ranks r_1…r_{d-1} for tt. Draw every F_j entry independently
from a circular complex normal with E|F_j|² = v. Two different terms differ in
at least one entry of some F_j, and those entries are independent with zero
mean, so the cross terms of |W[i]|² vanish in expectation:

    E|W[i]|² = Σ_terms Π_j E|F_j|² = n_terms · v^T

Choosing v = (target / n_terms)^(1/T) gives every reconstructed entry exactly
the strategy's E|w|² in expectation, for every shape and rank. (tltorch's own
``normal_`` divides a tt weight by the product of all ranks instead of taking
the T-th root of it, hence neuraloperator's tt init being far too small.) The
strategy's distribution is not kept for factorized weights, only its E|w|²:
the factors are always circular complex normal.

A separable neuraloperator ``SpectralConv`` (weight (channels, modes…),
y_c = w_c·x_c) has fan 1 each way.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn

from .geometry import SpectralGeometry
from .initializer import SpectralInitializer, make_initializer
from .scaling import complex_normal_
from .settings import SpectralInitSettings

__all__ = [
    "InitReport",
    "InitializedWeight",
    "UnrecognizedSpectralWeightWarning",
    "initialize_",
    "spectral_layer_kinds",
    "spectral_layers",
]

__all__ = ["InitReport", "InitializedWeight", "UnrecognizedSpectralWeightWarning", "initialize_"]


class UnrecognizedSpectralWeightWarning(UserWarning):
    """``initialize_(…, strict=False)`` left a complex parameter it does not know as it was."""


@dataclass(frozen=True)
class InitializedWeight:
    """One re-drawn weight: its qualified name, layer kind, shape and the E|w|² it now has in expectation."""

    name: str
    kind: str
    shape: tuple[int, ...]
    second_moment: float
    geometry: SpectralGeometry


@dataclass
class InitReport:
    """What ``initialize_`` did: the settings used and every weight re-drawn, in module order."""

    settings: SpectralInitSettings
    weights: list[InitializedWeight] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        s = self.settings
        lines = [f"spectral init {s.strategy} (gain {s.gain:g}, seed {s.seed}): {len(self.weights)} weights"]
        width = max((len(w.name) for w in self.weights), default=4)
        for w in self.weights:
            shape = "×".join(map(str, w.shape))
            lines.append(f"  {w.name:<{width}}  {w.kind:<32} {shape:<18} E|w|² = {w.second_moment:.6g}")
        lines += [f"  left as it was (not recognised): {name}" for name in self.skipped]
        return "\n".join(lines)


@dataclass
class _Planned:
    """A weight to re-draw: where it is, what it is, and how to draw it."""

    name: str
    kind: str
    shape: tuple[int, ...]
    geometry: SpectralGeometry
    parameters: list[torch.Tensor]
    draw: Callable[[SpectralInitializer], list[torch.Tensor]]  # drafts, one per entry of ``parameters``
    scaled: list[torch.Tensor]  # multiplying these by s multiplies the weight by s
    module: nn.Module | None = None  # the layer that holds it (set by ``spectral_layers``)


def _dense_plan(name: str, kind: str, param: torch.Tensor, geometry: SpectralGeometry) -> _Planned:
    return _Planned(name, kind, tuple(param.shape), geometry, [param],
                    lambda init: [init.draft(param, geometry)], scaled=[param])


def _factor_drafts(
    tensors: list[torch.Tensor], n_terms: int, target: float, generator: torch.Generator | None
) -> list[torch.Tensor]:
    """Circular normal drafts with E|F|² = (target / n_terms)^(1/T) each (derivation in the module docstring)."""
    per_tensor = (target / n_terms) ** (1.0 / len(tensors))
    return [complex_normal_(torch.empty(t.shape, dtype=t.dtype), per_tensor, generator) for t in tensors]


def _neuralop_plan(name: str, conv: nn.Module) -> _Planned:
    """The plan for one neuraloperator ``SpectralConv``: dense, tucker, cp or tt."""
    weight = conv.weight
    kind_name = type(weight).__name__.removeprefix("Complex").removesuffix("Tensor").lower()
    separable = bool(getattr(conv, "separable", False))
    shape = tuple(weight.shape)
    modes = shape[1:] if separable else shape[2:]
    channels = (1, 1) if separable else (int(conv.in_channels), int(conv.out_channels))
    geometry = SpectralGeometry(*channels, branches=1, modes=tuple(int(m) for m in modes))
    kind = f"neuralop SpectralConv {len(modes)}-D {kind_name}{' separable' if separable else ''}"
    qualified = f"{name}.weight" if name else "weight"
    if kind_name == "dense":
        return _dense_plan(f"{qualified}.tensor", kind, weight.tensor, geometry)
    if kind_name == "tucker":
        tensors, n_terms, fixed = [weight.core, *weight.factors], math.prod(weight.core.shape), []
    elif kind_name == "cp":
        tensors, n_terms, fixed = list(weight.factors), int(weight.weights.numel()), [weight.weights]
    elif kind_name == "tt":
        tensors = list(weight.factors)
        n_terms, fixed = math.prod(int(f.shape[0]) for f in tensors[1:]), []
    else:
        raise ValueError(f"{qualified}: neuraloperator weight {type(weight).__name__} is not one of "
                         "dense, tucker, cp, tt")

    def draw(init: SpectralInitializer) -> list[torch.Tensor]:
        drafts = _factor_drafts(tensors, n_terms, init.second_moment(geometry), init.generator)
        return drafts + [torch.ones(t.shape, dtype=t.dtype) for t in fixed]  # cp's λ = 1

    return _Planned(qualified, kind, shape, geometry, tensors + fixed, draw, scaled=tensors[:1])


def _neuralop_spectral_conv_type() -> type | None:
    try:  # the PyPI package neuraloperator imports as ``neuralop``
        from neuralop.layers.spectral_convolution import SpectralConv
    except ImportError:
        return None
    return SpectralConv


def spectral_layers(module: nn.Module) -> tuple[list[_Planned], list[tuple[str, torch.Tensor]]]:
    """Every recognised spectral weight once, in module order, and the complex parameters left over."""
    planned: list[_Planned] = []
    covered: set[int] = set()
    neuralop_conv = _neuralop_spectral_conv_type()
    for mod_name, mod in module.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        items: list[_Planned] = []
        if callable(getattr(mod, "spectral_weights", None)):
            items = [_dense_plan(prefix + rel, type(mod).__name__, p, g) for rel, p, g in mod.spectral_weights()]
        elif neuralop_conv is not None and isinstance(mod, neuralop_conv):
            own = [p for p in mod.parameters() if p.is_complex()]
            if own and all(id(p) in covered for p in own):
                continue  # already drawn through a wrapper that lists it (NeuralopSpectralConv2d)
            items = [_neuralop_plan(mod_name, mod)]
        for item in items:
            if all(id(p) in covered for p in item.parameters):
                continue  # a shared layer seen again under another name
            covered.update(id(p) for p in item.parameters)
            item.module = mod
            planned.append(item)
    leftover = [(n, p) for n, p in module.named_parameters() if p.is_complex() and id(p) not in covered]
    return planned, leftover


def spectral_layer_kinds(module: nn.Module) -> dict[str, int]:
    """How many spectral layers of each kind ``module`` holds, a shared layer once: what actually runs.

    Kinds are those of ``InitReport``: this package's layer classes
    (``SpectralConv2d``, ``NeuralopSpectralConv2d``, ``FactorizedSpectralConv2d``)
    and ``neuralop SpectralConv <d>-D <weight>`` for neuraloperator's own layers.
    """
    planned, _ = spectral_layers(module)
    kind_of_layer = {id(item.module): item.kind for item in planned}
    return dict(Counter(kind_of_layer.values()))


def initialize_(
    module: nn.Module,
    spectral_init: SpectralInitializer | SpectralInitSettings | str | dict[str, Any] | None = None,
    *,
    strict: bool = True,
) -> InitReport:
    """Re-draw every spectral weight of ``module`` in place as ``spectral_init`` says; return a report.

    ``spectral_init``: a strategy name, settings, a dict of their fields, an
    initializer, or ``None`` (defaults and ``SPECTRAL_INIT_*``). A complex
    parameter outside every recognised layer raises a ValueError naming it
    before anything changes (``strict``), or is left as it was with an
    ``UnrecognizedSpectralWeightWarning``. On any failure no weight changes.
    Layers of this package are re-bound to the new settings, so their
    ``reset_parameters()`` and reprs follow them.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"initialize_ takes a torch.nn.Module; got {type(module).__name__}")
    initializer = make_initializer(spectral_init)
    planned, leftover = spectral_layers(module)
    if leftover and strict:
        names = ", ".join(f"{n!r} {tuple(p.shape)}" for n, p in leftover)
        raise ValueError(
            f"initialize_: complex parameters outside any spectral layer it knows: {names}. Nothing was "
            "changed. Pass strict=False to leave them as they are, or give their module a "
            "spectral_weights() method returning (name, parameter, SpectralGeometry) triples."
        )
    for n, p in leftover:
        warnings.warn(f"initialize_: left the complex parameter {n!r} {tuple(p.shape)} as it was: "
                      "it belongs to no spectral layer this package knows", UnrecognizedSpectralWeightWarning,
                      stacklevel=2)
    drafts = [item.draw(initializer) for item in planned]
    for item, item_drafts in zip(planned, drafts):
        if not all(torch.isfinite(torch.view_as_real(d)).all() for d in item_drafts):
            raise FloatingPointError(f"initialize_: non-finite draw for {item.name}; nothing was changed")
    with torch.no_grad():
        for item, item_drafts in zip(planned, drafts):
            for param, draft in zip(item.parameters, item_drafts):
                param.copy_(draft)
    for mod in module.modules():
        bind = getattr(mod, "bind_spectral_init", None)
        if callable(bind):
            bind(initializer)
    return InitReport(
        settings=initializer.settings,
        weights=[InitializedWeight(item.name, item.kind, item.shape, initializer.second_moment(item.geometry),
                                   item.geometry) for item in planned],
        skipped=[n for n, _ in leftover],
    )
