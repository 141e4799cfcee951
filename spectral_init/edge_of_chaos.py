"""``edge-of-chaos``: E|w|² from the mean-field signal propagation of a deep FNO with mode truncation.

Setting (Koshizuka et al. 2024; Kim 2025): a stack h_{l+1} = φ(z_l), z_l = S_l(h_l), of spectral
layers S_l with i.i.d. circular weights of E|w|² = σ², no skips, no norms. In the mean-field limit z_l
is a stationary Gaussian field, described by its second moment q and its power spectrum.

**Transfer.** A spectral layer keeps a set of modes. With independent weights per mode, the output
power at mode k is P_z(k) = fan·σ²·T(k)·P_h(k), where fan = b·in (b summed branches) and T is the
layer's transmission on the full H×W frequency grid:

- 2-D layer (b = 1): T = 1 at kept (kx, ky) with 0 < ky < W/2 and at their mirrors (-kx, -ky); on the
  self-mirrored columns ky = 0 (and ky = W/2 when kept) irfft2 averages the independent outputs at kx
  and -kx, so T = ([kx kept] + [-kx kept])/4 there;
- factorized layer (b = 2): the mean of the two 1-D transmissions, T = (T_W(ky) + T_H(kx))/2, with
  T_N(f) = 1 for kept 0 < |f| < N/2 and 1/2 at f = 0 and at a kept Nyquist frequency (irfft keeps
  only the real part there).

So E[z²] = fan·σ²·ρ_f·E[h²] with the **kept energy fraction** ρ_f = Σ_k T(k)·P_h(k) / Σ_k P_h(k).

**Activation.** For a Gaussian field z with correlation function c(τ) = C_z(τ)/C_z(0) and second
moment q = 1, h = φ(z) has covariance C_h(τ) = K_φ(c(τ)), K_φ(c) = E[φ(u)φ(v)] for standard normals
u, v with correlation c (the Gaussian integral): for ReLU in closed form,
K(c) = (√(1-c²) + (π - arccos c)·c)/(2π) (the arc-cosine kernel), else by Mehler's expansion
K(c) = Σ_n b_n² cⁿ in φ's normalized Hermite coefficients b_n. P_h is the DFT of C_h.

**Fixed point.** Starting from a flat spectrum on the transmitted modes, P_z ← T·P_h(P_z)
(normalized) is iterated to its fixed point, the spectral shape a deep stack settles into; ρ_f is
read there. The backward pass is the same with the adjoint layer (same T) acting on u = φ'(z)⊙g: with
the usual gradient-independence assumption C_u(τ) = K_φ'(c_z(τ))·c_g(τ), iterated the same way,
giving ρ_b.

**Per-layer gains.** With a_f = E[φ(u)²]·ρ_f and a_b = E[φ'(u)²]·ρ_b (u ~ N(0, 1)), one layer
multiplies the forward second moment by χ_f = b·in·σ²·a_f and the backpropagated one by
χ_b = b·out·σ²·a_b. This strategy puts the variance map's fixed point at the edge, χ_f = 1:

    E|w|² = gain² / (b·in·E[φ(u)²]·ρ_f)

Without truncation (ρ = 1) and for ReLU that is He's 2/fan. With truncation the backward gain is then
χ_b = (out/in)·(E[φ'²]ρ_b)/(E[φ²]ρ_f): for ReLU at 64×64 with 12 modes ρ_f ≈ 0.70 and ρ_b ≈ 0.80 (the
DC of φ(z), which holds much of its energy, passes at half weight; φ'(z)⊙g has little DC), so the
backpropagated second moment still grows by ρ_b/ρ_f ≈ 1.14 per layer (``mean_field_gains`` reports
both). For ReLU the gains do not depend on q; for GELU and tanh they are evaluated at q = 1 (unit
pre-activation second moment). Without a known kept-mode geometry (a weight filled outside a layer)
every mode counts as kept: ρ = 1.

Parameters: ``resolution`` (H = W, or (H, W); default 64) and ``activation`` (relu | gelu | tanh).
Layers of spatial rank 2 with 1 or 2 summed branches are modelled; others are refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .geometry import SpectralGeometry
from .registry import Strategy, register_strategy
from .scaling import complex_normal_

__all__ = ["EdgeOfChaosParams", "MeanFieldGains", "fixed_point_spectrum", "kept_energy_fractions", "mean_field_gains",
           "transfer"]

Activation = Literal["relu", "gelu", "tanh"]


class EdgeOfChaosParams(BaseModel):
    """The strategy's own parameters (``SpectralInitSettings.params``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: tuple[int, int] = Field((64, 64), description="Input size H, W (an int means H = W).")
    activation: Activation = Field("relu", description="The activation after every spectral layer.")

    @field_validator("resolution", mode="before")
    @classmethod
    def _square(cls, value: object) -> object:
        return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("resolution")
    @classmethod
    def _positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1 or max(value) > 4096:
            raise ValueError(f"resolution must be between 1 and 4096 per axis; got {value}")
        return value


