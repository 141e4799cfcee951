"""Third-party-style plugins for the tests, and ``installed`` to make them look installed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest

from spectral_init import plugins as plugins_module
from spectral_init.adapters import ADAPTERS
from spectral_init.registry import ENTRY_POINT_GROUP, REGISTRY


@contextlib.contextmanager
def installed(*specs: tuple[str, str], group: str = ENTRY_POINT_GROUP) -> Iterator[None]:
    """The global registries as if these (name, "module[:attr]") entry points of ``group`` were installed.

    Copies of the strategy and layer-adapter registries with plugins not yet loaded and the plugin
    modules not yet imported; the registries, the entry points and ``sys.modules`` are restored on exit.
    """
    points = [EntryPoint(name=name, value=value, group=group) for name, value in specs]
    with pytest.MonkeyPatch.context() as mp:
        for registry in (REGISTRY, ADAPTERS):
            mp.setattr(registry, "_items", dict(registry._items))
            mp.setattr(registry, "_plugins_loaded", False)
        mp.setattr(plugins_module, "entry_points", lambda group: [p for p in points if p.group == group])
        for module in [m for m in sys.modules if m.startswith(f"{__name__}.")]:
            mp.delitem(sys.modules, module)
        yield
