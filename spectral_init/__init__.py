"""Named, tested initialization strategies for the complex weights of FNO spectral convolutions.

The top level holds one way per job (the rest lives in the submodules named in
``_MOVED``, where it stays importable):

- a model: ``initialize_`` (re-draw every spectral weight), ``calibrate_`` (rescale
  on a batch), ``audit`` (read, change nothing);
- settings: ``SpectralInitSettings`` (a name, a dict or ``None`` work wherever it does);
- strategies: ``available_strategies``, ``get_strategy``, ``register_strategy``,
  ``register_variance_scaling``, and the sampler a fill function calls, ``complex_normal_``;
- scaling the kept modes up: the ``mup`` strategy with ``mup_param_groups`` (μP's learning rates);
- a layer of one's own: ``make_initializer`` (settings bound to one seeded stream,
  called on each weight with its ``SpectralGeometry``);
- a layer of someone else's: ``register_layer_adapter``, ``available_layer_adapters``.
"""

import importlib
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("spectral-init")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

from .adapters import available_layer_adapters, register_layer_adapter
from .audit import audit
from .calibrate import calibrate_
from .edge_of_chaos import EdgeOfChaosParams as _EdgeOfChaosParams  # noqa: F401  (registers edge-of-chaos)
from .geometry import SpectralGeometry
from .initialize_model import initialize_
from .mup import mup_param_groups  # registers mup
from .presets import register_variance_scaling  # importing presets registers the built-ins
from .registry import available_strategies, get_strategy, register_strategy
from .scaling import complex_normal_
from .settings import SpectralInitSettings
from .spectral_initializer import make_initializer

__all__ = [
    "__version__",
    "SpectralGeometry",
    "SpectralInitSettings",
    "audit",
    "available_layer_adapters",
    "available_strategies",
    "calibrate_",
    "complex_normal_",
    "get_strategy",
    "initialize_",
    "make_initializer",
    "mup_param_groups",
    "register_layer_adapter",
    "register_strategy",
    "register_variance_scaling",
]

# Names the top level exported before 0.2, each with the submodule that holds it now. Reading one
# here still works, with a DeprecationWarning naming the new import.
_MOVED = {
    "AuditReport": "audit",
    "AuditRow": "audit",
    "CalibratedLayer": "calibrate",
    "CalibrationReport": "calibrate",
    "EdgeOfChaosParams": "edge_of_chaos",
    "ENTRY_POINT_GROUP": "registry",
    "Strategy": "registry",
    "UnknownStrategyError": "registry",
    "InitReport": "initialize_model",
    "InitializedWeight": "initialize_model",
    "UnrecognizedSpectralWeightWarning": "initialize_model",
    "spectral_layer_kinds": "initialize_model",
    "LAYER_ADAPTER_ENTRY_POINT_GROUP": "adapters",
    "LayerAdapter": "adapters",
    "UnknownLayerAdapterError": "adapters",
    "WeightPlan": "adapters",
    "dense_plan": "adapters",
    "factorized_plan": "adapters",
    "get_layer_adapter": "adapters",
    "real_view_plan": "adapters",
    "MisspelledEnvironmentWarning": "settings",
    "SpectralInitSpec": "settings",
    "resolve_settings": "settings",
    "PluginLoadWarning": "plugins",
    "normalize_name": "plugins",
    "SpectralInitializer": "spectral_initializer",
    "init_spectral_weight_": "spectral_initializer",
    "VarianceScaling": "scaling",
    "uniform_parts_": "scaling",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'spectral_init' has no attribute {name!r}")
    home = f"spectral_init.{_MOVED[name]}"
    warnings.warn(f"spectral_init.{name} moved to {home}: use 'from {home} import {name}' (the top-level name "
                  "will be removed in 0.4)", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(__all__)