def _frequency(index: torch.Tensor, size: int) -> torch.Tensor:
    """Signed frequency of each DFT index: 0…⌊N/2⌋, then -(N - k)."""
    return torch.where(2 * index <= size, index, index - size)


def _axis_transfer(size: int, kept: int) -> torch.Tensor:
    """T_N(f) of a 1-D rfft/irfft branch keeping frequencies 0…kept-1 (capped at N//2 + 1)."""
    kept = min(kept, size // 2 + 1)
    f = _frequency(torch.arange(size), size).abs()
    t = torch.where(f < kept, 1.0, 0.0).double()
    self_mirror = (f == 0) | (2 * f == size)
    return torch.where(self_mirror & (f < kept), 0.5, t)


def transfer(geometry: SpectralGeometry, height: int, width: int) -> torch.Tensor:
    """T(k) on the full H×W frequency grid (see the module docstring)."""
    if geometry.spatial_rank == 0:
        return torch.ones(height, width, dtype=torch.float64)
    if geometry.spatial_rank != 2 or geometry.branches not in (1, 2):
        raise ValueError(
            "edge-of-chaos models 2-D layers (spatial rank 2) with 1 (FNO) or 2 (factorized FFNO) summed "
            f"branches; got spatial rank {geometry.spatial_rank} with {geometry.branches} "
            f"branch{'es' if geometry.branches != 1 else ''}. For 1-D and "
            "3-D layers use kaiming-complex, or calibrate_ on data"
        )
    rows, cols = geometry.modes
    if geometry.branches == 2:
        return (_axis_transfer(width, cols)[None, :] + _axis_transfer(height, rows)[:, None]) / 2
    n_pos, n_neg = min(rows - rows // 2, (height + 1) // 2), min(rows // 2, height // 2)
    kx = torch.arange(height)
    row_kept = ((kx < n_pos) | (kx >= height - n_neg)).double()
    mirror_kept = row_kept[(-kx) % height]
    fy = _frequency(torch.arange(width), width)
    kept_cols = min(cols, width // 2 + 1)
    inner = (fy.abs() > 0) & (2 * fy.abs() != width) & (fy.abs() < kept_cols)
    self_mirror = ((fy == 0) | (2 * fy.abs() == width)) & (fy.abs() < kept_cols)
    # a positive ky keeps row kx; its mirror column -ky holds the conjugates, at row -kx
    t = torch.where((inner & (fy > 0))[None, :], row_kept[:, None], 0.0)
    t = t + torch.where((inner & (fy < 0))[None, :], mirror_kept[:, None], 0.0)
    return t + torch.where(self_mirror[None, :], ((row_kept + mirror_kept) / 4)[:, None], 0.0)


# --- Gaussian integrals K(c) = E[f(u) f(v)], corr(u, v) = c -----------------------------------------
# The fixed point below is numpy (float64) work: hundreds of small FFTs and maps that torch would spread
# over its intra-op thread pool, which on a busy machine waits for threads the OS has descheduled (beside
# two busy processes, an 8-layer model's build took 6× as long on 2 torch threads as on one, measured).
# numpy's run on the calling thread, and the library leaves the process's torch thread count alone.

def _relu_kernel(c: np.ndarray) -> np.ndarray:
    return (np.sqrt(np.clip(1 - c * c, 0, None)) + (math.pi - np.arccos(c)) * c) / (2 * math.pi)


def _step_kernel(c: np.ndarray) -> np.ndarray:
    return (math.pi - np.arccos(c)) / (2 * math.pi)


_SMOOTH: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "gelu": (lambda x: x * torch.special.ndtr(x),
             lambda x: torch.special.ndtr(x) + x * torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)),
    "tanh": (torch.tanh, lambda x: 1 - torch.tanh(x) ** 2),
}
_HERMITE_TERMS = 120  # the terms past here sum to < 1e-12 for gelu, tanh and their derivatives (measured)
_QUADRATURE_POINTS = 240
_TABLE_POINTS = 2049
_TABLE_GRID = np.linspace(-1, 1, _TABLE_POINTS)


@functools.lru_cache(maxsize=8)
def _kernel_table(activation: str, derivative: bool) -> np.ndarray:
    """K on an even grid of c in [-1, 1] by Mehler's expansion

        K(c) = E[f(u) f(v)] = Σ_n b_n² cⁿ,  b_n = E[f(u)·He_n(u)] / √(n!),

    the normalized Hermite coefficients b_n by Gauss–Hermite quadrature (probabilists' weights). The
    direct 2-D quadrature on the same grid took 0.4–1.4 s per table; this takes milliseconds.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(_QUADRATURE_POINTS)
    weights = weights / math.sqrt(2 * math.pi)
    f = _SMOOTH[activation][1 if derivative else 0](torch.from_numpy(nodes)).numpy()
    # He_n/√(n!) by its three-term recurrence: h_{n+1} = (x·h_n − √n·h_{n−1}) / √(n+1)
    previous, current = np.ones_like(nodes), nodes.copy()
    coefficients = [np.sum(weights * f * previous), np.sum(weights * f * current)]
    for n in range(1, _HERMITE_TERMS - 1):
        previous, current = current, (nodes * current - math.sqrt(n) * previous) / math.sqrt(n + 1)
        coefficients.append(np.sum(weights * f * current))
    return np.polynomial.polynomial.polyval(_TABLE_GRID, np.square(coefficients))


def _kernel(activation: str, derivative: bool) -> Callable[[np.ndarray], np.ndarray]:
    """K_φ (or K_φ' with ``derivative``) as a function of the correlation c, on numpy arrays."""
    if activation == "relu":
        return _step_kernel if derivative else _relu_kernel
    table = _kernel_table(activation, derivative)
    return lambda c: np.interp(np.clip(c, -1, 1), _TABLE_GRID, table)


# --- the fixed point ------------------------------------------------------------------------------

def _correlation(power: np.ndarray) -> np.ndarray:
    covariance = np.fft.ifft2(power).real
    return np.clip(covariance / covariance[0, 0], -1.0, 1.0)


def _power(covariance: np.ndarray) -> np.ndarray:
    return np.clip(np.fft.fft2(covariance).real, 0.0, None)


def _iterate(step: Callable[[np.ndarray], np.ndarray], start: np.ndarray, steps: int = 200) -> np.ndarray:
    """Iterate a spectrum map to its fixed point (relative change below 1e-12, or ``steps``)."""
    power = start / start.sum()
    for _ in range(steps):
        new = step(power)
        new = new / new.sum()
        if np.abs(new - power).sum() < 1e-12:
            return new
        power = new
    return power


def _fixed_point(t: np.ndarray, activation: str) -> np.ndarray:
    k = _kernel(activation, False)
    return _iterate(lambda p: t * _power(k(_correlation(p))), t)


def fixed_point_spectrum(geometry: SpectralGeometry, resolution: tuple[int, int], activation: str) -> torch.Tensor:
    """P_z (summing to 1) on the full H×W grid at the fixed point of P_z ← T·DFT(K_φ(c_z))."""
    return torch.from_numpy(_fixed_point(transfer(geometry, *resolution).numpy(), activation))


def kept_energy_fractions(geometry: SpectralGeometry, resolution: tuple[int, int],
                          activation: str) -> tuple[float, float]:
    """(ρ_f, ρ_b): the kept share of φ(z)'s energy, and of φ'(z)⊙g's, at the mean-field fixed point."""
    # channel counts do not enter: one solve per (branches, modes, resolution, activation)
    return _fractions(geometry.branches, geometry.modes, tuple(resolution), activation)


@functools.lru_cache(maxsize=256)
def _fractions(branches: int, modes: tuple[int, ...], resolution: tuple[int, int],
               activation: str) -> tuple[float, float]:
    geometry = SpectralGeometry(1, 1, branches, modes)
    if geometry.spatial_rank == 0:
        return 1.0, 1.0
    t = transfer(geometry, *resolution).numpy()
    k_prime = _kernel(activation, True)
    c_z = _correlation(_fixed_point(t, activation))
    p_h = _power(_kernel(activation, False)(c_z))
    rho_f = float((t * p_h).sum() / p_h.sum())
    p_g = _iterate(lambda p: t * _power(k_prime(c_z) * _correlation(p)), t)
    p_u = _power(k_prime(c_z) * _correlation(p_g))
    rho_b = float((t * p_u).sum() / p_u.sum())
    return rho_f, rho_b


class MeanFieldGains(BaseModel):
    """Kept energy fractions and the activation's moments of one layer geometry (``describe`` shows them)."""

    rho_forward: float
    rho_backward: float
    activation_second_moment: float  # E[φ(u)²], u ~ N(0, 1)
    derivative_second_moment: float  # E[φ'(u)²]


def mean_field_gains(geometry: SpectralGeometry, resolution: tuple[int, int], activation: str) -> MeanFieldGains:
    rho_f, rho_b = kept_energy_fractions(geometry, tuple(resolution), activation)
    one = np.ones(())
    return MeanFieldGains(
        rho_forward=rho_f, rho_backward=rho_b,
        activation_second_moment=float(_kernel(activation, False)(one)),
        derivative_second_moment=float(_kernel(activation, True)(one)),
    )


def _second_moment(in_channels: int, out_channels: int, gain: float, *, geometry: SpectralGeometry,
                   resolution: tuple[int, int], activation: str) -> float:
    g = mean_field_gains(geometry, resolution, activation)
    return gain * gain / (geometry.branches * in_channels * g.activation_second_moment * g.rho_forward)


def _fill(weight: torch.Tensor, *, in_channels: int, out_channels: int, gain: float,
          generator: torch.Generator | None, geometry: SpectralGeometry,
          resolution: tuple[int, int], activation: str) -> None:
    complex_normal_(weight, _second_moment(in_channels, out_channels, gain, geometry=geometry,
                                           resolution=resolution, activation=activation), generator)


EDGE_OF_CHAOS: Strategy = register_strategy(
    "edge-of-chaos",
    second_moment=_second_moment,
    description="Mean-field edge of chaos with mode truncation: the variance map's fixed point for the "
    "layer's kept modes, input resolution and activation (params: resolution, activation). 2-D layers with 1 "
    "(FNO) or 2 (factorized FFNO) summed branches only: 1-D and 3-D layers are refused.",
    formula="gain²/(b·in·E[φ²]·ρ_f)",
    distribution="circular complex normal",
    params_model=EdgeOfChaosParams,
)(_fill)
