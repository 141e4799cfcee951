"""This package's layers, and any layer with a ``spectral_weights()`` method.

``spectral_weights()`` returns ``(name relative to the module, complex parameter,
SpectralGeometry)`` triples: the layer itself says its channels, summed branches
(2 for the factorized FFNO layer, whose W- and H-axis branches are added) and kept
modes, so nothing has to be inferred. Third-party layers can adopt the method
instead of registering an adapter.
"""

from __future__ import annotations

import torch.nn as nn

from .plan import WeightPlan, dense_plan
from .registry import register_layer_adapter

__all__: list[str] = []


def _matches(module: nn.Module) -> bool:
    return callable(getattr(module, "spectral_weights", None))


def _plan(name: str, module: nn.Module) -> list[WeightPlan]:
    prefix = f"{name}." if name else ""
    return [dense_plan(prefix + rel, type(module).__name__, p, g) for rel, p, g in module.spectral_weights()]


register_layer_adapter(
    "spectral-weights-protocol", matches=_matches, plan=_plan, package="spectral-init (and adopters)",
    layout="dense complex",
    description="Any module with spectral_weights() -> [(name, complex parameter, SpectralGeometry)]: this "
    "package's SpectralConv2d, NeuralopSpectralConv2d and FactorizedSpectralConv2d.",
)
