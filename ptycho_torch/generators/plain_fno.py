"""The deep FNO without skip connections of the mean-field analyses (Koshizuka et al. 2024), and a generator on it."""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn as nn

from spectral_init import make_initializer
from spectral_init.checks import check_positive_int

from .blocks import InputTransformMode, LiftedGenerator, OutputHead, OutputMode, check_choice
from .spectral_conv import SpectralInitArg, make_spectral_conv

__all__ = ["PlainFNOGenerator", "PlainFNOStack"]

Activation = Literal["relu", "gelu", "tanh"]
_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class PlainFNOStack(nn.Module):
    """``depth`` layers h ← act(spectral(h)): no residual, no normalization, no local branch.

    ``layers`` holds the spectral convolutions in order; with nothing else to carry the signal, the
    init alone decides whether it survives the depth.
    """

    def __init__(
        self,
        channels: int,
        depth: int,
        modes: int,
        activation: Activation = "relu",
        spectral_init: SpectralInitArg = None,
        spectral_backend: str | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_int(depth, "depth")
        check_positive_int(modes, "modes")
        self.activation = check_choice(activation, get_args(Activation), "activation")
        initializer = make_initializer(spectral_init)  # one stream: seeded layers differ
        self.layers = nn.ModuleList(
            make_spectral_conv(channels, channels, modes, initializer, spectral_backend) for _ in range(depth)
        )
        self.act = _ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return x


class PlainFNOGenerator(LiftedGenerator):
    """lifter → PlainFNOStack (ReLU, ``n_blocks`` deep) → 1×1 head: the FNO generator's output contract."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        hidden_channels: int = 32,
        n_blocks: int = 16,
        modes: int = 12,
        C: int = 4,
        input_transform: InputTransformMode = "none",
        output_mode: OutputMode = "real_imag",
        spectral_init: SpectralInitArg = None,
        spectral_backend: str | None = None,
    ) -> None:
        super().__init__(in_channels, hidden_channels, C, input_transform, output_mode)
        self.stack = PlainFNOStack(hidden_channels, n_blocks, modes, "relu", spectral_init, spectral_backend)
        self.head = OutputHead(hidden_channels, out_channels, C, output_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.stack(self.lifter(x)))
