"""FNO, hybrid, vanilla-FNO and FFNO generators whose spectral layers take a ``spectral_init`` strategy; ``config``
builds one from a ``GeneratorConfig`` (both importable from ``ptycho_torch``)."""

from .blocks import InputTransform, OutputHead, PtychoBlock, SpatialLifter, StablePtychoBlock
from .factorized_dft import factorized_spectral_conv2d, factorized_spectral_conv2d_fft
from .ffno import FfnoGeneratorModule
from .ffno_bottleneck import (
    FactorizedFfnoBlock,
    FfnoBottleneckGeneratorModule,
    SharedFactorizedFfnoBottleneck,
    build_no_refiner_ffno_stack,
)
from .fno import CascadedFNOGenerator
from .fno_vanilla import FnoVanillaGeneratorModule
from .hybrid import HybridUNOGenerator
from .plain_fno import PlainFNOGenerator, PlainFNOStack
from .spectral_conv import (
    BACKEND_ENV_VAR,
    HAS_NEURALOPERATOR,
    NeuralopSpectralConv2d,
    SpectralConv2d,
    SpectralLayerBase,
    _FallbackSpectralConv2d,
    make_spectral_conv,
    resolve_backend,
)
from .spectral_layers import FactorizedSpectralConv2d
from .truncated_dft import retained_rows, spectral_conv2d, spectral_conv2d_fft

__all__ = [
    "BACKEND_ENV_VAR",
    "HAS_NEURALOPERATOR",
    "CascadedFNOGenerator",
    "FactorizedFfnoBlock",
    "FactorizedSpectralConv2d",
    "FfnoBottleneckGeneratorModule",
    "FfnoGeneratorModule",
    "FnoVanillaGeneratorModule",
    "HybridUNOGenerator",
    "InputTransform",
    "NeuralopSpectralConv2d",
    "OutputHead",
    "PlainFNOGenerator",
    "PlainFNOStack",
    "PtychoBlock",
    "SpatialLifter",
    "SharedFactorizedFfnoBottleneck",
    "SpectralConv2d",
    "SpectralLayerBase",
    "StablePtychoBlock",
    "_FallbackSpectralConv2d",
    "build_no_refiner_ffno_stack",
    "factorized_spectral_conv2d",
    "factorized_spectral_conv2d_fft",
    "make_spectral_conv",
    "resolve_backend",
    "retained_rows",
    "spectral_conv2d",
    "spectral_conv2d_fft",
]
