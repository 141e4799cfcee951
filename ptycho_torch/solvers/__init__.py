"""Iterative reconstruction, the anchor a learned one is measured against: rPIE with the probe known
(``pie``), run to convergence by SSIM against the truth (``convergence``); PtyLab's mPIE and ePIE run the
same way (``ptylab``); a solver by name (``choice``)."""

from .choice import SOLVERS, solve_with, solver_package, solver_problem
from .convergence import (
    CHECKPOINTS,
    TOLERANCE,
    ConvergedSolve,
    converge,
    has_converged,
    object_ssim,
    solve_to_convergence,
    stitched_ssim,
)
from .pie import DEFAULT_ALPHA, rpie_object

__all__ = ["CHECKPOINTS", "DEFAULT_ALPHA", "SOLVERS", "TOLERANCE", "ConvergedSolve", "converge", "has_converged",
           "object_ssim", "rpie_object", "solve_to_convergence", "solve_with", "solver_package", "solver_problem",
           "stitched_ssim"]
