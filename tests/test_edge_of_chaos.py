"""The edge-of-chaos strategy's mean field: the transmission, the fixed point, and the kept energy
fraction against a Monte-Carlo estimate.

Monte Carlo: n exact stationary Gaussian fields z with the fixed-point spectrum P_z (random Fourier
coefficients, unit variance), h = φ(z). If ρ_f = E[Σ T|H|²] / E[Σ |H|²] is right, D = Σ T|H|² − ρ_f Σ |H|²
has mean 0; mean(D) is checked within Z = 5.33 standard errors (false failure ≤ 1e-7 per check under the
CLT, n = 1500 independent fields).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from stats import Z

import spectral_init as si
from ptycho_torch.generators import FactorizedSpectralConv2d, _FallbackSpectralConv2d
from spectral_init.edge_of_chaos import _kernel, fixed_point_spectrum, kept_energy_fractions, transfer

ACTIVATIONS = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "tanh": torch.tanh}
GEOMETRIES = [  # (branches, modes, resolution, activation)
    (1, (24, 12), (64, 64), "relu"),
    (1, (8, 4), (32, 48), "relu"),
    (2, (12, 12), (64, 64), "relu"),
    (2, (6, 10), (40, 32), "relu"),
    (1, (16, 8), (32, 32), "gelu"),
    (1, (16, 8), (32, 32), "tanh"),
]


def gaussian_fields(power: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n real stationary Gaussian fields, unit variance, covariance the inverse DFT of ``power``."""
    g = torch.Generator().manual_seed(seed)
    shape = (n, *power.shape)
    noise = torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                          torch.randn(shape, generator=g, dtype=torch.float64)) / math.sqrt(2)
    coefficients = torch.sqrt(power / power.sum()) * noise
    return math.sqrt(2) * (torch.fft.ifft2(coefficients).real * power.numel())


@pytest.mark.parametrize("branches, modes, resolution, activation", GEOMETRIES)
def test_kept_energy_fraction_matches_monte_carlo(branches, modes, resolution, activation) -> None:
    geometry = si.SpectralGeometry(4, 4, branches, modes)
    rho_f, _ = kept_energy_fractions(geometry, resolution, activation)
    p_z = fixed_point_spectrum(geometry, resolution, activation)
    z = gaussian_fields(p_z, 1500, seed=sum(modes) + branches)
    assert abs(z.var().item() - 1) < 0.02
    h_power = torch.fft.fft2(ACTIVATIONS[activation](z)).abs().square()
    t = transfer(geometry, *resolution)
    d = (t * h_power).sum((1, 2)) - rho_f * h_power.sum((1, 2))
    half_width = Z * d.std().item() / math.sqrt(len(d))
    assert abs(d.mean().item()) <= half_width, (d.mean().item(), half_width, rho_f)
    assert 0 < rho_f < 1


DERIVATIVES = {"gelu": lambda x: torch.special.ndtr(x) + x * torch.exp(-x * x / 2) / math.sqrt(2 * math.pi),
               "tanh": lambda x: 1 - torch.tanh(x) ** 2}


@pytest.mark.parametrize("activation", ["gelu", "tanh"])
@pytest.mark.parametrize("derivative", [False, True])
def test_the_gaussian_kernel_is_the_direct_integral(activation, derivative) -> None:
    """K(c) = E[f(u) f(v)], corr(u, v) = c, against a direct 2-D Gauss–Hermite quadrature (another method:
    v = c·u + √(1−c²)·x over a 100 × 100 node grid), and its ends K(1) = E[f²], K(0) = E[f]² (1-D
    quadrature with 300 nodes, converged to 1e-15: 240 and 300 nodes agree to that)."""
    f = DERIVATIVES[activation] if derivative else ACTIVATIONS[activation]

    def gauss_hermite(points: int) -> tuple[torch.Tensor, torch.Tensor]:
        nodes, weights = (torch.from_numpy(a) for a in np.polynomial.hermite_e.hermegauss(points))
        return nodes, weights / math.sqrt(2 * math.pi)

    nodes, weights = gauss_hermite(100)
    c = torch.tensor([-1.0, -0.73, -0.2, 0.0, 0.31, 0.9, 0.999, 1.0], dtype=torch.float64)
    v = c[:, None, None] * nodes[None, :, None] + torch.sqrt(1 - c * c)[:, None, None] * nodes[None, None, :]
    direct = (weights[:, None] * weights[None, :] * f(nodes)[:, None] * f(v)).sum((1, 2))
    kernel = torch.from_numpy(_kernel(activation, derivative)(c.numpy()))
    # the table interpolates linearly on a grid of step 1/1024: error ≤ step²/8·max|K''| < 1e-7 here
    assert torch.allclose(kernel, direct, rtol=0, atol=1e-7), (kernel - direct).abs().max()
    # c = ±1 and 0 are grid points: only the series' truncation after 120 terms (< 1e-12) is left
    nodes, weights = gauss_hermite(300)
    assert kernel[-1].item() == pytest.approx(float((weights * f(nodes) ** 2).sum()), abs=1e-11)
    assert kernel[3].item() == pytest.approx(float((weights * f(nodes)).sum()) ** 2, abs=1e-11)


