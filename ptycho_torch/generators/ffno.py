"""The reference's FFNO generator (``architecture='ffno'``): lifter → shared FFNO stack → local refiners → head."""

from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import InputTransformMode, LiftedGenerator, OutputHead, OutputMode
from .ffno_bottleneck import build_no_refiner_ffno_stack
from .spectral_conv import SpectralInitArg

__all__ = ["FfnoGeneratorModule"]


class _LocalResidualRefiner(nn.Module):
    """x + conv3×3(GELU(conv3×3(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class FfnoGeneratorModule(LiftedGenerator):
    """Constant-resolution FFNO generator with the FNO generator's output contract.

    Input (B, C·in_channels, H, W); output (B, H, W, C, out_channels) for
    ``real_imag``, or (amp, phase) each (B, C, H, W) for ``amp_phase``. The
    stack is the reference's: mlp_ratio 2, gate 0.1, instance norm, one spectral
    layer shared by all ``n_blocks`` blocks unless ``share_spectral_weights=False``.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        hidden_channels: int = 32,
        n_blocks: int = 4,
        modes: int = 12,
        cnn_blocks: int = 2,
        C: int = 4,
        input_transform: InputTransformMode = "none",
        output_mode: OutputMode = "real_imag",
        share_spectral_weights: bool = True,
        spectral_init: SpectralInitArg = None,
    ) -> None:
        if isinstance(cnn_blocks, bool) or not isinstance(cnn_blocks, int) or cnn_blocks < 0:
            raise ValueError(f"cnn_blocks must be an integer >= 0; got {cnn_blocks!r}")
        super().__init__(in_channels, hidden_channels, C, input_transform, output_mode)
        self.ffno_stack = build_no_refiner_ffno_stack(
            hidden_channels, n_blocks=n_blocks, modes=modes, share_spectral_weights=share_spectral_weights,
            mlp_ratio=2.0, gate_init=0.1, norm="instance", spectral_init=spectral_init,
        )
        self.refiners = nn.ModuleList(_LocalResidualRefiner(hidden_channels) for _ in range(cnn_blocks))
        self.head = OutputHead(hidden_channels, out_channels, C, output_mode)

    @property
    def blocks(self) -> nn.ModuleList:
        """The FFNO blocks (the reference's alias of ``ffno_stack.blocks``)."""
        return self.ffno_stack.blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.ffno_stack(self.lifter(x))
        for refiner in self.refiners:
            x = refiner(x)
        return self.head(x)
