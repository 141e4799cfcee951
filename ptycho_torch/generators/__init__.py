"""FNO and hybrid generators whose spectral layers take a ``spectral_init`` strategy."""

from .blocks import InputTransform, OutputHead, PtychoBlock, SpatialLifter, StablePtychoBlock
from .fno import CascadedFNOGenerator
from .hybrid import HybridUNOGenerator
from .spectral_conv import (
    BACKEND_ENV_VAR,
    HAS_NEURALOPERATOR,
    NeuralopSpectralConv2d,
    _FallbackSpectralConv2d,
    make_spectral_conv,
    resolve_backend,
)
from .truncated_dft import retained_rows, spectral_conv2d, spectral_conv2d_fft

__all__ = [
    "BACKEND_ENV_VAR",
    "HAS_NEURALOPERATOR",
    "CascadedFNOGenerator",
    "HybridUNOGenerator",
    "InputTransform",
    "NeuralopSpectralConv2d",
    "OutputHead",
    "PtychoBlock",
    "SpatialLifter",
    "StablePtychoBlock",
    "_FallbackSpectralConv2d",
    "make_spectral_conv",
    "resolve_backend",
    "retained_rows",
    "spectral_conv2d",
    "spectral_conv2d_fft",
]
