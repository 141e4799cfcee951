"""FFNO residual blocks and stacks with one shared factorized spectral layer (the reference's interface).

A block computes update = spectral(x) (+ local_conv(x)), then norm → 1×1
``expand`` → GELU ``act`` → 1×1 ``project``, and returns x + gate·update. In a
stack with ``share_spectral_weights`` every block holds the very same spectral
module and the very same gate (held by reference, not registered again), so a
state_dict has the reference's keys and the shared weights are drawn once.

Without sharing, each block gets its own spectral layer (one initializer for
all, so a seeded draw gives different blocks) and its own registered gate; the
stack's ``shared_spectral`` and ``shared_gate`` are then ``None``. (The
reference keeps an unused shared layer there and leaves per-block gates
unregistered, so they are never trained.)
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn as nn

from spectral_init import make_initializer
from spectral_init.checks import check_positive_int, check_positive_number

from .blocks import check_choice
from .spectral_conv import SpectralInitArg
from .spectral_layers import FactorizedSpectralConv2d

__all__ = [
    "FactorizedFfnoBlock",
    "FfnoBottleneckGeneratorModule",
    "SharedFactorizedFfnoBottleneck",
    "build_no_refiner_ffno_stack",
]

NormKind = Literal["instance", "layer", "identity"]


def _check_kernel(kernel_size: int | None) -> None:
    if kernel_size is None:
        return
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"local_conv_kernel_size must be None or a positive odd integer; got {kernel_size!r}")


def _norm(kind: str, channels: int) -> nn.Module:
    check_choice(kind, get_args(NormKind), "norm")
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True, eps=1e-5)
    if kind == "layer":
        return nn.GroupNorm(1, channels, affine=True, eps=1e-5)  # layer norm over (C, H, W)
    return nn.Identity()


class FactorizedFfnoBlock(nn.Module):
    """x + gate · project(GELU(expand(norm(spectral(x) [+ local_conv(x)]))))."""

    def __init__(
        self,
        *,
        channels: int,
        shared_spectral: nn.Module,
        mlp_ratio: float = 2.0,
        gate: nn.Parameter | None = None,
        norm: NormKind = "instance",
        local_conv_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_number(mlp_ratio, "mlp_ratio")
        _check_kernel(local_conv_kernel_size)
        hidden = max(channels, round(channels * float(mlp_ratio)))
        self.shared_spectral = shared_spectral
        self.local_conv = (
            None if local_conv_kernel_size is None
            else nn.Conv2d(channels, channels, local_conv_kernel_size, padding=local_conv_kernel_size // 2)
        )
        self.norm = _norm(norm, channels)
        self.expand = nn.Conv2d(channels, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.project = nn.Conv2d(hidden, channels, kernel_size=1)
        if gate is None:
            self.gate = nn.Parameter(torch.tensor(0.1))
            self._held_gate: tuple[nn.Parameter, ...] = ()
        else:
            # a tuple, not an attribute: assigning a Parameter would register it in every block
            self.gate = None
            self._held_gate = (gate,)

    @property
    def effective_gate(self) -> nn.Parameter:
        """The gate this block multiplies by: its own, or the one it shares."""
        return self._held_gate[0] if self._held_gate else self.gate

    def branch_sum(self, x: torch.Tensor) -> torch.Tensor:
        update = self.shared_spectral(x)
        return update if self.local_conv is None else update + self.local_conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.project(self.act(self.expand(self.norm(self.branch_sum(x)))))
        return x + self.effective_gate * update


class SharedFactorizedFfnoBottleneck(nn.Module):
    """``n_blocks`` FFNO blocks; with ``share_spectral_weights`` one spectral layer and one gate for all."""

    def __init__(
        self,
        channels: int,
        *,
        n_blocks: int = 6,
        modes: int = 12,
        share_spectral_weights: bool = True,
        mlp_ratio: float = 2.0,
        gate_init: float = 0.1,
        norm: NormKind = "instance",
        local_conv_kernel_size: int | None = None,
        spectral_init: SpectralInitArg = None,
    ) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_int(n_blocks, "n_blocks")
        check_positive_int(modes, "modes")
        check_positive_number(mlp_ratio, "mlp_ratio")
        _check_kernel(local_conv_kernel_size)
        check_choice(norm, get_args(NormKind), "norm")
        if isinstance(gate_init, bool) or not isinstance(gate_init, (int, float)) or not math.isfinite(gate_init):
            raise ValueError(f"gate_init must be a finite number; got {gate_init!r}")
        initializer = make_initializer(spectral_init)
        self.shared_spectral: FactorizedSpectralConv2d | None = None
        self.shared_gate: nn.Parameter | None = None
        if share_spectral_weights:
            self.shared_spectral = FactorizedSpectralConv2d(channels, modes, initializer)
            self.shared_gate = nn.Parameter(torch.tensor(float(gate_init)))
        self.blocks = nn.ModuleList()
        for _ in range(n_blocks):
            spectral = (
                self.shared_spectral if share_spectral_weights
                else FactorizedSpectralConv2d(channels, modes, initializer)
            )
            block = FactorizedFfnoBlock(
                channels=channels, shared_spectral=spectral, mlp_ratio=mlp_ratio, gate=self.shared_gate,
                norm=norm, local_conv_kernel_size=local_conv_kernel_size,
            )
            if self.shared_gate is None:
                with torch.no_grad():
                    block.gate.fill_(float(gate_init))
            self.blocks.append(block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def build_no_refiner_ffno_stack(
    channels: int,
    *,
    n_blocks: int,
    modes: int,
    share_spectral_weights: bool = True,
    mlp_ratio: float = 2.0,
    gate_init: float = 0.1,
    norm: NormKind = "instance",
    spectral_init: SpectralInitArg = None,
) -> SharedFactorizedFfnoBottleneck:
    """The FFNO stack alone (no local refiner inside it), as the FFNO generator uses it."""
    return SharedFactorizedFfnoBottleneck(
        channels, n_blocks=n_blocks, modes=modes, share_spectral_weights=share_spectral_weights,
        mlp_ratio=mlp_ratio, gate_init=gate_init, norm=norm, spectral_init=spectral_init,
    )


class FfnoBottleneckGeneratorModule(nn.Module):
    """A shape-preserving shell around one ``SharedFactorizedFfnoBottleneck`` (attribute ``bottleneck``)."""

    def __init__(
        self,
        *,
        channels: int,
        n_blocks: int = 6,
        modes: int = 12,
        share_spectral_weights: bool = True,
        mlp_ratio: float = 2.0,
        gate_init: float = 0.1,
        norm: NormKind = "instance",
        local_conv_kernel_size: int | None = None,
        spectral_init: SpectralInitArg = None,
    ) -> None:
        super().__init__()
        self.bottleneck = SharedFactorizedFfnoBottleneck(
            channels, n_blocks=n_blocks, modes=modes, share_spectral_weights=share_spectral_weights,
            mlp_ratio=mlp_ratio, gate_init=gate_init, norm=norm,
            local_conv_kernel_size=local_conv_kernel_size, spectral_init=spectral_init,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(x)
