"""Named, tested initialization strategies for the complex weights of FNO spectral convolutions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spectral-init")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

from .adapters import (
    LAYER_ADAPTER_ENTRY_POINT_GROUP,
    LayerAdapter,
    UnknownLayerAdapterError,
    WeightPlan,
    available_layer_adapters,
    dense_plan,
    factorized_plan,
    get_layer_adapter,
    real_view_plan,
    register_layer_adapter,
)
from .audit import AuditReport, AuditRow, IdenticalSpectralWeightsWarning, audit
from .calibrate import CalibratedLayer, CalibrationReport, calibrate_
from .edge_of_chaos import EdgeOfChaosParams  # importing it registers the edge-of-chaos strategy
from .geometry import SpectralGeometry
from .initialize_model import (
    InitializedWeight,
    InitReport,
    UnrecognizedSpectralWeightWarning,
    initialize_,
    spectral_layer_kinds,
)
from .plugins import PluginLoadWarning, normalize_name
from .presets import register_variance_scaling  # importing presets registers the built-ins
from .registry import (
    ENTRY_POINT_GROUP,
    Strategy,
    UnknownStrategyError,
    available_strategies,
    get_strategy,
    register_strategy,
)
from .scaling import VarianceScaling, complex_normal_, uniform_parts_
from .settings import MisspelledEnvironmentWarning, SpectralInitSettings, SpectralInitSpec, resolve_settings
from .spectral_initializer import SpectralInitializer, init_spectral_weight_, make_initializer

__all__ = [
    "__version__",
    "AuditReport",
    "AuditRow",
    "CalibratedLayer",
    "CalibrationReport",
    "ENTRY_POINT_GROUP",
    "EdgeOfChaosParams",
    "IdenticalSpectralWeightsWarning",
    "InitReport",
    "InitializedWeight",
    "LAYER_ADAPTER_ENTRY_POINT_GROUP",
    "LayerAdapter",
    "MisspelledEnvironmentWarning",
    "PluginLoadWarning",
    "SpectralInitSettings",
    "SpectralInitSpec",
    "SpectralGeometry",
    "SpectralInitializer",
    "Strategy",
    "UnknownLayerAdapterError",
    "UnknownStrategyError",
    "UnrecognizedSpectralWeightWarning",
    "VarianceScaling",
    "WeightPlan",
    "audit",
    "available_layer_adapters",
    "available_strategies",
    "calibrate_",
    "complex_normal_",
    "dense_plan",
    "factorized_plan",
    "get_layer_adapter",
    "get_strategy",
    "init_spectral_weight_",
    "initialize_",
    "make_initializer",
    "normalize_name",
    "real_view_plan",
    "register_layer_adapter",
    "register_strategy",
    "register_variance_scaling",
    "resolve_settings",
    "spectral_layer_kinds",
    "uniform_parts_",
]
