"""Cascaded FNO → CNN generator (``architecture='fno'``), with the reference module's API.

Code written against the reference ``ptycho_torch/generators/fno.py`` imports
the same names from here: ``HAS_NEURALOPERATOR``, ``InputTransform``,
``SpatialLifter``, ``PtychoBlock``, ``StablePtychoBlock``,
``_FallbackSpectralConv2d`` (our ``SpectralConv2d``) and ``CascadedFNOGenerator``. What is new is the
``spectral_init`` (and ``spectral_backend``) argument, passed to every
spectral layer.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from spectral_init import make_initializer

from .blocks import (
    InputTransform,
    InputTransformMode,
    LiftedGenerator,
    OutputHead,
    OutputMode,
    PtychoBlock,
    SpatialLifter,
    StablePtychoBlock,
)
from .spectral_conv import HAS_NEURALOPERATOR, SpectralConv2d, SpectralInitArg, _FallbackSpectralConv2d

__all__ = [
    "HAS_NEURALOPERATOR",
    "CascadedFNOGenerator",
    "InputTransform",
    "PtychoBlock",
    "SpatialLifter",
    "SpectralConv2d",
    "StablePtychoBlock",
    "_FallbackSpectralConv2d",
]


class CascadedFNOGenerator(LiftedGenerator):
    """lifter → ``fno_blocks`` PtychoBlocks → 1×1 conv → CNN refiner → output head.

    Input (B, C·in_channels, H, W); output (B, H, W, C, out_channels) for
    ``real_imag``, or (amp, phase) each (B, C, H, W) for ``amp_phase``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        hidden_channels: int = 32,
        fno_blocks: int = 4,
        cnn_blocks: int = 2,
        modes: int = 12,
        C: int = 4,
        input_transform: InputTransformMode = "none",
        output_mode: OutputMode = "real_imag",
        spectral_init: SpectralInitArg = None,
        spectral_backend: str | None = None,
    ) -> None:
        super().__init__(in_channels, hidden_channels, C, input_transform, output_mode)
        # One initializer for all blocks: a seed gives one stream, not identical blocks.
        initializer = make_initializer(spectral_init)
        self.fno_blocks = nn.ModuleList(
            PtychoBlock(hidden_channels, modes, initializer, spectral_backend) for _ in range(fno_blocks)
        )
        self.intermediate = nn.Conv2d(hidden_channels, hidden_channels, kernel_size=1)
        self.cnn_refiner = nn.Sequential(
            *(
                nn.Sequential(nn.Conv2d(hidden_channels, hidden_channels, kernel_size=3, padding=1), nn.GELU())
                for _ in range(cnn_blocks)
            )
        )
        self.head = OutputHead(hidden_channels, out_channels, C, output_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.lifter(x)
        for block in self.fno_blocks:
            x = block(x)
        return self.head(self.cnn_refiner(self.intermediate(x)))
