"""Shared fixtures: an isolated strategy registry and a clean SPECTRAL_INIT_* environment."""

from __future__ import annotations

import os

import pytest

from spectral_init.registry import REGISTRY
from ptycho_torch.generators.spectral_conv import BACKEND_ENV_VAR


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's SPECTRAL_INIT_* or backend variables."""
    for name in list(os.environ):
        if name.startswith("SPECTRAL_INIT_") or name == BACKEND_ENV_VAR:
            monkeypatch.delenv(name)


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch):
    """The global registry, restored after the test: registrations made in it vanish."""
    monkeypatch.setattr(REGISTRY, "_strategies", dict(REGISTRY._strategies))
    monkeypatch.setattr(REGISTRY, "_plugins_loaded", REGISTRY._plugins_loaded)
    return REGISTRY
