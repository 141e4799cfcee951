"""PtychoPINN's PyTorch FNO and hybrid generators, with a configurable spectral init; a trained one
reconstructs a scan in three calls:

    from ptycho_torch import load_model, read_scan, reconstruct

    result = reconstruct(load_model("runs/spiral/checkpoint.pt"), read_scan("data/test.npz"))
"""

from .generators.config import GeneratorConfig, build_generator
from .reconstruction import Reconstruction, TrainedModel, load_model, read_scan, reconstruct

__all__ = ["GeneratorConfig", "Reconstruction", "TrainedModel", "build_generator", "load_model", "read_scan",
           "reconstruct"]
