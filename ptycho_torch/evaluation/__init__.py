"""The reconstructed object as the measure: predicted patches stitched at their scan positions, the
phase's unobservable offset and plane removed, then MAE, PSNR, SSIM and FRC resolution of amplitude
and phase against the ground truth, and the share of the error that repeats with the scan lattice
(``lattice_share``: a defect every patch carries at the same place, as the diffraction pattern's DC
peak printed at each patch centre was). A sparse scan is scored over its covered pixels.

What is removed before comparing, and why: ptychography cannot observe a global phase offset, nor
(with a probe whose phase is not fixed) a linear phase ramp across the object — a ramp is a shift of
the diffraction pattern. The reference's quality gate removes both, so does this module.

PSNR and SSIM follow scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` (its
defaults), computed here with numpy: importing them costs 2 s of every training run's start-up.
The tests check both against scikit-image.

The package's rooms: ``stitching``, ``alignment``, ``metrics``, ``lattice``; ``figures`` draws a scored
object (a command's, with matplotlib). Every name below is importable from ``ptycho_torch.evaluation``.
"""

from .alignment import phase_images, remove_phase_offset_and_plane
from .lattice import lattice_floor, lattice_note, lattice_share, on_lattice
from .metrics import (
    METRIC_NAMES,
    StitchedObject,
    evaluate_object,
    evaluate_objects,
    frc_resolution,
    peak_signal_noise_ratio,
    reconstruction_metrics,
    structural_similarity,
)
from .stitching import scanned_box, stitch, stitch_objects, stitch_weight

__all__ = [
    "METRIC_NAMES",
    "StitchedObject",
    "evaluate_object",
    "evaluate_objects",
    "frc_resolution",
    "lattice_floor",
    "lattice_note",
    "lattice_share",
    "on_lattice",
    "peak_signal_noise_ratio",
    "phase_images",
    "reconstruction_metrics",
    "remove_phase_offset_and_plane",
    "scanned_box",
    "stitch",
    "stitch_objects",
    "stitch_weight",
    "structural_similarity",
]
