"""The property tests run against the registry as a user with one third-party plugin has it.

``strategy_name`` is parametrized over ``available_strategies()`` with the test plugin
``plugins.good_plugin`` installed through the entry-point group, so every built-in, that plugin and
any strategy registered before the run (a planted defect, a user's own) is covered without editing
the tests. A strategy that cannot draw without parameters of its own (``mup`` needs ``base_modes``) is
tested by its own property module, named in ``OWN_PROPERTY_TESTS``; any other such strategy fails the
collection rather than go untested.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from draws import needs_params
from planted_defects import ENV_VAR, plant_from_environment
from plugins import installed

import spectral_init as si
from spectral_init.registry import REGISTRY
from spectral_init.strategies.scaling import DISTRIBUTION_LABELS

TEST_PLUGIN = ("fan-out", "plugins.good_plugin")
TEST_PLUGIN_STRATEGY = "plugin-fan-out"
OWN_PROPERTY_TESTS = {"mup": "test_mup_properties.py"}


@contextlib.contextmanager
def plugin_installed() -> Iterator[None]:
    """The global registry with the test plugin's entry point loaded; restored on exit."""
    with installed(TEST_PLUGIN):
        REGISTRY.load_plugins()
        yield


def pytest_configure(config: pytest.Config) -> None:
    """A defect named by planted_defects.py (``PLANTED_DEFECT``), planted in this process: under xdist
    every worker runs this, so the tests that run see it."""
    plant_from_environment()


def pytest_report_header(config: pytest.Config) -> str | None:
    planted = os.environ.get(ENV_VAR)
    return f"planted defect: {planted} (the property tests must fail)" if planted and planted != "none" else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``strategy_name``: every registered strategy; ``normal_strategy_name``: the circular complex normal ones."""
    with plugin_installed():
        names = [n for n in si.available_strategies() if not needs_params(n)]
        untested = {n for n in si.available_strategies() if needs_params(n)} - set(OWN_PROPERTY_TESTS)
        normal = [n for n in names if si.get_strategy(n).distribution == DISTRIBUTION_LABELS["complex_normal"]]
    assert TEST_PLUGIN_STRATEGY in normal
    assert not untested, f"strategies with required parameters and no property tests of their own: {untested}"
    if "strategy_name" in metafunc.fixturenames:
        metafunc.parametrize("strategy_name", names)
    if "normal_strategy_name" in metafunc.fixturenames:
        metafunc.parametrize("normal_strategy_name", normal)


@pytest.fixture(autouse=True)
def registry_with_test_plugin() -> Iterator[None]:
    with plugin_installed():
        yield
