"""Plant a known defect through the public API, then run the property suite: it must fail.

    python tests/properties/planted_defects.py DEFECT [pytest args...]
    python tests/properties/planted_defects.py --list

Each defect re-registers a built-in with ``override=True`` keeping its declared E|w|², so only
the draws are wrong — what a subtly broken strategy looks like. Exit status: pytest's (1 when the
suite caught the defect); ``none`` runs the suite unchanged.

The defect is named in the environment (``PLANTED_DEFECT``) and planted by the properties'
conftest in every process that runs tests: under pyproject's ``-n auto`` those are xdist workers,
which would never see a defect planted in this process only.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import spectral_init as si
from spectral_init.strategies.scaling import DISTRIBUTION_LABELS, complex_normal_

NORMAL = DISTRIBUTION_LABELS["complex_normal"]
ENV_VAR = "PLANTED_DEFECT"


def _override(name: str, fill: Callable[..., object]) -> None:
    builtin = si.get_strategy(name)
    si.register_strategy(
        name, second_moment=builtin.second_moment_fn, description=f"PLANTED DEFECT in {name}",
        override=True, formula=builtin.formula, distribution=builtin.distribution,
    )(fill)


def sqrt_in_15_percent_too_large() -> None:
    def fill(weight, *, in_channels, out_channels, gain, generator):
        complex_normal_(weight, 1.15 * gain**2 / in_channels, generator)
    _override("sqrt_in", fill)


def xavier_shrinks_with_modes() -> None:
    def fill(weight, *, in_channels, out_channels, gain, generator):
        modes = weight.numel() // (in_channels * out_channels)
        complex_normal_(weight, 2 * gain**2 / (in_channels + out_channels) / modes, generator)
    _override("xavier-complex", fill)


def real_part_larger() -> None:
    """sqrt_in with Var(Re) = 0.6·E|w|², Var(Im) = 0.4·E|w|²: E|w|² itself is right."""
    def fill(weight, *, in_channels, out_channels, gain, generator):
        second_moment = gain**2 / in_channels
        parts = torch.view_as_real(weight)
        parts[..., 0].normal_(0, math.sqrt(0.6 * second_moment), generator=generator)
        parts[..., 1].normal_(0, math.sqrt(0.4 * second_moment), generator=generator)
    _override("sqrt_in", fill)


def gain_enters_linearly() -> None:
    def fill(weight, *, in_channels, out_channels, gain, generator):
        complex_normal_(weight, 2 * gain / in_channels, generator)
    _override("kaiming-complex", fill)


def summed_branches_ignored() -> None:
    """sqrt_in filling gain²/in on every layer: right for one branch, twice too large where two are summed."""
    def fill(weight, *, in_channels, out_channels, gain, generator):
        complex_normal_(weight, gain**2 / in_channels, generator)
    _override("sqrt_in", fill)


DEFECTS: dict[str, Callable[[], None] | None] = {
    "none": None,
    "sqrt_in-15-percent": sqrt_in_15_percent_too_large,
    "xavier-shrinks-with-modes": xavier_shrinks_with_modes,
    "real-part-larger": real_part_larger,
    "gain-linear": gain_enters_linearly,
    "summed-branches-ignored": summed_branches_ignored,
}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--list"]:
        print("defects: " + ", ".join(DEFECTS))
        return 0
    if not argv or argv[0] not in DEFECTS:
        got = repr(argv[0]) if argv else "nothing"
        print(f"usage: planted_defects.py DEFECT [pytest args...]; DEFECT is one of {', '.join(DEFECTS)}; got {got}",
              file=sys.stderr)
        return 2
    os.environ[ENV_VAR] = argv[0]  # read by conftest.py here and in each worker: see plant_from_environment
    return pytest.main([str(Path(__file__).parent), "-q", "-p", "no:cacheprovider", *argv[1:]])


def plant_from_environment() -> str | None:
    """Plant the defect ``PLANTED_DEFECT`` names (nothing when unset or ``none``); its name, or None.
    An unknown name is a usage error, not a silently clean run."""
    name = os.environ.get(ENV_VAR)
    if not name or name == "none":
        return None
    if name not in DEFECTS:
        raise pytest.UsageError(f"{ENV_VAR}={name!r} names no defect; one of {', '.join(DEFECTS)}")
    DEFECTS[name]()
    return name


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
