"""``edge-of-chaos``: E|w|² from the mean-field signal propagation of a deep FNO with mode truncation.

Setting (Koshizuka et al. 2024; Kim 2025): a stack h_{l+1} = φ(z_l), z_l = S_l(h_l), of spectral
layers S_l with i.i.d. circular weights of E|w|² = σ², no skips, no norms. In the mean-field limit z_l
is a stationary Gaussian field, described by its second moment q and its power spectrum.

**Transfer.** A spectral layer keeps a set of modes. With independent weights per mode, the output
power at mode k is P_z(k) = fan·σ²·T(k)·P_h(k), where fan = b·in (b summed branches) and T is the
layer's transmission on the full frequency grid of the input (any spatial rank d):

- one branch (b = 1; FNO layers in 1-D, 2-D, 3-D): the weight keeps a block of modes on the first d-1
  (full) axes, both signs, and non-negative frequencies on the last (rfft's half) axis. T = 1 at a kept
  k whose last frequency lies strictly inside (0, N_d/2), and at its mirror -k; on the self-mirrored
  hyperplanes k_d = 0 (and k_d = N_d/2 when kept) irfftn averages the independent outputs at k and -k,
  so T = ([k kept] + [-k kept])/4 there (in 1-D: 1/2 at f = 0 and at a kept Nyquist frequency);
- factorized (b = d > 1 summed 1-D branches, one along each axis; the 2-D FFNO layer): the mean of the
  d 1-D transmissions, T = Σ_i T_{N_i}(k_i)/d, with T_N(f) = 1 for kept 0 < |f| < N/2 and 1/2 at f = 0
  and at a kept Nyquist frequency (irfft keeps only the real part there).

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

Parameters: ``resolution`` (the input's size per spatial axis: one int for every axis of whatever rank a
layer has, or a tuple with one size per axis; default 64) and ``activation`` (relu | gelu | tanh). The mean
field is solved on the full grid, at most ``MAX_GRID_POINTS`` points (64³ in 3-D). Layers of any spatial
rank with one branch, or factorized with one branch per axis, are modelled; others are refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..geometry import SpectralGeometry
from ..registry import Strategy, register_strategy
from .scaling import complex_normal_

__all__ = ["MAX_GRID_POINTS", "EdgeOfChaosParams", "MeanFieldGains", "fixed_point_spectrum", "grid_of",
           "kept_energy_fractions", "mean_field_gains", "transfer"]

Activation = Literal["relu", "gelu", "tanh"]


MAX_GRID_POINTS = 2**21  # the fixed point's arrays stay tens of MB; 64³ (3-D) and 1024² (2-D) fit


class EdgeOfChaosParams(BaseModel):
    """The strategy's own parameters (``SpectralInitSettings.params``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: int | tuple[int, ...] = Field(
        64, description="Input size per spatial axis: one int for every axis, or one per axis (H, W), (D, H, W)."
    )
    activation: Activation = Field("relu", description="The activation after every spectral layer.")

    @field_validator("resolution", mode="before")
    @classmethod
    def _sizes(cls, value: object) -> object:
        sizes = value if isinstance(value, (list, tuple)) else [value]
        if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 4096 for n in sizes):
            raise ValueError(f"resolution must be an integer between 1 and 4096, or a tuple of them (one per axis); "
                             f"got {value!r}")
        return tuple(value) if isinstance(value, list) else value


def grid_of(resolution: int | tuple[int, ...], rank: int) -> tuple[int, ...]:
    """The input's size per axis for a layer of spatial ``rank``: an int on every axis, or the tuple as given
    (which must then have ``rank`` sizes); at most ``MAX_GRID_POINTS`` points."""
    grid = (resolution,) * rank if isinstance(resolution, int) else tuple(resolution)
    if len(grid) != rank:
        raise ValueError(f"edge-of-chaos: resolution {resolution} has {len(grid)} sizes; this layer has {rank} spatial "
                         "axes (give one int for every axis, or one size per axis)")
    if math.prod(grid) > MAX_GRID_POINTS:
        raise ValueError(f"edge-of-chaos: resolution {grid} is {math.prod(grid):,} points; the mean field is solved on "
                         f"the full grid, at most {MAX_GRID_POINTS:,} (a smaller resolution: ρ_f settles as it grows)")
    return grid


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


