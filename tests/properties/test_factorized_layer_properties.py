"""Properties of ``FactorizedSpectralConv2d`` (the FFNO layer) as an operator and as a random draw.

Identities in float64 to 1e-10 of the output's scale: equal to the straightforward FFT formulation,
linear, equivariant to circular shifts. The variance law: an input whose spectrum has modulus 1 and
random phases at K frequency pairs (kx_j, ky_j) with 0 < kx_j < H/2, 0 < ky_j < W/2, all kept, the
kx_j distinct and the ky_j distinct. Each pair passes the W-branch at ky_j and the H-branch at kx_j,
and the two are summed: Y_o[j] = Σ_i X_i[j]·(Wx[i, o, ky_j] + Wy[i, o, kx_j]). Distinct kx and ky
mean distinct weights for every j, so Y_o[j] is CN(0, in·b·E|w|²) independently over (o, j) with
b = 2 summed branches, and by Parseval Var(y)/Var(x) = in·b·E|w|²·G/(out·K), G ~ Gamma(out·K, 1):
the exact interval of ``tests/stats.py``. With ``sqrt_in`` (E|w|² = 1/(2·in)) E[Var(y)] = Var(x);
with ``ffno-reference`` (the reference's 1/in per branch) it is 2·Var(x).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from draws import gains, seeds
from hypothesis import assume, given
from hypothesis import strategies as st
from stats import gamma_interval

import spectral_init as si
from ptycho_torch.generators import FactorizedSpectralConv2d, factorized_spectral_conv2d_fft
from ptycho_torch.generators.factorized_dft import kept_frequencies

IDENTITY_TOLERANCE = 1e-10


class Case(NamedTuple):
    batch: int
    channels: int
    modes: int
    height: int
    width: int

    def pairs(self) -> list[tuple[int, int]]:
        """(kx, ky) pairs that both branches keep as they are: 0 < k < N/2, k below the cap, paired in order."""
        rows = [k for k in range(1, kept_frequencies(self.height, self.modes)) if 2 * k < self.height]
        cols = [k for k in range(1, kept_frequencies(self.width, self.modes)) if 2 * k < self.width]
        return list(zip(rows, cols))


@st.composite
def cases(draw: st.DrawFn, min_size: int = 1) -> Case:
    """Odd and even, non-square sizes, also smaller than 2·modes (the kept frequencies are then capped)."""
    return Case(draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 12)),
                draw(st.integers(min_size, 40)), draw(st.integers(min_size, 40)))


def make_layer(case: Case, strategy: str = "sqrt_in", gain: float = 1.0, seed: int = 0) -> FactorizedSpectralConv2d:
    return FactorizedSpectralConv2d(case.channels, case.modes, {"strategy": strategy, "gain": gain, "seed": seed})


def random_input(case: Case, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(case.batch, case.channels, case.height, case.width, generator=g, dtype=torch.float64)


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor, scale: float) -> None:
    err = (actual - expected).abs().max().item()
    assert err <= IDENTITY_TOLERANCE * scale + 1e-300, f"max error {err:.3g} vs scale {scale:.3g}"


@given(case=cases(), seed=seeds)
def test_equals_the_straightforward_fft_formulation(case, seed) -> None:
    """Output and gradients (input and both weights), in float64 (the complex64 weights' gradient to 1e-6)."""
    layer = make_layer(case, seed=seed)
    x = random_input(case, seed).requires_grad_()
    wx, wy = (w.detach().to(torch.complex128).requires_grad_() for w in (layer.weights_x, layer.weights_y))
    y, y_ref = layer(x), factorized_spectral_conv2d_fft(x, wx, wy)
    grad_out = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    gx, gwx, gwy = torch.autograd.grad(y, (x, layer.weights_x, layer.weights_y), grad_out)
    gx_ref, gwx_ref, gwy_ref = torch.autograd.grad(y_ref, (x, wx, wy), grad_out)
    assert_close_to_scale(y, y_ref, y_ref.abs().max().item())
    assert_close_to_scale(gx, gx_ref, gx_ref.abs().max().item())
    for g, g_ref in ((gwx, gwx_ref), (gwy, gwy_ref)):  # complex64 parameters: their gradient is rounded
        assert (g - g_ref).abs().max().item() <= 1e-6 * g_ref.abs().max().item() + 1e-300


@given(case=cases(), seed=seeds, a=st.floats(-10, 10), b=st.floats(-10, 10),
       shift=st.tuples(st.integers(-50, 50), st.integers(-50, 50)))
def test_linear_and_equivariant_to_circular_shifts(case, seed, a, b, shift) -> None:
    layer = make_layer(case, seed=seed)
    x1, x2 = random_input(case, seed), random_input(case, seed + 1)
    y1, y2 = layer(x1), layer(x2)
    assert_close_to_scale(layer(a * x1 + b * x2), a * y1 + b * y2,
                          abs(a) * y1.abs().max().item() + abs(b) * y2.abs().max().item())
    assert_close_to_scale(layer(torch.roll(x1, shift, dims=(2, 3))), torch.roll(y1, shift, dims=(2, 3)),
                          y1.abs().max().item())


def paired_band_input(case: Case, pairs: list[tuple[int, int]], seed: int) -> torch.Tensor:
    """One image whose spectrum has modulus 1 and random phases at the given (kx, ky), 0 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    spectrum = torch.zeros(1, case.channels, case.height, case.width // 2 + 1, dtype=torch.complex128)
    phase = 2 * math.pi * torch.rand(1, case.channels, len(pairs), generator=g, dtype=torch.float64)
    rows, cols = (torch.tensor(k) for k in zip(*pairs))
    spectrum[:, :, rows, cols] = torch.polar(torch.ones_like(phase), phase)
    return torch.fft.irfft2(spectrum, s=(case.height, case.width))


def assert_variance_transfer(layer: FactorizedSpectralConv2d, x: torch.Tensor, n_pairs: int,
                             per_output_moment: float) -> None:
    """Var(y)/Var(x)·out·K/(in·b·E|w|²) inside the exact Gamma(out·K) interval."""
    ratio = (layer(x).square().mean() / x.square().mean()).item()
    dof = layer.channels * n_pairs
    lo, hi = gamma_interval(dof)
    g = ratio * dof / per_output_moment
    assert lo <= g <= hi, (f"Var(y)/Var(x) = {ratio:.6g}, expected {per_output_moment:.6g}: Gamma({dof}) "
                           f"statistic {g:.6g} outside [{lo:.6g}, {hi:.6g}]")


@given(case=cases(min_size=3), gain=gains, seed=seeds)
def test_variance_transfer_counts_both_branches(normal_strategy_name, case, gain, seed) -> None:
    """E[Var(y)] = in·b·E|w|²·Var(x), with the E|w|² the strategy declares for this layer's geometry."""
    pairs = case.pairs()
    assume(pairs)
    layer = make_layer(case, normal_strategy_name, gain, seed)
    (_, _, geometry), _ = layer.spectral_weights()
    second_moment = si.get_strategy(normal_strategy_name).second_moment(geometry=geometry, gain=gain)
    x = paired_band_input(case, pairs, seed)
    assert_variance_transfer(layer, x, len(pairs), geometry.fan_in * second_moment)


@given(case=cases(min_size=3), seed=seeds)
def test_sqrt_in_preserves_variance_and_the_reference_draw_doubles_it(case, seed) -> None:
    """Written from the spec, not from a declaration: sqrt_in → E[Var(y)] = Var(x); ffno-reference → 2·Var(x)."""
    pairs = case.pairs()
    assume(pairs)
    x = paired_band_input(case, pairs, seed)
    assert_variance_transfer(make_layer(case, "sqrt_in", 1.0, seed), x, len(pairs), 1.0)
    assert_variance_transfer(make_layer(case, "ffno-reference", 1.0, seed), x, len(pairs), 2.0)
