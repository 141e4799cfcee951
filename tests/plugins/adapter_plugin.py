"""A third-party-style layer adapter: importing it registers one for ``MixerLayer``."""

import torch
import torch.nn as nn

from spectral_init import SpectralGeometry, register_layer_adapter
from spectral_init.adapters import real_view_plan


class FourierMixer(nn.Module):
    """A spectral layer no built-in adapter knows: its weight is a real (in, out, modes, 2) tensor."""

    def __init__(self, channels: int, modes: int) -> None:
        super().__init__()
        self.mix = nn.Parameter(torch.zeros(channels, channels, modes, 2))


register_layer_adapter(
    "plugin-fourier-mixer",
    matches=lambda m: isinstance(m, FourierMixer),
    plan=lambda name, m: [real_view_plan(f"{name}.mix" if name else "mix", "FourierMixer",
                                         m.mix, SpectralGeometry(m.mix.shape[0], m.mix.shape[1],
                                                                 modes=(m.mix.shape[2],)))],
    description="Test plugin: FourierMixer's real-view weight.",
)
