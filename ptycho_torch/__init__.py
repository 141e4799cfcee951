"""PtychoPINN's PyTorch FNO and hybrid generators, with a configurable spectral init."""

from .config import GeneratorConfig, build_generator

__all__ = ["GeneratorConfig", "build_generator"]