def _full_axis_kept(size: int, kept: int) -> torch.Tensor:
    """1.0 at the kept frequencies of a full axis holding ``kept`` modes, k in [-kept//2, kept - kept//2)."""
    n_pos, n_neg = min(kept - kept // 2, (size + 1) // 2), min(kept // 2, size // 2)
    k = torch.arange(size)
    return ((k < n_pos) | (k >= size - n_neg)).double()


def _mirror(values: torch.Tensor) -> torch.Tensor:
    """values[(-k) mod N] on every axis."""
    if values.ndim == 0:
        return values
    axes = tuple(range(values.ndim))
    return torch.roll(torch.flip(values, axes), (1,) * values.ndim, axes)


def transfer(geometry: SpectralGeometry, *grid: int) -> torch.Tensor:
    """T(k) on the full frequency grid of an input of size ``grid`` (one size per axis; module docstring)."""
    rank = geometry.spatial_rank
    if rank == 0:
        return torch.ones(grid, dtype=torch.float64)
    if len(grid) != rank:
        raise ValueError(f"transfer: a layer of spatial rank {rank} needs {rank} grid sizes; got {grid}")
    if geometry.branches == rank > 1:
        axes = [_axis_transfer(size, kept).view([-1 if i == axis else 1 for i in range(rank)])
                for axis, (size, kept) in enumerate(zip(grid, geometry.modes))]
        return sum(axes) / rank
    if geometry.branches != 1:
        raise ValueError(
            "edge-of-chaos models spectral layers with one branch (FNO, any spatial rank) or factorized ones "
            f"with one branch per axis (FFNO); got spatial rank {rank} with {geometry.branches} summed branches. "
            "Use kaiming-complex, or calibrate_ on data"
        )
    kept = torch.ones(())
    for size, modes in zip(grid[:-1], geometry.modes[:-1]):  # the full axes: an outer product
        kept = kept[..., None] * _full_axis_kept(size, modes)
    mirror = _mirror(kept)[..., None]
    kept = kept[..., None]
    width = grid[-1]
    f = _frequency(torch.arange(width), width)
    kept_last = min(geometry.modes[-1], width // 2 + 1)
    inner = (f.abs() > 0) & (2 * f.abs() != width) & (f.abs() < kept_last)
    self_mirror = ((f == 0) | (2 * f.abs() == width)) & (f.abs() < kept_last)
    # a positive last frequency keeps k; its mirror -k_d holds the conjugates, of -k on the full axes
    t = torch.where(inner & (f > 0), kept, 0.0) + torch.where(inner & (f < 0), mirror, 0.0)
    return (t + torch.where(self_mirror, (kept + mirror) / 4, 0.0)).double()


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
# Every spectrum here is real and even (P(k) = P(-k): T is, and a real field's power is), so it is held as
# rfftn's half along the last axis and transformed with rfftn/irfftn: a 3-D solve at 64³ took 2.8 s this way
# against 8.3 s with complex FFTs of the full grid (1.6× at 32³; medians of 3, interleaved, nothing else running).

class _HalfSpectrum:
    """The real transforms of one grid, and each half-spectrum entry's multiplicity in the full grid."""

    def __init__(self, grid: tuple[int, ...]) -> None:
        self.grid = grid
        last = grid[-1]
        counts = np.full(last // 2 + 1, 2.0)
        counts[0] = 1.0
        if last % 2 == 0:
            counts[-1] = 1.0  # the Nyquist plane is its own mirror
        self.multiplicity = counts

    def half(self, full: np.ndarray) -> np.ndarray:
        return full[..., : self.grid[-1] // 2 + 1]

    def correlation(self, power: np.ndarray) -> np.ndarray:
        covariance = np.fft.irfftn(power, s=self.grid, axes=tuple(range(len(self.grid))))
        return np.clip(covariance / covariance.flat[0], -1.0, 1.0)

    def power(self, covariance: np.ndarray) -> np.ndarray:
        return np.clip(np.fft.rfftn(covariance).real, 0.0, None)

    def share(self, t: np.ndarray, power: np.ndarray) -> float:
        """Σ T·P / Σ P over the full grid."""
        return float((self.multiplicity * t * power).sum() / (self.multiplicity * power).sum())


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


def _fixed_point(spectrum: _HalfSpectrum, t: np.ndarray, activation: str) -> np.ndarray:
    """The forward fixed point P_z, as a half spectrum."""
    k = _kernel(activation, False)
    return _iterate(lambda p: t * spectrum.power(k(spectrum.correlation(p))), t)


def fixed_point_spectrum(geometry: SpectralGeometry, resolution: int | tuple[int, ...],
                         activation: str) -> torch.Tensor:
    """P_z (summing to 1) on the full input grid at the fixed point of P_z ← T·DFT(K_φ(c_z))."""
    if geometry.spatial_rank == 0:
        raise ValueError("fixed_point_spectrum needs a layer's kept modes (geometry.modes)")
    spectrum = _HalfSpectrum(grid_of(resolution, geometry.spatial_rank))
    p_z = _fixed_point(spectrum, spectrum.half(transfer(geometry, *spectrum.grid).numpy()), activation)
    full = np.clip(np.fft.fftn(spectrum.correlation(p_z)).real, 0.0, None)
    return torch.from_numpy(full / full.sum())


def kept_energy_fractions(geometry: SpectralGeometry, resolution: int | tuple[int, ...],
                          activation: str) -> tuple[float, float]:
    """(ρ_f, ρ_b): the kept share of φ(z)'s energy, and of φ'(z)⊙g's, at the mean-field fixed point."""
    if geometry.spatial_rank == 0:  # no kept-mode geometry: every mode counts as kept
        return 1.0, 1.0
    # channel counts do not enter: one solve per (branches, modes, grid, activation)
    return _fractions(geometry.branches, geometry.modes, grid_of(resolution, geometry.spatial_rank), activation)


@functools.lru_cache(maxsize=256)
def _fractions(branches: int, modes: tuple[int, ...], grid: tuple[int, ...],
               activation: str) -> tuple[float, float]:
    spectrum = _HalfSpectrum(grid)
    t = spectrum.half(transfer(SpectralGeometry(1, 1, branches, modes), *grid).numpy())
    k_prime = _kernel(activation, True)
    c_z = spectrum.correlation(_fixed_point(spectrum, t, activation))
    rho_f = spectrum.share(t, spectrum.power(_kernel(activation, False)(c_z)))
    p_g = _iterate(lambda p: t * spectrum.power(k_prime(c_z) * spectrum.correlation(p)), t)
    rho_b = spectrum.share(t, spectrum.power(k_prime(c_z) * spectrum.correlation(p_g)))
    return rho_f, rho_b


class MeanFieldGains(BaseModel):
    """Kept energy fractions and the activation's moments of one layer geometry (``describe`` shows them)."""

    rho_forward: float
    rho_backward: float
    activation_second_moment: float  # E[φ(u)²], u ~ N(0, 1)
    derivative_second_moment: float  # E[φ'(u)²]


def mean_field_gains(geometry: SpectralGeometry, resolution: int | tuple[int, ...],
                     activation: str) -> MeanFieldGains:
    rho_f, rho_b = kept_energy_fractions(geometry, resolution, activation)
    one = np.ones(())
    return MeanFieldGains(
        rho_forward=rho_f, rho_backward=rho_b,
        activation_second_moment=float(_kernel(activation, False)(one)),
        derivative_second_moment=float(_kernel(activation, True)(one)),
    )


def _second_moment(in_channels: int, out_channels: int, gain: float, *, geometry: SpectralGeometry,
                   resolution: int | tuple[int, ...], activation: str) -> float:
    g = mean_field_gains(geometry, resolution, activation)
    return gain * gain / (geometry.branches * in_channels * g.activation_second_moment * g.rho_forward)


def _fill(weight: torch.Tensor, *, in_channels: int, out_channels: int, gain: float,
          generator: torch.Generator | None, geometry: SpectralGeometry,
          resolution: int | tuple[int, ...], activation: str) -> None:
    complex_normal_(weight, _second_moment(in_channels, out_channels, gain, geometry=geometry,
                                           resolution=resolution, activation=activation), generator)


EDGE_OF_CHAOS: Strategy = register_strategy(
    "edge-of-chaos",
    second_moment=_second_moment,
    description="Mean-field edge of chaos with mode truncation: the variance map's fixed point for the "
    "layer's kept modes, input resolution and activation (params: resolution, activation). FNO layers of any "
    "spatial rank (1-D, 2-D, 3-D), and factorized ones with one branch per axis (FFNO).",
    formula="gain²/(b·in·E[φ²]·ρ_f)",
    distribution="circular complex normal",
    params_model=EdgeOfChaosParams,
)(_fill)
