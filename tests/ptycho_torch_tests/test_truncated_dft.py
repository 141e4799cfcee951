"""The fast spectral convolution equals the straightforward FFT formulation, in value and gradient."""

from __future__ import annotations

import pytest
import torch

from ptycho_torch.generators import _FallbackSpectralConv2d, spectral_conv2d, spectral_conv2d_fft
from ptycho_torch.generators.truncated_dft import complex_dtype_for
from spectral_init.spectral_initializer import init_spectral_weight_

# (batch, in, out, H, W, modes): square and not, odd sizes, modes capped by small inputs
# (H < 2·modes, W//2+1 < modes, the Nyquist column kept when W is even), 1×1 inputs.
SHAPES = [
    (2, 3, 4, 32, 32, 8),
    (1, 2, 3, 9, 12, 3),
    (2, 3, 1, 6, 7, 4),
    (1, 2, 2, 3, 16, 5),
    (3, 4, 5, 17, 9, 6),
    (2, 2, 2, 31, 32, 16),
    (1, 1, 1, 4, 30, 20),
    (2, 1, 3, 1, 1, 2),
    (1, 2, 2, 2, 2, 3),
    (1, 3, 2, 64, 8, 5),
]
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_outputs_and_gradients_match_the_fft_reference(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    batch, in_ch, out_ch, height, width, modes = shape
    generator = torch.Generator().manual_seed(sum(shape))
    complex_dtype = complex_dtype_for(dtype)
    weights = torch.randn(in_ch, out_ch, 2 * modes, modes, dtype=complex_dtype, generator=generator)
    x = torch.randn(batch, in_ch, height, width, dtype=dtype, generator=generator)
    grad_out = torch.randn(batch, out_ch, height, width, dtype=dtype, generator=generator)

    results = []
    for conv in (spectral_conv2d_fft, spectral_conv2d):
        w = weights.clone().requires_grad_()
        xi = x.clone().requires_grad_()
        y = conv(xi, w)
        results.append((y, *torch.autograd.grad(y, (xi, w), grad_out)))
    for name, expected, actual in zip(("output", "grad x", "grad weights"), *results):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, name
        assert relative_error(actual, expected) <= TOLERANCE[dtype], name


def test_layer_stores_weights_mode_major_and_draws_them_in_logical_order() -> None:
    layer = _FallbackSpectralConv2d(3, 4, 5, spectral_init={"strategy": "xavier-complex", "seed": 7})
    assert layer.weights.shape == (3, 4, 10, 5)
    assert layer.weights.permute(2, 3, 0, 1).is_contiguous()
    # the same seed into a contiguous tensor gives the same value at every (i, o, kx, ky)
    plain = torch.empty(3, 4, 10, 5, dtype=torch.complex64)
    init_spectral_weight_(
        plain, in_channels=3, out_channels=4, spectral_init={"strategy": "xavier-complex", "seed": 7}
    )
    assert torch.equal(layer.weights.detach(), plain)


def test_weight_gradient_arrives_in_the_parameter_layout() -> None:
    layer = _FallbackSpectralConv2d(3, 4, 5)
    layer(torch.randn(2, 3, 16, 16)).square().sum().backward()
    assert layer.weights.grad.stride() == layer.weights.stride()


def test_contiguous_checkpoint_loads_into_mode_major_weights() -> None:
    source = _FallbackSpectralConv2d(3, 4, 5, spectral_init={"seed": 1})
    state = {"weights": source.weights.detach().contiguous()}
    target = _FallbackSpectralConv2d(3, 4, 5, spectral_init={"seed": 2})
    target.load_state_dict(state)
    assert target.weights.permute(2, 3, 0, 1).is_contiguous()
    x = torch.randn(2, 3, 16, 12)
    torch.testing.assert_close(target(x), spectral_conv2d_fft(x, state["weights"]), atol=1e-6, rtol=1e-5)


def test_contiguous_weights_give_the_same_result() -> None:
    weights = torch.randn(3, 4, 16, 8, dtype=torch.complex64)
    x = torch.randn(2, 3, 20, 20)
    mode_major = weights.permute(2, 3, 0, 1).contiguous().permute(2, 3, 0, 1)
    torch.testing.assert_close(spectral_conv2d(x, mode_major), spectral_conv2d(x, weights))


def test_autocast_does_not_lower_the_spectral_precision() -> None:
    layer = _FallbackSpectralConv2d(3, 4, 5, spectral_init={"seed": 0})
    x = torch.randn(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, layer(x))


def test_torch_compile_traces_the_layer_in_one_graph() -> None:
    layer = _FallbackSpectralConv2d(3, 4, 5, spectral_init={"seed": 0})
    x = torch.randn(2, 3, 17, 12, requires_grad=True)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    y = compiled(x)
    grads = torch.autograd.grad(y.square().sum(), (x, layer.weights))
    expected = layer(x)
    expected_grads = torch.autograd.grad(expected.square().sum(), (x, layer.weights))
    torch.testing.assert_close(y, expected)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e)


def test_bad_operands_are_named() -> None:
    x, w = torch.randn(1, 2, 8, 8), torch.randn(2, 3, 4, 2, dtype=torch.complex64)
    for conv in (spectral_conv2d, spectral_conv2d_fft):
        with pytest.raises(ValueError, match=r"weights must be complex of shape \(in, out, 2·modes, modes\)"):
            conv(x, w.real)
        with pytest.raises(ValueError, match=r"weights must be complex"):
            conv(x, w[:, :, :3])
        with pytest.raises(ValueError, match=r"x must be float32 or float64 of shape \(batch, 2, H, W\)"):
            conv(torch.randn(1, 3, 8, 8), w)
        with pytest.raises(ValueError, match="torch.float64 input needs torch.complex128 weights"):
            conv(x.double(), w)
