"""_FallbackSpectralConv2d: the operator it computes, its modes, dtypes and re-initialization."""

from __future__ import annotations

import math

import pytest
import torch

from ptycho_torch.generators import (
    BACKEND_ENV_VAR,
    NeuralopSpectralConv2d,
    SpectralConv2d,
    _FallbackSpectralConv2d,
    make_spectral_conv,
    resolve_backend,
    retained_rows,
)
from ptycho_torch.generators import spectral_conv as spectral_conv_module
from spectral_init.registry import UnknownStrategyError


def plane_wave(channels: int, channel: int, height: int, width: int, kx: int, ky: int) -> torch.Tensor:
    h = torch.arange(height, dtype=torch.float64).view(-1, 1)
    w = torch.arange(width, dtype=torch.float64).view(1, -1)
    x = torch.zeros(1, channels, height, width, dtype=torch.float64)
    x[0, channel] = torch.cos(2 * math.pi * (kx * h / height + ky * w / width))
    return x


def weight_row(modes: int, kx: int) -> int:
    return kx if kx >= 0 else 2 * modes + kx


@pytest.mark.parametrize("height, width, modes", [(16, 16, 4), (12, 20, 3), (5, 5, 4), (7, 9, 2), (3, 16, 5)])
def test_plane_wave_response(height: int, width: int, modes: int) -> None:
    """A kept mode (kx, ky), 0 < ky < W/2, comes out as Re(w[kx, ky]·e^{iθ}); others vanish."""
    layer = _FallbackSpectralConv2d(2, 3, modes, spectral_init={"strategy": "sqrt_in", "seed": 0})
    n_pos, n_neg = retained_rows(height, modes)
    n_cols = min(modes, width // 2 + 1)
    h = torch.arange(height, dtype=torch.float64).view(-1, 1)
    w = torch.arange(width, dtype=torch.float64).view(1, -1)
    for kx in range(-(height // 2) - 1, height // 2 + 2):
        for ky in range(1, (width - 1) // 2 + 1):
            y = layer(plane_wave(2, 1, height, width, kx, ky))
            lowest = -(height // 2)  # frequencies on `height` rows: lowest … lowest + height - 1
            kx_alias = (kx - lowest) % height + lowest
            kept = ky < n_cols and (0 <= kx_alias < n_pos or -n_neg <= kx_alias < 0)
            if kept:
                theta = 2 * math.pi * (kx * h / height + ky * w / width)
                coef = layer.weights[1, :, weight_row(modes, kx_alias), ky].detach().to(torch.complex128)
                expected = (coef.view(-1, 1, 1) * torch.exp(1j * theta)).real
                torch.testing.assert_close(y[0], expected, atol=1e-5, rtol=1e-5)
            else:
                assert y.abs().max() < 1e-5, (kx, ky)


@pytest.mark.parametrize(
    "height, modes, expected", [(64, 12, (12, 12)), (16, 12, (8, 8)), (5, 4, (3, 2)), (1, 3, (1, 0)), (2, 3, (1, 1))]
)
def test_mode_capping_never_overlaps(height: int, modes: int, expected: tuple[int, int]) -> None:
    n_pos, n_neg = retained_rows(height, modes)
    assert (n_pos, n_neg) == expected
    assert n_pos + n_neg <= height


def test_both_corners_receive_gradient() -> None:
    layer = _FallbackSpectralConv2d(4, 4, 6)
    layer(torch.randn(2, 4, 32, 32)).square().sum().backward()
    grad = layer.weights.grad
    assert grad.abs()[:, :, :6].amin(dim=(0, 1)).min() > 0  # every kx >= 0 row
    assert grad.abs()[:, :, 6:].amin(dim=(0, 1)).min() > 0  # every kx < 0 row


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 17, 9), (3, 3, 4, 30)])
def test_output_is_real_with_input_dtype_and_shape(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    layer = _FallbackSpectralConv2d(3, 5, 6)
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    y = layer(x)
    assert y.dtype == dtype and y.shape == (shape[0], 5, *shape[2:])
    y.sum().backward()
    assert x.grad.dtype == dtype and layer.weights.grad is not None


def test_rejects_bad_arguments_and_input() -> None:
    for kwargs, pattern in [
        (dict(in_channels=0, out_channels=2, modes=3), "in_channels"),
        (dict(in_channels=2, out_channels=-1, modes=3), "out_channels"),
        (dict(in_channels=2, out_channels=2, modes=0), "modes"),
        (dict(in_channels=2, out_channels=2, modes=2.0), "modes"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            _FallbackSpectralConv2d(**kwargs)
    with pytest.raises(UnknownStrategyError):
        _FallbackSpectralConv2d(2, 2, 3, spectral_init="xavier")
    layer = _FallbackSpectralConv2d(2, 2, 3)
    for bad in (
        torch.randn(2, 8, 8),
        torch.randn(1, 2, 8, 8, dtype=torch.complex64),
        torch.randn(1, 2, 8, 8, dtype=torch.float16),
        torch.randn(1, 3, 8, 8),
    ):
        with pytest.raises(ValueError, match=r"x must be float32 or float64 of shape \(batch, 2, H, W\)"):
            layer(bad)


def test_reset_parameters_redraws_from_the_same_strategy() -> None:
    layer = _FallbackSpectralConv2d(16, 16, 12, spectral_init="legacy")
    before = layer.weights.detach().clone()
    layer.reset_parameters()
    assert not torch.equal(before, layer.weights)
    assert layer.spectral_init.strategy == "legacy"
    from stats import assert_second_moment

    assert_second_moment(layer.weights.detach(), 1 / (16 * 16) ** 2)


def test_extra_repr_shows_strategy() -> None:
    text = repr(_FallbackSpectralConv2d(3, 4, 5, spectral_init={"strategy": "xavier_complex", "gain": 2, "seed": 1}))
    assert "in_channels=3, out_channels=4, modes=5, spectral_init=xavier-complex, gain=2, seed=1" in text


def test_weights_follow_default_dtype() -> None:
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert _FallbackSpectralConv2d(2, 2, 2).weights.dtype == torch.complex128
    finally:
        torch.set_default_dtype(previous)
    assert _FallbackSpectralConv2d(2, 2, 2).weights.dtype == torch.complex64


def test_backend_resolution(monkeypatch) -> None:
    assert resolve_backend("fallback") == "fallback"
    monkeypatch.setenv(BACKEND_ENV_VAR, "Fallback")
    assert resolve_backend(None) == "fallback"
    assert isinstance(make_spectral_conv(2, 2, 3), _FallbackSpectralConv2d)
    monkeypatch.setenv(BACKEND_ENV_VAR, "fast")
    with pytest.raises(ValueError, match=f"{BACKEND_ENV_VAR} must be one of"):
        resolve_backend(None)
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("cuda")
    monkeypatch.setattr(spectral_conv_module, "HAS_NEURALOPERATOR", False)
    assert resolve_backend("auto") == "fallback"
    with pytest.raises(ImportError, match="neuraloperator is not installed"):
        resolve_backend("neuralop")


def test_neuralop_backend_computes_the_same_operator() -> None:
    pytest.importorskip("neuralop")
    modes = 6
    fallback = _FallbackSpectralConv2d(3, 4, modes, spectral_init={"strategy": "xavier-complex", "seed": 1})
    ours = NeuralopSpectralConv2d(3, 4, modes, spectral_init="xavier-complex")
    assert ours.weights.shape == fallback.weights.shape
    with torch.no_grad():
        # neuraloperator stores kx fftshift-ed: rows -modes…modes-1.
        ours.weights.copy_(torch.roll(fallback.weights, shifts=modes, dims=2))
    x = torch.randn(2, 3, 32, 24)
    torch.testing.assert_close(ours(x), fallback(x), atol=1e-5, rtol=1e-4)


def test_neuralop_backend_applies_strategy_and_seed() -> None:
    pytest.importorskip("neuralop")
    from stats import assert_second_moment

    before = torch.random.get_rng_state()
    a = NeuralopSpectralConv2d(32, 16, 12, spectral_init={"strategy": "legacy", "seed": 4})
    b = NeuralopSpectralConv2d(32, 16, 12, spectral_init={"strategy": "legacy", "seed": 4})
    assert torch.equal(before, torch.random.get_rng_state())
    assert torch.equal(a.weights, b.weights)
    assert_second_moment(a.weights.detach(), 1 / (32 * 16) ** 2)
    assert a.conv.bias is None
    assert "spectral_init=legacy" in repr(a) and "backend=neuralop" in repr(a)


def test_auto_builds_our_layer_even_where_neuraloperator_is_installed(monkeypatch) -> None:
    monkeypatch.setattr(spectral_conv_module, "HAS_NEURALOPERATOR", True)
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)
    assert resolve_backend("auto") == resolve_backend(None) == "fallback"
    assert type(make_spectral_conv(2, 2, 3)) is SpectralConv2d


def test_public_name_and_reference_name_are_one_class() -> None:
    from ptycho_torch.generators import fno

    assert SpectralConv2d is _FallbackSpectralConv2d is fno._FallbackSpectralConv2d
    assert SpectralConv2d.__name__ == "SpectralConv2d"
