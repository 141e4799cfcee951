"""Hybrid U-NO generator (``architecture='hybrid'``): spectral encoder, CNN decoder."""

from __future__ import annotations

import torch
import torch.nn as nn

from spectral_init import make_initializer
from spectral_init.checks import check_positive_int

from .blocks import InputTransformMode, LiftedGenerator, OutputHead, OutputMode, PtychoBlock
from .spectral_conv import SpectralInitArg

__all__ = [
    "HybridUNOGenerator",
]


class HybridUNOGenerator(LiftedGenerator):
    """lifter → PtychoBlock encoder stages at falling resolution → bottleneck → CNN decoder.

    Each of the ``n_blocks - 1`` downsamplings is a stride-2 conv that doubles
    the channels; the decoder upsamples with transposed convs and concatenates
    the encoder's skip at each resolution. H and W must be divisible by
    2**(n_blocks - 1). The bottleneck keeps ``max(1, modes // 2)`` modes. Same
    input/output contract as ``CascadedFNOGenerator``.
    """

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
        self.n_blocks = n_blocks
        initializer = make_initializer(spectral_init)
        self.encoder_blocks = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = hidden_channels
        for i in range(n_blocks):
            self.encoder_blocks.append(PtychoBlock(ch, modes, initializer, spectral_backend))
            if i < n_blocks - 1:
                self.downsample.append(nn.Conv2d(ch, ch * 2, kernel_size=2, stride=2))
                ch *= 2
        self.bottleneck = PtychoBlock(ch, max(1, modes // 2), initializer, spectral_backend)
        self.upsample = nn.ModuleList()
        self.decoder_blocks = nn.ModuleList()
        for _ in range(n_blocks - 1):
            self.upsample.append(nn.ConvTranspose2d(ch, ch // 2, kernel_size=2, stride=2))
            ch //= 2
            self.decoder_blocks.append(
                nn.Sequential(
                    nn.Conv2d(ch * 2, ch, kernel_size=3, padding=1),
                    nn.GELU(),
                    nn.Conv2d(ch, ch, kernel_size=3, padding=1),
                )
            )
        self.head = OutputHead(hidden_channels, out_channels, C, output_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        factor = 2 ** (self.n_blocks - 1)
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"HybridUNOGenerator with n_blocks={self.n_blocks} needs H and W divisible by "
                f"{factor}; got {tuple(x.shape[-2:])}"
            )
        x = self.lifter(x)
        skips = []
        for i, block in enumerate(self.encoder_blocks):
            x = block(x)
            if i < len(self.downsample):
                skips.append(x)
                x = self.downsample[i](x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.upsample, self.decoder_blocks, reversed(skips)):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.head(x)
