"""The iterative solvers a study can name, each with the probe known and run to convergence: this
package's rPIE (``pie``) and PtyLab's mPIE and ePIE (``ptylab``, when installed)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.dataset import PtychoDataset
from .convergence import CHECKPOINTS, TOLERANCE, ConvergedSolve, solve_to_convergence
from .ptylab import PTYLAB_PACKAGE, ptylab_available, ptylab_to_convergence, ptylab_version

__all__ = ["SOLVERS", "solve_with", "solver_package", "solver_problem"]

SOLVERS = {"rpie": "rPIE (this package)", "ptylab-mpie": "PtyLab mPIE", "ptylab-epie": "PtyLab ePIE"}


def solver_problem(name: str) -> str | None:
    """Why ``name`` cannot solve here (unknown, or its package missing), naming what is allowed or what to
    install; None when it can."""
    if name not in SOLVERS:
        return f"unknown solver {name!r}; allowed: {', '.join(SOLVERS)}"
    if name.startswith("ptylab-") and not ptylab_available():
        return f"{name} needs PtyLab: pip install {PTYLAB_PACKAGE}"
    return None


def solver_package(name: str) -> str:
    """What solved, for the record: ``"spectral-init rPIE"`` or ``"ptylab 0.3.7 mPIE"``."""
    if name == "rpie":
        return "spectral-init rPIE"
    return f"{ptylab_version()} {SOLVERS[name].removeprefix('PtyLab ')}"


def solve_with(name: str, data: PtychoDataset, checkpoints: Sequence[int] = CHECKPOINTS,
               tolerance: float = TOLERANCE, seed: int = 0,
               starts: Sequence[torch.Tensor] | None = None) -> ConvergedSolve:
    """Every object of ``data`` by the solver ``name`` (``SOLVERS``) to convergence, from ``starts`` or flat."""
    problem = solver_problem(name)
    if problem is not None:
        raise ValueError(problem)
    if name == "rpie":
        return solve_to_convergence(data, checkpoints, tolerance, seed=seed, starts=starts)
    engine = "mPIE" if name == "ptylab-mpie" else "ePIE"
    return ptylab_to_convergence(data, engine, checkpoints=checkpoints, tolerance=tolerance, seed=seed, starts=starts)
