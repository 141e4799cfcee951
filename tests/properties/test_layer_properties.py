"""Properties of ``_FallbackSpectralConv2d`` as an operator and as a random draw.

The identities (real output, linearity, shift equivariance, band limit) are checked in float64 to
1e-10 of the output's scale. The statistical ones use inputs with a flat spectrum: modulus 1 and
random phases at K kept modes (kx kept, 0 < ky < W/2, where irfft2 keeps a mode as it is). For one
input channel set X and weights with E|w|² = s, each output mode Y[o, k] = Σ_i X_i[k]·w[i, o, k] is
CN(0, s·in) independently over (o, k), and by Parseval Var(y)/Var(x) = s·in·G/(out·K) with
G ~ Gamma(out·K, 1): E[Var(y)] = in·E|w|²·Var(x), tested with the exact Gamma interval of
``tests/stats.py``. The ky = 0 column is left out on purpose: irfft2 makes it Hermitian, averaging
the independent outputs at kx and -kx, so it keeps only half its share (1/4 where -kx is not kept).
"""

from __future__ import annotations

import math

import pytest
import torch
from draws import LayerCase, gains, layer_cases, seeds
from hypothesis import assume, given
from hypothesis import strategies as st
from stats import Studentized, family, gamma_interval

import spectral_init as si
from ptycho_torch.generators import _FallbackSpectralConv2d, retained_rows, spectral_conv2d_fft
from ptycho_torch.generators.truncated_dft import retained_cols

IDENTITY_TOLERANCE = 1e-10


def make_layer(case: LayerCase, strategy: str = "sqrt_in", gain: float = 1.0, seed: int = 0) -> _FallbackSpectralConv2d:
    spec = {"strategy": strategy, "gain": gain, "seed": seed}
    return _FallbackSpectralConv2d(case.in_channels, case.out_channels, case.modes, spectral_init=spec)


def declared(layer: _FallbackSpectralConv2d, strategy: str, gain: float) -> float:
    """The E|w|² the strategy declares for this layer's geometry (its kept modes included)."""
    (_, _, geometry), = layer.spectral_weights()
    return si.get_strategy(strategy).second_moment(geometry=geometry, gain=gain)


def random_input(case: LayerCase, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(case.batch, case.in_channels, case.height, case.width, generator=g, dtype=dtype)


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor, scale: float) -> None:
    err = (actual - expected).abs().max().item()
    assert err <= IDENTITY_TOLERANCE * scale + 1e-300, f"max error {err:.3g} vs scale {scale:.3g}"


@given(case=layer_cases(), dtype=st.sampled_from([torch.float32, torch.float64]), seed=seeds)
def test_output_is_real_with_the_input_shape_and_dtype(case, dtype, seed) -> None:
    y = make_layer(case, seed=seed)(random_input(case, seed, dtype))
    assert y.dtype == dtype and not y.is_complex()
    assert y.shape == (case.batch, case.out_channels, case.height, case.width)
    assert torch.isfinite(y).all()


@given(case=layer_cases(), seed=seeds)
def test_equals_the_straightforward_fft_formulation(case, seed) -> None:
    """Output and gradients, in float64, against full rfft2 → zero-filled spectrum → irfft2."""
    layer = make_layer(case, seed=seed)
    x = random_input(case, seed).requires_grad_()
    weights = layer.weights.detach().to(torch.complex128).requires_grad_()
    y, y_ref = layer(x), spectral_conv2d_fft(x, weights)
    grad_out = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    (gx,) = torch.autograd.grad(y, x, grad_out)
    gx_ref, gw_ref = torch.autograd.grad(y_ref, (x, weights), grad_out)
    (gw,) = torch.autograd.grad(layer(x), layer.weights, grad_out)
    assert_close_to_scale(y, y_ref, y_ref.abs().max().item())
    assert_close_to_scale(gx, gx_ref, gx_ref.abs().max().item())
    assert (gw - gw_ref).abs().max().item() <= 1e-5 * gw_ref.abs().max().item() + 1e-300  # complex64 parameter


@given(case=layer_cases(), seed=seeds, a=st.floats(-10, 10), b=st.floats(-10, 10))
def test_linear(case, seed, a, b) -> None:
    layer = make_layer(case, seed=seed)
    x1, x2 = random_input(case, seed), random_input(case, seed + 1)
    y1, y2 = layer(x1), layer(x2)
    scale = abs(a) * y1.abs().max().item() + abs(b) * y2.abs().max().item()
    assert_close_to_scale(layer(a * x1 + b * x2), a * y1 + b * y2, scale)


@given(case=layer_cases(), seed=seeds, shift=st.tuples(st.integers(-50, 50), st.integers(-50, 50)))
def test_equivariant_to_circular_shifts(case, seed, shift) -> None:
    layer = make_layer(case, seed=seed)
    x = random_input(case, seed)
    y = layer(x)
    shifted = layer(torch.roll(x, shifts=shift, dims=(2, 3)))
    assert_close_to_scale(shifted, torch.roll(y, shifts=shift, dims=(2, 3)), y.abs().max().item())


