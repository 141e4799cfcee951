"""Li et al.'s ``SpectralConv<d>d`` and NVIDIA PhysicsNeMo's, re-implemented faithfully for the tests
(PhysicsNeMo does not import on these machines): attributes, parameter names, shapes, their own
1/(in·out)·U[0,1) draw and their forward pass."""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn


def li_layer_class(d: int, real_view: bool) -> type[nn.Module]:
    """Li et al.'s ``SpectralConv<d>d`` (complex weights) or PhysicsNeMo's (real (…, 2) weights)."""

    def __init__(self, in_channels: int, out_channels: int, *modes: int) -> None:
        nn.Module.__init__(self)
        self.in_channels, self.out_channels = in_channels, out_channels
        for axis, m in enumerate(modes, start=1):
            setattr(self, f"modes{axis}", m)
        self.scale = 1 / (in_channels * out_channels)
        shape = (in_channels, out_channels, *modes)
        for k in range(1, 2 ** (d - 1) + 1):
            if real_view:
                setattr(self, f"weights{k}", nn.Parameter(self.scale * torch.rand(*shape, 2)))
            else:
                setattr(self, f"weights{k}", nn.Parameter(self.scale * torch.rand(*shape, dtype=torch.cfloat)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modes = [getattr(self, f"modes{axis}") for axis in range(1, d + 1)]
        x_ft = torch.fft.rfftn(x, dim=list(range(-d, 0)))
        out = torch.zeros(x.shape[0], self.out_channels, *x_ft.shape[2:], dtype=torch.cfloat)
        for k, negative in enumerate(itertools.product((False, True), repeat=d - 1), start=1):
            index = (slice(None), slice(None),
                     *(slice(-m, None) if neg else slice(None, m) for m, neg in zip(modes, negative)),
                     slice(None, modes[-1]))
            weight = getattr(self, f"weights{k}")
            weight = torch.view_as_complex(weight) if real_view else weight
            out[index] = torch.einsum("bi...,io...->bo...", x_ft[index], weight)
        return torch.fft.irfftn(out, s=x.shape[-d:], dim=list(range(-d, 0)))

    return type(f"SpectralConv{d}d", (nn.Module,), {"__init__": __init__, "forward": forward})
