"""A registry of named things with entry-point plugins: strategies and layer adapters both use it.

Names match case-insensitively with ``-`` and ``_`` equivalent; the name given at
registration stays the canonical one, and items keep their registration order
(layer adapters are tried in that order). Third-party packages add items through
an entry-point group, loaded lazily on the first lookup: an entry point may name a
module that registers on import, an already registered item, or a function that
registers when called. A plugin that fails to load only warns.
"""

from __future__ import annotations

import difflib
import re
import threading
import warnings
from importlib.metadata import entry_points
from typing import Generic, Protocol, TypeVar

__all__ = ["Named", "PluginLoadWarning", "PluginRegistry", "normalize_name"]

_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class PluginLoadWarning(UserWarning):
    """An entry point of a ``spectral_init`` plugin group failed to load."""


def normalize_name(name: str) -> str:
    """The lookup key of a name: case-folded, ``-`` read as ``_``."""
    return name.casefold().replace("-", "_")


class PluginRegistry(Generic[T]):
    """Items by normalized name, in registration order, with entry-point plugins loaded on first lookup.

    ``noun`` and ``plural`` name the items in messages ("strategy", "strategies");
    ``unknown`` is the error raised for a name that is not registered.
    """

    def __init__(self, noun: str, plural: str, entry_point_group: str, unknown: type[ValueError] = ValueError,
                 *, lookup_noun: str | None = None) -> None:
        self.noun, self.plural, self.lookup_noun = noun, plural, lookup_noun or noun
        self._unknown = unknown
        self._items: dict[str, T] = {}
        self._entry_point_group = entry_point_group
        self._plugins_loaded = False
        self._lock = threading.RLock()

    def add(self, item: T, *, override: bool = False) -> T:
        if not isinstance(item.name, str) or not _NAME_PATTERN.match(item.name):
            raise ValueError(
                f"{self.noun} name must start with a letter and contain only letters, digits, "
                f"'-' and '_'; got {item.name!r}"
            )
        key = normalize_name(item.name)
        with self._lock:
            existing = self._items.get(key)
            if existing is not None and not override:
                raise ValueError(
                    f"a {self.noun} named {existing.name!r} is already registered "
                    f"(names match case-insensitively, '-' = '_'); pass override=True to replace it"
                )
            self._items[key] = item
        return item

    def get(self, name: str) -> T:
        if not isinstance(name, str):
            raise TypeError(f"{self.noun} name must be a string; got {type(name).__name__}")
        self.load_plugins()
        item = self._items.get(normalize_name(name))
        if item is None:
            raise self._unknown(self._unknown_message(name))
        return item

    def names(self) -> list[str]:
        """Sorted canonical names, plugins included."""
        return sorted(item.name for item in self.items())

    def items(self) -> list[T]:
        """Every item, plugins included, in registration order."""
        self.load_plugins()
        with self._lock:
            return list(self._items.values())

    def _unknown_message(self, name: str) -> str:
        known = self.names()
        closest = difflib.get_close_matches(
            normalize_name(name), [normalize_name(k) for k in known], n=1, cutoff=0.0
        )
        by_key = {normalize_name(k): k for k in known}
        hint = f"; did you mean {by_key[closest[0]]!r}?" if closest else ""
        return f"unknown {self.lookup_noun} {name!r}{hint} Known {self.plural}: {', '.join(known)}"

    def load_plugins(self) -> None:
        """Import every entry point of the group once; a broken one only warns."""
        with self._lock:
            if self._plugins_loaded:
                return
            # Set first: a plugin that looks up an item while loading must not recurse.
            self._plugins_loaded = True
            for ep in entry_points(group=self._entry_point_group):
                try:
                    loaded = ep.load()
                    if callable(loaded) and not hasattr(loaded, "name"):
                        loaded()
                except Exception as exc:  # noqa: BLE001 - any plugin failure must not break the built-ins
                    warnings.warn(
                        f"spectral_init plugin {ep.name!r} ({ep.value}) failed to load and was "
                        f"skipped: {exc!r}. The other {self.plural} remain available.",
                        PluginLoadWarning,
                        stacklevel=3,
                    )
