"""The factorized spectral layer of the reference's FFNO generators, its weights drawn by a strategy.

Same module path, class name, constructor and parameters as the reference
(``FactorizedSpectralConv2d(channels, modes)`` with ``weights_x`` and
``weights_y`` of shape (channels, channels, modes)), so its state_dicts load
here and give the same outputs. What is new is ``spectral_init``: the two
branches are summed, so the layer tells the strategy ``branches=2`` and a
variance-preserving strategy (``sqrt_in``) gives each weight E|w|² = 1/(2·C),
Var(y)/Var(x) = 1 on band-limited input. The reference's own draw (std
1/√C per weight, Var(y)/Var(x) = 2) is ``spectral_init="ffno-reference"``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from spectral_init import SpectralGeometry

from .factorized_dft import factorized_spectral_conv2d
from .spectral_conv import SpectralInitArg, SpectralLayerBase
from .truncated_dft import complex_dtype_for

__all__ = ["FactorizedSpectralConv2d"]


class FactorizedSpectralConv2d(SpectralLayerBase):
    """y = irfft_W(Wx·rfft_W(x)) + irfft_H(Wy·rfft_H(x)), each keeping the first ``modes`` frequencies.

    ``weights_x`` mixes channels at the kept frequencies along W (the last
    axis), ``weights_y`` along H. On inputs too small for ``modes`` the kept
    frequencies are capped per axis to H//2+1 and W//2+1. Computed on the kept
    frequencies only (``factorized_dft``); autocast is off inside.
    """

    def __init__(self, channels: int, modes: int, spectral_init: SpectralInitArg = None) -> None:
        super().__init__(channels, channels, modes, spectral_init)
        self.channels = self.in_channels
        dtype = complex_dtype_for(torch.get_default_dtype())
        self.weights_x = nn.Parameter(torch.empty(channels, channels, modes, dtype=dtype))
        self.weights_y = nn.Parameter(torch.empty(channels, channels, modes, dtype=dtype))
        self.reset_parameters()

    def spectral_weights(self) -> list[tuple[str, nn.Parameter, SpectralGeometry]]:
        geometry = SpectralGeometry(self.channels, self.channels, branches=2, modes=(self.modes, self.modes))
        return [("weights_x", self.weights_x, geometry), ("weights_y", self.weights_y, geometry)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.weights_x.is_complex() and self.weights_y.is_complex()):
            raise TypeError(
                "the spectral weights are no longer complex: Module.to(<real dtype>) casts complex "
                "parameters to real and drops the imaginary part; use .float() or .double()"
            )
        dtype = complex_dtype_for(x.dtype)
        with torch.autocast(x.device.type, enabled=False):
            return factorized_spectral_conv2d(x, self.weights_x.to(dtype), self.weights_y.to(dtype))

    def extra_repr(self) -> str:
        s = self.spectral_init
        seed = "" if s.seed is None else f", seed={s.seed}"
        return f"channels={self.channels}, modes={self.modes}, spectral_init={s.strategy}, gain={s.gain:g}{seed}"