def allowed_spectrum(case: LayerCase) -> torch.Tensor:
    """Kept (kx, ky), plus the mirror -kx of kept rows in the columns irfft2 makes Hermitian."""
    n_cols = retained_cols(case.width, case.modes)
    mask = torch.zeros(case.height, case.width // 2 + 1, dtype=torch.bool)
    rows = torch.tensor(case.kept_rows)
    mask[rows[:, None], torch.arange(n_cols)[None, :]] = True
    hermitian = [0] + ([case.width // 2] if case.width % 2 == 0 and case.width // 2 < n_cols else [])
    for col in hermitian:
        mask[(-rows) % case.height, col] = True
    return mask


@given(case=layer_cases(), seed=seeds)
def test_output_spectrum_lies_inside_the_kept_modes(case, seed) -> None:
    spectrum = torch.fft.rfft2(make_layer(case, seed=seed)(random_input(case, seed))).abs()
    outside = spectrum[..., ~allowed_spectrum(case)]
    if outside.numel():
        assert outside.max().item() <= IDENTITY_TOLERANCE * spectrum.max().item() + 1e-300


def flat_band_input(case: LayerCase, rows: list[int], cols: list[int], seed: int) -> torch.Tensor:
    """One image whose spectrum has modulus 1 and random phases at rows × cols, 0 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    spectrum = torch.zeros(1, case.in_channels, case.height, case.width // 2 + 1, dtype=torch.complex128)
    phase = 2 * math.pi * torch.rand(1, case.in_channels, len(rows), len(cols), generator=g, dtype=torch.float64)
    spectrum[:, :, torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]] = torch.polar(
        torch.ones_like(phase), phase
    )
    return torch.fft.irfft2(spectrum, s=(case.height, case.width))


def assert_variance_transfer(
    layer: _FallbackSpectralConv2d, x: torch.Tensor, n_modes: int, second_moment: float
) -> None:
    ratio = (layer(x).square().mean() / x.square().mean()).item()
    dof = layer.out_channels * n_modes
    lo, hi = gamma_interval(dof)
    g = ratio * dof / (layer.in_channels * second_moment)
    assert lo <= g <= hi, (
        f"Var(y)/Var(x) = {ratio:.6g}, in·E|w|² = {layer.in_channels * second_moment:.6g}: "
        f"Gamma({dof}) statistic {g:.6g} outside [{lo:.6g}, {hi:.6g}]"
    )


@given(case=layer_cases(min_size=3), gain=gains, seed=seeds)
def test_variance_transfer_is_in_times_second_moment(normal_strategy_name, case, gain, seed) -> None:
    cols = case.inner_columns
    assume(cols)
    layer = make_layer(case, normal_strategy_name, gain, seed)
    second_moment = declared(layer, normal_strategy_name, gain)
    x = flat_band_input(case, case.kept_rows, cols, seed)
    assert_variance_transfer(layer, x, len(case.kept_rows) * len(cols), second_moment)


@given(case=layer_cases(min_size=3), seed=seeds)
def test_sqrt_in_preserves_variance(case, seed) -> None:
    """The same law with E|w|² = 1/in: E[Var(y)] = Var(x)."""
    assume(case.inner_columns)
    x = flat_band_input(case, case.kept_rows, case.inner_columns, seed)
    assert_variance_transfer(
        make_layer(case, "sqrt_in", 1.0, seed), x, len(case.kept_rows) * len(case.inner_columns), 1 / case.in_channels
    )


@given(case=layer_cases(min_size=3), seed=seeds, axis=st.sampled_from([2, 3]))
def test_mirrored_input_gives_an_output_of_the_same_distribution(normal_strategy_name, case, seed, axis) -> None:
    """Energy at kx > 0 only; mirrored, it sits at -kx. Both corners are kept, so both obey one Gamma law."""
    n_pos, n_neg = retained_rows(case.height, case.modes)
    rows = [kx for kx in range(1, min(n_pos - 1, n_neg) + 1) if 2 * kx != case.height]
    assume(rows and case.inner_columns)
    layer = make_layer(case, normal_strategy_name, 1.0, seed)
    second_moment = declared(layer, normal_strategy_name, 1.0)
    x = flat_band_input(case, rows, case.inner_columns, seed)
    n_modes = len(rows) * len(case.inner_columns)
    assert_variance_transfer(layer, x, n_modes, second_moment)
    assert_variance_transfer(layer, torch.flip(x, dims=(axis,)), n_modes, second_moment)


@given(case=layer_cases(), gain=gains, seed=seeds | st.none())
def test_reset_parameters_redraws_from_the_same_strategy(strategy_name, case, gain, seed) -> None:
    layer = make_layer(case, strategy_name, gain, seed)
    before = layer.weights.detach().clone()
    layer.reset_parameters()
    after = layer.weights.detach()
    assert layer.spectral_init.strategy == strategy_name
    assert not torch.equal(torch.view_as_real(before), torch.view_as_real(after))
    fam = family(si.get_strategy(strategy_name).distribution)
    if fam is not Studentized or after.numel() >= 1000:
        fam.check_second_moment(after, declared(layer, strategy_name, gain))


@pytest.mark.parametrize("failure", ["raises", "non-finite"])
@given(case=layer_cases(), seed=seeds)
def test_failed_reinitialization_leaves_the_weights_untouched(failure, case, seed) -> None:
    calls = {"n": 0}

    @si.register_strategy("fails-on-redraw", second_moment=lambda i, o, g: 1 / i, description="test", override=True)
    def fill(weight, *, in_channels, out_channels, gain, generator):
        calls["n"] += 1
        weight.normal_(0, 1 / math.sqrt(in_channels), generator=generator)
        if calls["n"] > 1:
            if failure == "raises":
                raise RuntimeError("redraw fails")
            weight.view(-1)[0] = float("nan")

    layer = make_layer(case, "fails-on-redraw", 1.0, seed)
    before = layer.weights.detach().clone()
    with pytest.raises((RuntimeError, FloatingPointError)):
        layer.reset_parameters()
    assert torch.equal(torch.view_as_real(before), torch.view_as_real(layer.weights.detach()))
