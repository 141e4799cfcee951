"""Third-party-style plugins for the tests, and ``installed`` to make them look installed."""

from __future__ import annotations

import contextlib
import sys
from importlib.metadata import EntryPoint
from typing import Iterator

import pytest

from spectral_init import plugins as plugins_module
from spectral_init.registry import ENTRY_POINT_GROUP, REGISTRY


@contextlib.contextmanager
def installed(*specs: tuple[str, str]) -> Iterator[None]:
    """The global registry as if these (name, "module[:attr]") entry points were installed.

    A copy of the registry with plugins not yet loaded and the plugin modules not yet
    imported; the registry, the entry points and ``sys.modules`` are restored on exit.
    """
    points = [EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP) for name, value in specs]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(REGISTRY, "_items", dict(REGISTRY._items))
        mp.setattr(REGISTRY, "_plugins_loaded", False)
        mp.setattr(plugins_module, "entry_points", lambda group: [p for p in points if p.group == group])
        for module in [m for m in sys.modules if m.startswith(f"{__name__}.")]:
            mp.delitem(sys.modules, module)
        yield
