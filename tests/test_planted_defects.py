"""planted_defects.py names its defect in the environment, and the properties' conftest plants it in
every process that runs tests — under pyproject's ``-n auto`` the xdist workers, which a defect planted
only in the launching process never reached (the script then exited 0 with the defect in place)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "properties"))
import planted_defects  # noqa: E402  (a script beside the property tests, not a package)


def test_the_defect_named_in_the_environment_is_planted(monkeypatch, isolated_registry) -> None:
    import spectral_init as si

    monkeypatch.setenv(planted_defects.ENV_VAR, "sqrt_in-15-percent")
    assert planted_defects.plant_from_environment() == "sqrt_in-15-percent"
    assert si.get_strategy("sqrt_in").description == "PLANTED DEFECT in sqrt_in"
    monkeypatch.setenv(planted_defects.ENV_VAR, "sqrt_in-1")
    with pytest.raises(pytest.UsageError, match="names no defect"):
        planted_defects.plant_from_environment()
    monkeypatch.setenv(planted_defects.ENV_VAR, "none")
    assert planted_defects.plant_from_environment() is None


def test_the_script_hands_the_defect_to_the_test_processes(monkeypatch) -> None:
    monkeypatch.setenv(planted_defects.ENV_VAR, "none")  # restored after, whatever main() sets
    seen = {}
    monkeypatch.setattr(planted_defects.pytest, "main", lambda args: seen.update(
        env=planted_defects.os.environ.get(planted_defects.ENV_VAR), args=args) or 1)
    assert planted_defects.main(["gain-linear", "-x"]) == 1
    # nothing planted here: the environment carries it to whichever process runs the tests
    assert seen["env"] == "gain-linear" and seen["args"][-1] == "-x"
    import spectral_init as si

    assert "PLANTED" not in si.get_strategy("kaiming-complex").description
