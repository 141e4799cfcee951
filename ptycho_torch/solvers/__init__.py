"""Iterative reconstruction, the anchor a learned one is measured against: rPIE with the probe known
(``pie``), run to convergence by SSIM against the truth (``convergence``)."""

from .convergence import (
    CHECKPOINTS,
    TOLERANCE,
    ConvergedSolve,
    has_converged,
    object_ssim,
    solve_to_convergence,
    stitched_ssim,
)
from .pie import DEFAULT_ALPHA, rpie_object

__all__ = ["CHECKPOINTS", "DEFAULT_ALPHA", "TOLERANCE", "ConvergedSolve", "has_converged", "object_ssim", "rpie_object",
           "solve_to_convergence", "stitched_ssim"]
