"""A small ptychography simulator: "lines" objects, a disk probe, |FFT| diffraction with Poisson noise."""

from .dataset import PtychoDataset, SimulationConfig, simulate_dataset, simulated_objects
from .forward import diffraction_amplitude, poisson_counts
from .objects import lines_object
from .probe import disk_probe, load_probe

__all__ = [
    "PtychoDataset",
    "SimulationConfig",
    "diffraction_amplitude",
    "disk_probe",
    "lines_object",
    "load_probe",
    "poisson_counts",
    "simulate_dataset",
    "simulated_objects",
]