@pytest.mark.parametrize("branches, modes, resolution, activation", GEOMETRIES[:3])
def test_the_fixed_point_is_one(branches, modes, resolution, activation) -> None:
    geometry = si.SpectralGeometry(4, 4, branches, modes)
    p_z = fixed_point_spectrum(geometry, resolution, activation)
    kernel = {"relu": lambda c: (torch.sqrt((1 - c * c).clamp_min(0)) + (math.pi - torch.arccos(c)) * c)
              / (2 * math.pi)}.get(activation)
    c = (torch.fft.ifft2(p_z).real / torch.fft.ifft2(p_z).real[0, 0]).clamp(-1, 1)
    mapped = transfer(geometry, *resolution) * torch.fft.fft2(kernel(c)).real.clamp_min(0)
    assert torch.allclose(mapped / mapped.sum(), p_z, atol=1e-10)


@pytest.mark.parametrize("kind", ["2d", "factorized"])
def test_transfer_is_what_the_layers_pass_on_average(kind) -> None:
    """A real plane wave at ±k in one input channel, through 2000 output channels (independent weights):
    the mean output energy over the input's is b·E|w|²·(T(k) + T(-k))/2, within Z standard errors. The
    factorized layer's weights are square, so its 2000 outputs come from 10 layers (seeds) of 200
    channels each rather than one of 2000 (whose 2000² weights take seconds to draw)."""
    height, width = 10, 8
    if kind == "2d":
        layers = [_FallbackSpectralConv2d(1, 2000, 3, {"strategy": "sqrt_in", "seed": 0})]
    else:
        layers = [_FactorizedAsMany(200, 3, {"strategy": "sqrt_in", "seed": seed}) for seed in range(10)]
    (_, _, geometry), *_ = (layers[0] if kind == "2d" else layers[0].layer).spectral_weights()
    # one input channel carries the wave: each output sums b weights of E|w|² each
    gain = geometry.branches * si.get_strategy("sqrt_in").second_moment(geometry=geometry)
    t = transfer(geometry, height, width)
    for kx, ky in [(0, 1), (1, 0), (9, 0), (3, 2), (7, 6), (5, 1), (2, 4), (0, 4)]:
        spectrum = torch.zeros(height, width, dtype=torch.complex128)
        spectrum[kx, ky] = 1
        field = torch.fft.ifft2(spectrum).real.float().view(1, 1, height, width)
        ratio = torch.cat([layer(field).double().square().sum((0, 2, 3)) for layer in layers])
        ratio = ratio / field.double().square().sum()
        expected = gain * ((t[kx, ky] + t[(-kx) % height, (-ky) % width]) / 2).item()
        half_width = Z * ratio.std().item() / math.sqrt(ratio.numel()) + 1e-9
        assert ratio.numel() == 2000
        assert abs(ratio.mean().item() - expected) <= half_width, (kind, kx, ky, ratio.mean().item(), expected)


class _FactorizedAsMany(torch.nn.Module):
    """One input channel into many outputs through a factorized layer's two branches (its weights are square)."""

    def __init__(self, out: int, modes: int, spec: dict) -> None:
        super().__init__()
        self.layer = FactorizedSpectralConv2d(out, modes, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.zeros(x.shape[0], self.layer.channels, *x.shape[2:])
        padded[:, :1] = x  # only input channel 0 carries the wave: each output sums two weights
        return self.layer(padded)


def test_the_declared_scale_is_the_forward_fixed_point() -> None:
    geometry = si.SpectralGeometry(32, 32, 1, (24, 12))
    rho_f, rho_b = kept_energy_fractions(geometry, (64, 64), "relu")
    declared = si.get_strategy("edge-of-chaos").second_moment(geometry=geometry)
    assert declared == pytest.approx(2 / (32 * rho_f))
    assert 0.66 < rho_f < 0.74 and rho_b > rho_f  # the measurement: about 71% kept
    assert si.get_strategy("edge-of-chaos").second_moment(32, 32) == pytest.approx(2 / 32)  # no geometry: He
    with pytest.raises(ValueError, match="edge-of-chaos models 2-D layers .*spatial rank 3.*kaiming-complex"):
        si.get_strategy("edge-of-chaos").second_moment(geometry=si.SpectralGeometry(4, 4, 1, (4, 4, 4)))
