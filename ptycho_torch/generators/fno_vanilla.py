"""The reference's constant-resolution FNO generator (``architecture='fno_vanilla'``).

Lifter → PtychoBlocks → 1×1 head.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from spectral_init import make_initializer
from spectral_init.checks import check_positive_int

from .blocks import InputTransformMode, LiftedGenerator, OutputHead, OutputMode, PtychoBlock
from .spectral_conv import SpectralInitArg

__all__ = ["FnoVanillaGeneratorModule"]


class FnoVanillaGeneratorModule(LiftedGenerator):
    """``n_blocks`` PtychoBlocks at the input's resolution, no refiner; the FNO generator's output contract."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        hidden_channels: int = 32,
        n_blocks: int = 4,
        modes: int = 12,
        C: int = 4,
        input_transform: InputTransformMode = "none",
        output_mode: OutputMode = "real_imag",
        spectral_init: SpectralInitArg = None,
        spectral_backend: str | None = None,
    ) -> None:
        check_positive_int(n_blocks, "n_blocks")
        super().__init__(in_channels, hidden_channels, C, input_transform, output_mode)
        initializer = make_initializer(spectral_init)  # one stream: seeded blocks differ
        self.blocks = nn.ModuleList(
            PtychoBlock(hidden_channels, modes, initializer, spectral_backend) for _ in range(n_blocks)
        )
        self.head = OutputHead(hidden_channels, out_channels, C, output_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.lifter(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)
