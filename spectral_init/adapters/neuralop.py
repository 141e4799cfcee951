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

import torch.nn as nn

from ..geometry import SpectralGeometry
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


def _channels(conv: nn.Module) -> tuple[int, int]:
    return (1, 1) if getattr(conv, "separable", False) else (int(conv.in_channels), int(conv.out_channels))


def _kept_modes(weight: nn.Module, conv: nn.Module) -> tuple[int, ...]:
    shape = tuple(int(s) for s in weight.shape)
    return shape[1:] if getattr(conv, "separable", False) else shape[2:]


def _qualified(name: str, attribute: str) -> str:
    return f"{name}.{attribute}" if name else attribute


# SpectralConv -------------------------------------------------------------------------------------

def _spectral_conv_type() -> type | None:
    return _import("neuralop.layers.spectral_convolution", "SpectralConv")


def _plan_spectral_conv(name: str, conv: nn.Module) -> list[WeightPlan]:
    modes = _kept_modes(conv.weight, conv)
    geometry = SpectralGeometry(*_channels(conv), branches=1, modes=modes)
    separable = " separable" if getattr(conv, "separable", False) else ""
    kind = f"neuralop SpectralConv {len(modes)}-D {factorization_of(conv.weight)}{separable}"
    return [factorized_plan(_qualified(name, "weight"), kind, conv.weight, geometry)]


register_layer_adapter(
    "neuralop-spectral-conv", package="neuraloperator", layout="dense, tucker, cp or tt (complex)",
    matches=lambda m: (t := _spectral_conv_type()) is not None and isinstance(m, t),
    plan=_plan_spectral_conv,
    unavailable=lambda: None if _spectral_conv_type() else "neuraloperator is not installed",
    description="neuralop.layers.spectral_convolution.SpectralConv in any dimension (FNO, TFNO): one weight "
    "(in, out, kept modes…), dense or factorized, separable too.",
)


# legacy SpectralConv ------------------------------------------------------------------------------

def _legacy_type() -> type | None:
    return _import("neuralop.layers.legacy_spectral_convolution", "SpectralConv")


def _plan_legacy(name: str, conv: nn.Module) -> list[WeightPlan]:
    joint = not isinstance(conv.weight, nn.ModuleList)
    weights = [("weight", conv.weight)] if joint else [(f"weight.{i}", w) for i, w in enumerate(conv.weight)]
    order = int(conv.order)
    half = tuple(int(s) for s in weights[0][1].shape[-order:])
    modes = tuple(2 * h for h in half[:-1]) + half[-1:]
    geometry = SpectralGeometry(*_channels(conv), branches=1, modes=modes)
    kind = f"neuralop legacy {type(conv).__name__} {order}-D {factorization_of(weights[0][1])}"
    return [factorized_plan(_qualified(name, attr), kind, w, geometry) for attr, w in weights]


register_layer_adapter(
    "neuralop-legacy-spectral-conv", package="neuraloperator", layout="one real (…, 2) view per corner",
    matches=lambda m: (t := _legacy_type()) is not None and isinstance(m, t),
    plan=_plan_legacy,
    unavailable=lambda: None if _legacy_type() else "neuraloperator is not installed",
    description="neuraloperator's legacy SpectralConv and SpectralConv1d/2d/3d: one weight per corner of the "
    "kept frequencies, stored as real (…, 2) views; joint factorization too.",
)


# SphericalConv ------------------------------------------------------------------------------------

def _spherical_type() -> type | None:
    return _import("neuralop.layers.spherical_convolution", "SphericalConv")


def _spherical_unavailable() -> str | None:
    if _spherical_type() is not None:
        return None
    if _spectral_conv_type() is None:
        return "neuraloperator is not installed"
    return "torch_harmonics does not import (neuraloperator's SphericalConv needs it)"


def _plan_spherical(name: str, conv: nn.Module) -> list[WeightPlan]:
    modes = _kept_modes(conv.weight, conv)
    geometry = SpectralGeometry(*_channels(conv), branches=1, modes=modes)
    kind = f"neuralop SphericalConv {factorization_of(conv.weight)}"
    return [factorized_plan(_qualified(name, "weight"), kind, conv.weight, geometry)]


register_layer_adapter(
    "neuralop-spherical-conv", package="neuraloperator + torch_harmonics", layout="dense, tucker, cp or tt "
    "(real (…, 2) views)",
    matches=lambda m: (t := _spherical_type()) is not None and isinstance(m, t),
    plan=_plan_spherical,
    unavailable=_spherical_unavailable,
    description="neuraloperator's SphericalConv (SFNO): one weight (in, out, degrees) over spherical-harmonic "
    "degrees.",
)
