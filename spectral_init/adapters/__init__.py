"""Layer adapters: how each kind of spectral layer's weights are found, described and written.

Built-in, tried in this order: this package's layers and any layer with
``spectral_weights()`` (``native``), neuraloperator's ``SpectralConv``, legacy
``SpectralConv1d/2d/3d`` and ``SphericalConv`` (``neuralop``), and the Li et al. /
PhysicsNeMo layer (``li_fno``). Third parties register theirs with
``register_layer_adapter`` or through the entry-point group
``spectral_init.layer_adapters``.
"""

# Importing them registers the built-ins; they are tried in this order (a layer with spectral_weights()
# is its own authority, so it comes first).
from . import native  # noqa: F401  # isort: skip
from . import neuralop  # noqa: F401  # isort: skip
from . import li_fno  # noqa: F401  # isort: skip
from .plan import WeightPlan, dense_plan, factorized_plan, real_view_plan
from .registry import (
    ADAPTERS,
    LAYER_ADAPTER_ENTRY_POINT_GROUP,
    LayerAdapter,
    UnknownLayerAdapterError,
    available_layer_adapters,
    get_layer_adapter,
    register_layer_adapter,
)

__all__ = [
    "ADAPTERS",
    "LAYER_ADAPTER_ENTRY_POINT_GROUP",
    "LayerAdapter",
    "UnknownLayerAdapterError",
    "WeightPlan",
    "available_layer_adapters",
    "dense_plan",
    "factorized_plan",
    "get_layer_adapter",
    "real_view_plan",
    "register_layer_adapter",
]
