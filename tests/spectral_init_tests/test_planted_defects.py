"""planted_defects.py names its defect in the environment, and the properties' conftest plants it in
every process that runs tests — under pyproject's ``-n auto`` the xdist workers, which a defect planted
only in the launching process never reached (the script then exited 0 with the defect in place)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "properties"))
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


@pytest.mark.heavy
@pytest.mark.stress  # a whole property suite in subprocesses; the hand-over itself is tested above
def test_the_suite_catches_a_planted_defect_under_the_default_options() -> None:
    """The script as a user runs it, with pyproject's options (``-n auto``): sqrt_in drawing 15% too much
    variance fails sqrt_in's property tests — pytest's exit 1, failures, not 0 (caught nothing) nor a
    crash. Derandomized (the ci hypothesis profile), so it cannot pass by chance."""
    script = Path(__file__).resolve().parents[1] / "properties" / "planted_defects.py"
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
    done = subprocess.run([sys.executable, str(script), "sqrt_in-15-percent", "-k", "sqrt_in"],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert " failed" in done.stdout
