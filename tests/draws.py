"""Hypothesis strategies for the property tests: weight shapes, gains, seeds, layer configurations."""

from __future__ import annotations

from typing import NamedTuple

import torch
from hypothesis import strategies as st

import spectral_init as si
from ptycho_torch.generators import retained_rows
from ptycho_torch.generators.truncated_dft import retained_cols
from spectral_init.registry import required_params

MAX_ELEMENTS = 2**21  # 32 MiB of complex128: every shape stays quick to draw and check


def needs_params(name: str) -> bool:
    """Whether strategy ``name`` has parameters without defaults (it cannot draw from channels alone)."""
    return bool(required_params(si.get_strategy(name)))


seeds = st.integers(min_value=0, max_value=2**32 - 1)
complex_dtypes = st.sampled_from([torch.complex64, torch.complex128])
# log-uniform over [1e-3, 1e3]; shrinks towards gain 1
gains = st.floats(min_value=-3.0, max_value=3.0).map(lambda e: 10.0**e)


@st.composite
def weight_shapes(draw: st.DrawFn, max_channels: int = 128, max_modes: int = 24) -> tuple[int, int, int, int]:
    """(in, out, mx, my): channels in [1, 128], modes in [1, 24]², my capped at MAX_ELEMENTS."""
    in_ch = draw(st.integers(1, max_channels))
    out_ch = draw(st.integers(1, max_channels))
    mx = draw(st.integers(1, max_modes))
    my = draw(st.integers(1, max(1, min(max_modes, MAX_ELEMENTS // (in_ch * out_ch * mx)))))
    return in_ch, out_ch, mx, my


@st.composite
def extreme_channels(draw: st.DrawFn) -> tuple[int, int]:
    """(in, out) with one side up to 4096 and in·out ≤ 2²⁰ (one mode each): the extremes are in the channel
    counts that enter the formulas; a larger product only makes the draw slower (2²² took 4× as long)."""
    big = draw(st.integers(1, 4096))
    small = draw(st.integers(1, min(4096, 2**20 // big)))
    return (big, small) if draw(st.booleans()) else (small, big)


class LayerCase(NamedTuple):
    batch: int
    in_channels: int
    out_channels: int
    modes: int
    height: int
    width: int

    @property
    def kept_rows(self) -> list[int]:
        """The kept kx, as row indices of an H-point spectrum."""
        n_pos, n_neg = retained_rows(self.height, self.modes)
        return list(range(n_pos)) + list(range(self.height - n_neg, self.height))

    @property
    def inner_columns(self) -> list[int]:
        """Kept ky with 0 < ky < W/2: no Hermitian constraint, so a band there survives rfft2 ∘ irfft2."""
        return [ky for ky in range(1, retained_cols(self.width, self.modes)) if 2 * ky < self.width]


@st.composite
def layer_cases(draw: st.DrawFn, min_size: int = 1) -> LayerCase:
    """Odd and even, non-square sizes, also smaller than 2·modes (the kept modes are then capped)."""
    return LayerCase(
        batch=draw(st.integers(1, 3)),
        in_channels=draw(st.integers(1, 6)),
        out_channels=draw(st.integers(1, 6)),
        modes=draw(st.integers(1, 12)),
        height=draw(st.integers(min_size, 40)),
        width=draw(st.integers(min_size, 40)),
    )
