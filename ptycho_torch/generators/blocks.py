"""Building blocks shared by the FNO and hybrid generators."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn as nn

from spectral_init.checks import check_positive_int

from .spectral_conv import SpectralInitArg, make_spectral_conv

__all__ = [
    "InputTransform",
    "InputTransformMode",
    "LiftedGenerator",
    "OutputHead",
    "OutputMode",
    "PtychoBlock",
    "SpatialLifter",
    "StablePtychoBlock",
    "check_choice",
]

InputTransformMode = Literal["none", "sqrt", "log1p", "instancenorm"]
OutputMode = Literal["real_imag", "amp_phase"]


def check_choice(value: str, allowed: tuple[str, ...], argument: str) -> str:
    if value not in allowed:
        raise ValueError(f"{argument} must be one of {list(allowed)}; got {value!r}")
    return value


class InputTransform(nn.Module):
    """Compress the dynamic range of diffraction amplitudes before lifting.

    Amplitudes span 10³–10⁵ from the DC peak to the speckles: ``sqrt`` and
    ``log1p`` compress it (negative values clamp to 0); ``instancenorm``
    standardizes each channel of each sample.
    """

    def __init__(self, mode: InputTransformMode = "none", channels: int = 1) -> None:
        super().__init__()
        self.mode = check_choice(mode, get_args(InputTransformMode), "input_transform")
        self.norm = nn.InstanceNorm2d(channels, affine=False, eps=1e-6) if mode == "instancenorm" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "sqrt":
            return torch.sqrt(torch.clamp(x, min=0.0))
        if self.mode == "log1p":
            return torch.log1p(torch.clamp(x, min=0.0))
        if self.norm is not None:
            return self.norm(x)
        return x

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class SpatialLifter(nn.Module):
    """input transform → 3×3 conv → GELU → 3×3 conv, spatial size preserved."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int | None = None,
        input_transform: InputTransformMode = "none",
    ) -> None:
        super().__init__()
        hidden = hidden_channels or out_channels
        self.input_transform = InputTransform(input_transform, channels=in_channels)
        self.conv1 = nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(hidden, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(self.input_transform(x))))


class LiftedGenerator(nn.Module):
    """What every generator here starts with: C samples' channels lifted to ``hidden_channels``.

    Subclasses build their body after ``super().__init__``, so the lifter is always
    the first module drawn (seeded models keep their weights), and end in an
    ``OutputHead`` that reads ``C`` and ``output_mode``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, C: int, input_transform: InputTransformMode,
                 output_mode: OutputMode) -> None:
        super().__init__()
        self.C = check_positive_int(C, "C")
        self.output_mode = check_choice(output_mode, get_args(OutputMode), "output_mode")
        self.lifter = SpatialLifter(in_channels * C, hidden_channels, input_transform=input_transform)


class PtychoBlock(nn.Module):
    """y = x + GELU(spectral(x) + conv3×3(x))."""

    def __init__(
        self,
        channels: int,
        modes: int = 12,
        spectral_init: SpectralInitArg = None,
        spectral_backend: str | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.modes = modes
        self.spectral = make_spectral_conv(channels, channels, modes, spectral_init, spectral_backend)
        self.local_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.act = nn.GELU()

    def branch_sum(self, x: torch.Tensor) -> torch.Tensor:
        return self.spectral(x) + self.local_conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.branch_sum(x))


class StablePtychoBlock(PtychoBlock):
    """y = x + layerscale · InstanceNorm(GELU(spectral(x) + conv3×3(x))).

    The per-channel layerscale starts small, so a deep stack starts near the
    identity without trapping the residual branch at zero.
    """

    def __init__(
        self,
        channels: int,
        modes: int = 12,
        layerscale_init: float = 1e-3,
        spectral_init: SpectralInitArg = None,
        spectral_backend: str | None = None,
    ) -> None:
        super().__init__(channels, modes, spectral_init, spectral_backend)
        self.norm = nn.InstanceNorm2d(channels, affine=True, eps=1e-5)
        self.layerscale = nn.Parameter(torch.full((channels,), float(layerscale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.norm(self.act(self.branch_sum(x)))
        return x + self.layerscale.view(1, -1, 1, 1) * update


class OutputHead(nn.Module):
    """1×1 projection to the generator's output contract.

    ``real_imag``: a tensor (B, H, W, C, 2). ``amp_phase``: a pair (amp, phase),
    each (B, C, H, W), with amp = sigmoid(·) and phase = π·tanh(·).
    """

    def __init__(self, hidden_channels: int, out_channels: int, C: int, output_mode: OutputMode) -> None:
        super().__init__()
        self.C = C
        self.output_mode = check_choice(output_mode, get_args(OutputMode), "output_mode")
        if output_mode == "amp_phase":
            self.output_amp = nn.Conv2d(hidden_channels, C, kernel_size=1)
            self.output_phase = nn.Conv2d(hidden_channels, C, kernel_size=1)
        else:
            self.output_proj = nn.Conv2d(hidden_channels, out_channels * C, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.output_mode == "amp_phase":
            amp = torch.sigmoid(self.output_amp(x))
            phase = math.pi * torch.tanh(self.output_phase(x))
            return amp, phase
        batch, _, height, width = x.shape
        y = self.output_proj(x).view(batch, -1, self.C, height, width)
        return y.permute(0, 3, 4, 2, 1)
