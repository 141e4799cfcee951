"""Layer adapters: ``register_layer_adapter`` / ``get_layer_adapter`` / ``available_layer_adapters``.

An adapter recognizes one kind of spectral layer (``matches(module)``) and lists
its spectral weights as ``WeightPlan``s (``plan(qualified_name, module)``).
``initialize_``, ``calibrate_``, ``spectral_layer_kinds`` and ``audit`` all find
weights through the adapters, tried in registration order: the built-ins first,
then third-party adapters from the entry-point group
``spectral_init.layer_adapters`` (a module that registers on import, an adapter,
or a function that registers when called).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from ..plugins import PluginRegistry
from .plan import WeightPlan

__all__ = [
    "ADAPTERS",
    "LAYER_ADAPTER_ENTRY_POINT_GROUP",
    "LayerAdapter",
    "UnknownLayerAdapterError",
    "available_layer_adapters",
    "get_layer_adapter",
    "register_layer_adapter",
]

LAYER_ADAPTER_ENTRY_POINT_GROUP = "spectral_init.layer_adapters"


class UnknownLayerAdapterError(ValueError):
    """A layer adapter name that is not registered; the message lists the known ones."""


@dataclass(frozen=True, eq=False)
class LayerAdapter:
    """Recognizes one kind of spectral layer and plans the draw of its weights.

    ``unavailable()`` says why the adapter cannot recognize anything here (its package
    does not import), or None when it can.
    """

    name: str
    description: str
    package: str
    layout: str
    matches: Callable[[nn.Module], bool]
    plan: Callable[[str, nn.Module], list[WeightPlan]]
    unavailable: Callable[[], str | None] = lambda: None


ADAPTERS: PluginRegistry[LayerAdapter] = PluginRegistry(
    "layer adapter", "layer adapters", LAYER_ADAPTER_ENTRY_POINT_GROUP, UnknownLayerAdapterError,
    lookup_noun="spectral layer adapter",
)


def register_layer_adapter(
    name: str,
    *,
    matches: Callable[[nn.Module], bool],
    plan: Callable[[str, nn.Module], list[WeightPlan]],
    description: str,
    package: str = "",
    layout: str = "",
    unavailable: Callable[[], str | None] | None = None,
    override: bool = False,
) -> LayerAdapter:
    """Register an adapter: ``matches(module) -> bool``, ``plan(qualified_name, module) -> [WeightPlan]``.

    Build plans with ``dense_plan``, ``real_view_plan`` or ``factorized_plan``
    (``spectral_init.adapters``). A name already taken raises unless ``override=True``.
    """
    if not (callable(matches) and callable(plan)):
        raise TypeError("register_layer_adapter needs callables matches(module) and plan(name, module)")
    adapter = LayerAdapter(name, description, package, layout, matches, plan,
                           unavailable if unavailable is not None else (lambda: None))
    return ADAPTERS.add(adapter, override=override)


def get_layer_adapter(name: str) -> LayerAdapter:
    """The adapter registered under ``name`` (any case, ``-`` or ``_``)."""
    return ADAPTERS.get(name)


def available_layer_adapters() -> list[str]:
    """Sorted names of every registered adapter, plugins included."""
    return ADAPTERS.names()
