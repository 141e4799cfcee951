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
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("spectral-init")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

from .adapters import available_layer_adapters, register_layer_adapter
from .analysis.audit import audit
from .analysis.calibrate import calibrate_
from .geometry import SpectralGeometry
from .initialize_model import initialize_
from .registry import available_strategies, get_strategy, register_strategy
from .settings import SpectralInitSettings
from .spectral_initializer import make_initializer
from .strategies.edge_of_chaos import EdgeOfChaosParams as _EdgeOfChaosParams  # noqa: F401  (registers edge-of-chaos)
from .strategies.mup import mup_param_groups  # registers mup
from .strategies.presets import register_variance_scaling  # importing presets registers the built-ins
from .strategies.scaling import complex_normal_

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
    "AuditReport": "analysis.audit",
    "AuditRow": "analysis.audit",
    "CalibratedLayer": "analysis.calibrate",
    "CalibrationReport": "analysis.calibrate",
    "EdgeOfChaosParams": "strategies.edge_of_chaos",
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
    "VarianceScaling": "strategies.scaling",
    "uniform_parts_": "strategies.scaling",
}
# Submodules moved in 0.4 into ``strategies`` and ``analysis``: an old path still imports, with a
# DeprecationWarning naming the new one. (``spectral_init.audit`` is the function; its module is
# ``spectral_init.analysis.audit``.)
_MOVED_MODULES = {"scaling": "strategies.scaling", "presets": "strategies.presets",
                  "edge_of_chaos": "strategies.edge_of_chaos", "mup": "strategies.mup",
                  "calibrate": "analysis.calibrate", "stack_profile": "analysis.stack_profile"}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``spectral_init.<old>`` as the module that moved, the same object under both names."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        parent, _, name = fullname.rpartition(".")
        if parent != __name__ or name not in _MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        home = f"{__name__}.{_MOVED_MODULES[spec.name.rpartition('.')[2]]}"
        warnings.warn(f"{spec.name} moved to {home} (the old path will be removed in 0.5)", DeprecationWarning,
                      stacklevel=2)
        return importlib.import_module(home)

    def exec_module(self, module: Any) -> None:
        """The moved module ran when it was imported under its own name: nothing more to do."""


sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'spectral_init' has no attribute {name!r}")
    home = f"spectral_init.{_MOVED[name]}"
    warnings.warn(f"spectral_init.{name} moved to {home}: use 'from {home} import {name}' (the top-level name "
                  "will be removed in 0.4)", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(__all__)
