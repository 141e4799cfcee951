"""neuraloperator's spectral layers (the PyPI package ``neuraloperator`` imports as ``neuralop``).

Geometry, and why:

- ``SpectralConv`` (any dimension; FNO, TFNO): one weight (in, out, k_1…k_d) — dense, or tucker,
  cp or tt factorized — holding every kept mode (k_i = n_modes_i on the full axes, n_modes_d//2+1
  on the last, half-spectrum axis). Each kept mode maps in → out once: fans in and out, one branch.
  Separable (weight (channels, k…), y_c = w_c·x_c): fan 1 each way.
- legacy ``SpectralConv`` / ``SpectralConv1d/2d/3d`` (``neuralop.layers.legacy_spectral_convolution``):
  2^(d-1) weights per layer, one per corner of the kept frequencies (h_i = n_modes_i//2 each; both
  signs on the first d-1 axes, non-negative on the last), stored as real (…, 2) views by tltorch's
  ``Complex*`` tensors. The corners are disjoint blocks of one operator, not summed branches: each
  output frequency meets exactly one of them, so the fans are in and out, one branch, and the kept
  modes are (2·h_1, …, 2·h_{d-1}, h_d). With ``joint_factorization`` all corners of all
  sub-layers are one stacked tensor (corners·layers, in, out, h…), drawn as one.
- ``SphericalConv`` (SFNO; needs ``torch_harmonics``): one weight (in, out, l) over spherical-harmonic
  degrees l, applied to every order m of a degree: in → out once per coefficient, one branch.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import torch.nn as nn

from ..geometry import ModeRule, SpectralGeometry, both_signs_but_last
from .plan import WeightPlan, factorization_of, factorized_plan
from .registry import register_layer_adapter

__all__: list[str] = []


@functools.cache  # a failed import is not retried for every module of every model
def _import(path: str, name: str) -> type | None:
    try:
        module = __import__(path, fromlist=[name])
    except ImportError:
        return None
    return getattr(module, name, None)


def _loaded(path: str, name: str) -> type | None:
    """The class if its module is imported already. An instance cannot exist before its class's module
    is imported, so matching a model never needs to import neuraloperator (a second of start-up)."""
    return getattr(sys.modules.get(path), name, None)


def _channels(conv: nn.Module) -> tuple[int, int]:
    return (1, 1) if getattr(conv, "separable", False) else (int(conv.in_channels), int(conv.out_channels))


def _qualified(name: str, attribute: str) -> str:
    return f"{name}.{attribute}" if name else attribute


def _half_spectrum(n_modes: tuple[int, ...]) -> tuple[int, ...]:
    """SpectralConv's kept modes for ``n_modes``: all on the full axes, n//2 + 1 on the last (rfft's)."""
    return (*n_modes[:-1], n_modes[-1] // 2 + 1)


def _legacy_corners(n_modes: tuple[int, ...]) -> tuple[int, ...]:
    """The legacy SpectralConv's kept modes for ``n_modes``: corners of n//2 per axis, both signs but on the last."""
    return both_signs_but_last(tuple(n // 2 for n in n_modes))


def _one_weight_plan(label: str, layer_modes: ModeRule | None) -> Callable[[str, nn.Module], list[WeightPlan]]:
    """Plans for a layer with one weight (in, out, kept modes…) or, separable, (channels, kept modes…)."""
    def plan(name: str, conv: nn.Module) -> list[WeightPlan]:
        separable = bool(getattr(conv, "separable", False))
        modes = tuple(int(s) for s in conv.weight.shape[1 if separable else 2:])
        geometry = SpectralGeometry(*_channels(conv), branches=1, modes=modes, layer_modes=layer_modes)
        kind = label.format(d=len(modes)) + f" {factorization_of(conv.weight)}{' separable' if separable else ''}"
        return [factorized_plan(_qualified(name, "weight"), kind, conv.weight, geometry)]
    return plan


def _plan_legacy(name: str, conv: nn.Module) -> list[WeightPlan]:
    joint = not isinstance(conv.weight, nn.ModuleList)
    weights = [("weight", conv.weight)] if joint else [(f"weight.{i}", w) for i, w in enumerate(conv.weight)]
    order = int(conv.order)
    half = tuple(int(s) for s in weights[0][1].shape[-order:])
    geometry = SpectralGeometry(*_channels(conv), branches=1, modes=both_signs_but_last(half),
                                layer_modes=_legacy_corners)
    kind = f"neuralop legacy {type(conv).__name__} {order}-D {factorization_of(weights[0][1])}"
    return [factorized_plan(_qualified(name, attr), kind, w, geometry) for attr, w in weights]


_NOT_INSTALLED = "neuraloperator is not installed"


def _register(name: str, module_path: str, class_name: str, plan: Callable[[str, nn.Module], list[WeightPlan]], *,
              package: str, layout: str, description: str, missing: str = _NOT_INSTALLED) -> None:
    """An adapter for instances of ``module_path.class_name``, unavailable (``missing``) where it does not import."""
    register_layer_adapter(
        name, package=package, layout=layout, description=description, plan=plan,
        matches=lambda m: (t := _loaded(module_path, class_name)) is not None and isinstance(m, t),
        unavailable=lambda: None if _import(module_path, class_name) is not None else
        (_NOT_INSTALLED if _import("neuralop.layers.spectral_convolution", "SpectralConv") is None else missing),
    )


_register(
    "neuralop-spectral-conv", "neuralop.layers.spectral_convolution", "SpectralConv",
    _one_weight_plan("neuralop SpectralConv {d}-D", _half_spectrum), package="neuraloperator",
    layout="dense, tucker, cp or tt (complex)",
    description="neuralop.layers.spectral_convolution.SpectralConv in any dimension (FNO, TFNO): one weight "
    "(in, out, kept modes…), dense or factorized, separable too.",
)
_register(
    "neuralop-legacy-spectral-conv", "neuralop.layers.legacy_spectral_convolution", "SpectralConv", _plan_legacy,
    package="neuraloperator", layout="one real (…, 2) view per corner",
    description="neuraloperator's legacy SpectralConv and SpectralConv1d/2d/3d: one weight per corner of the "
    "kept frequencies, stored as real (…, 2) views; joint factorization too.",
)
_register(
    "neuralop-spherical-conv", "neuralop.layers.spherical_convolution", "SphericalConv",
    _one_weight_plan("neuralop SphericalConv", None), package="neuraloperator + torch_harmonics",
    layout="dense, tucker, cp or tt (real (…, 2) views)",
    description="neuraloperator's SphericalConv (SFNO): one weight (in, out, degrees) over spherical-harmonic "
    "degrees.",
    missing="torch_harmonics does not import (neuraloperator's SphericalConv needs it)",
)
