"""Shared fixtures (an isolated strategy registry, a clean SPECTRAL_INIT_* environment) and the
hypothesis profiles.

Profiles, chosen by ``HYPOTHESIS_PROFILE``; when it is unset, ``ci`` wherever ``CI`` is set, else ``dev``:

- ``ci``: derandomized (the same examples and seeds on every run), no deadline, no example
  database, 50 examples per property;
- ``dev``: random examples, 50 per property, failures remembered in ``.hypothesis/``;
- ``thorough``: 1000 examples per property, for a nightly run or a release.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# torch and the packages that import it load in the fixtures, not here: under xdist the controller
# process reads this file too, and never runs a test (3.5 s of import it would not use)

# Property tests draw tensors of up to 2²¹ elements: slow examples are expected, not a smell.
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, max_examples=50, print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile("dev", deadline=None, max_examples=50, suppress_health_check=_SLOW_IS_FINE)
settings.register_profile("thorough", deadline=None, max_examples=1000, suppress_health_check=_SLOW_IS_FINE)
PROFILES = ("ci", "dev", "thorough")


def _profile_from_environment() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    if chosen not in PROFILES:
        raise pytest.UsageError(f"HYPOTHESIS_PROFILE must be one of {', '.join(PROFILES)}; got {chosen!r}")
    return chosen


settings.load_profile(_profile_from_environment())


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's SPECTRAL_INIT_* or backend variables, and each starts as a fresh
    process would: no misspelled variable reported yet."""
    from ptycho_torch.generators.spectral_conv import BACKEND_ENV_VAR
    from spectral_init import settings as settings_module

    for name in list(os.environ):
        if name.startswith("SPECTRAL_INIT_") or name == BACKEND_ENV_VAR:
            monkeypatch.delenv(name)
    monkeypatch.setattr(settings_module, "_reported", set())


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch):
    """The global registry, restored after the test: registrations made in it vanish."""
    from spectral_init.registry import REGISTRY

    monkeypatch.setattr(REGISTRY, "_items", dict(REGISTRY._items))
    monkeypatch.setattr(REGISTRY, "_plugins_loaded", REGISTRY._plugins_loaded)
    return REGISTRY


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker runs torch on one intra-op thread: two workers with torch's two
    threads each would oversubscribe a 2-core machine."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core, at most 4 (each imports torch and neuraloperator, about 0.5 GB)."""
    return min(os.cpu_count() or 1, 4)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``heavy`` tests first (in their order), so that no worker starts one near the end alone."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
