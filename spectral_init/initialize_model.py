"""``initialize_(module, spectral_init)``: re-draw every spectral weight of any model, with a report.

Weights are found by the layer adapters (``spectral_init.adapters``; ``spectral-init
adapters`` lists them): this package's layers and anything with ``spectral_weights()``,
neuraloperator's ``SpectralConv`` (dense, tucker, cp, tt, separable), legacy
``SpectralConv1d/2d/3d`` and ``SphericalConv``, and the Li et al. / PhysicsNeMo layer.
A parameter held by several modules (the FFNO stack's shared layer) is drawn once.

Never a silent no-op: with ``strict`` (the default), a model in which no adapter
recognizes a spectral weight, or which holds a parameter that looks spectral but no
adapter claims (see ``spectral_init.adapters.discovery``), raises a ValueError naming
each, before anything changes; with ``strict=False`` each is a warning.

All draws are made and checked first, and only then written, so a failure leaves
every weight as it was. With one seeded initializer the weights are drawn in module
order from one stream: same seed, same weights. How factorized weights are drawn to
the strategy's E|w|² is derived in ``spectral_init.adapters.plan``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from .adapters.discovery import find_spectral_weights
from .analysis.calibrate import CalibrationReport, calibrate_
from .geometry import SpectralGeometry
from .settings import SpectralInitSettings
from .spectral_initializer import SpectralInitializer, all_finite, make_initializer

__all__ = [
    "InitReport",
    "InitializedWeight",
    "UnrecognizedSpectralWeightWarning",
    "initialize_",
    "spectral_layer_kinds",
]


class UnrecognizedSpectralWeightWarning(UserWarning):
    """``initialize_(…, strict=False)`` left a spectral-looking parameter it does not know as it was,
    or found no spectral weight at all."""


@dataclass(frozen=True)
class InitializedWeight:
    """One re-drawn weight: its qualified name, layer kind, adapter, layout, shape and the E|w|² it now
    has in expectation."""

    name: str
    kind: str
    shape: tuple[int, ...]
    second_moment: float
    geometry: SpectralGeometry
    adapter: str = ""
    layout: str = ""


@dataclass
class InitReport:
    """What ``initialize_`` did: the settings used and every weight re-drawn, in module order."""

    settings: SpectralInitSettings
    weights: list[InitializedWeight] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    calibration: CalibrationReport | None = None  # where a calibration_batch was given

    @property
    def per_adapter(self) -> dict[str, int]:
        """How many weights each adapter re-drew."""
        return dict(Counter(w.adapter for w in self.weights))

    def __str__(self) -> str:
        s = self.settings
        by_adapter = ", ".join(f"{n} by {a}" for a, n in self.per_adapter.items())
        lines = [f"spectral init {s.strategy} (gain {s.gain:g}, seed {s.seed}): {len(self.weights)} weights"
                 + (f" ({by_adapter})" if by_adapter else "")]
        width = max((len(w.name) for w in self.weights), default=4)
        for w in self.weights:
            shape = "×".join(map(str, w.shape))
            lines.append(f"  {w.name:<{width}}  {w.kind:<32} {shape:<18} E|w|² = {w.second_moment:.6g}")
        lines += [f"  left as it was (not recognised): {name}" for name in self.skipped]
        return "\n".join(lines)


def spectral_layer_kinds(module: nn.Module) -> dict[str, int]:
    """How many spectral layers of each kind ``module`` holds, a shared layer once: what actually runs.

    Kinds are those of ``InitReport``: this package's layer classes
    (``SpectralConv2d``, ``NeuralopSpectralConv2d``, ``FactorizedSpectralConv2d``),
    ``neuralop SpectralConv <d>-D <weight>`` for neuraloperator's own layers, and so on.
    """
    plans, _ = find_spectral_weights(module)
    kind_of_layer = {id(plan.module): plan.kind for plan in plans}
    return dict(Counter(kind_of_layer.values()))


_HOW_TO_FIX = ("Register a layer adapter for it (spectral_init.register_layer_adapter, or the entry-point group "
               "spectral_init.layer_adapters), give its module a spectral_weights() method returning (name, "
               "parameter, SpectralGeometry) triples, or pass strict=False.")


def _check_coverage(found: int, unclaimed: list[tuple[str, torch.Tensor]], strict: bool) -> None:
    """Raise (strict) or warn about unclaimed spectral-looking parameters and about finding nothing."""
    problems = []
    if unclaimed:
        names = ", ".join(f"{n!r} {tuple(p.shape)} {str(p.dtype).removeprefix('torch.')}" for n, p in unclaimed)
        problems.append(f"parameters that look spectral but no layer adapter claims: {names}")
    if not found:
        problems.append("no layer adapter recognizes a spectral weight in this model")
    if not problems:
        return
    if strict:
        raise ValueError(f"initialize_: {'; '.join(problems)}. Nothing was changed. {_HOW_TO_FIX}")
    for problem in problems:
        warnings.warn(f"initialize_: {problem}; left as it was", UnrecognizedSpectralWeightWarning, stacklevel=3)


def initialize_(
    module: nn.Module,
    spectral_init: SpectralInitializer | SpectralInitSettings | str | dict[str, Any] | None = None,
    *,
    strict: bool = True,
    calibration_batch: torch.Tensor | None = None,
) -> InitReport:
    """Re-draw every spectral weight of ``module`` in place as ``spectral_init`` says; return a report.

    Settings with ``calibrate=True`` need a ``calibration_batch``: after the draw, ``calibrate_``
    rescales each spectral layer on it (its report in ``InitReport.calibration``); without one they
    raise a ValueError before anything changes, rather than skip the calibration they ask for. A
    ``calibration_batch`` given with other settings calibrates too.

    ``spectral_init``: a strategy name, settings, a dict of their fields, an
    initializer, or ``None`` (defaults and ``SPECTRAL_INIT_*``). ``strict``: a
    model with no recognized spectral weight, or with a spectral-looking parameter
    no adapter claims, raises a ValueError before anything changes; otherwise each
    is an ``UnrecognizedSpectralWeightWarning``. On any failure no weight changes.
    Layers of this package are re-bound to the new settings, so their
    ``reset_parameters()`` and reprs follow them.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"initialize_ takes a torch.nn.Module; got {type(module).__name__}")
    initializer = make_initializer(spectral_init)
    if initializer.settings.calibrate and calibration_batch is None:
        raise ValueError("these settings ask for calibrate=True: pass calibration_batch= (a batch of the model's "
                         "input) to calibrate after the draw, or call spectral_init.calibrate_(model, batch) "
                         "yourself; nothing was changed")
    plans, unclaimed = find_spectral_weights(module)
    _check_coverage(len(plans), unclaimed, strict)
    # factorized plans draw their factors themselves, not through SpectralInitializer.draft: checked here too
    drafts = [plan.draw(initializer) for plan in plans]
    for plan, plan_drafts in zip(plans, drafts):
        if not all(all_finite(d) for d in plan_drafts):
            raise FloatingPointError(f"initialize_: non-finite draw for {plan.name}; nothing was changed")
    with torch.no_grad():
        for plan, plan_drafts in zip(plans, drafts):
            for target, draft in zip(plan.targets, plan_drafts):
                target.copy_(draft)
    for mod in module.modules():
        bind = getattr(mod, "bind_spectral_init", None)
        if callable(bind):
            bind(initializer)
    calibration = None
    if calibration_batch is not None:
        calibration = calibrate_(module, calibration_batch)
    return InitReport(
        calibration=calibration,
        settings=initializer.settings,
        weights=[InitializedWeight(plan.name, plan.kind, plan.shape, initializer.second_moment(plan.geometry),
                                   plan.geometry, plan.adapter, plan.layout) for plan in plans],
        skipped=[n for n, _ in unclaimed],
    )
