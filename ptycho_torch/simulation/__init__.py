"""A small ptychography simulator: "lines" objects, a disk probe, far-field (|FFT|) or near-field (Fresnel)
patterns with Poisson noise."""

from .dataset import PtychoDataset, SimulationConfig, simulate_dataset, simulated_objects
from .forward import diffraction_amplitude, poisson_counts
from .geometry import SimulatedGeometry
from .objects import OBJECT_KINDS, lines_object, object_of_kind
from .probe import disk_probe, load_probe

__all__ = [
    "OBJECT_KINDS",
    "PtychoDataset",
    "SimulatedGeometry",
    "SimulationConfig",
    "diffraction_amplitude",
    "disk_probe",
    "lines_object",
    "object_of_kind",
    "load_probe",
    "poisson_counts",
    "simulate_dataset",
    "simulated_objects",
]
