"""Standard operator-learning problems, generated here (no downloads): Darcy flow and Burgers' equation
as in Li et al. 2020 ("Fourier neural operator for parametric PDEs"), each a function returning float32
tensors of shape (n, 1, s, s) or (n, 1, s).

    a, u = darcy_flow(n_samples=100, resolution=32, seed=0)
    u0, u1 = burgers(n_samples=100, resolution=256, seed=0)

Inputs are Gaussian random fields drawn on the periodic grid through the FFT: a field with covariance
σ²(−Δ + τ²)^(−α) has Fourier coefficients of standard deviation σ (4π²|k|² + τ²)^(−α/2), the mean
mode set to 0. The draws use numpy's PCG64 seeded
with ``seed``, so a seed gives the same samples on every machine.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["burgers", "darcy_flow", "gaussian_random_field", "solve_burgers", "solve_darcy"]


def gaussian_random_field(n_samples: int, resolution: int, dims: int, alpha: float, tau: float, sigma: float,
                          rng: np.random.Generator) -> np.ndarray:
    """(n, s, …, s) real samples of the zero-mean periodic field with covariance σ²(−Δ + τ²)^(−α) on the
    unit torus of ``dims`` dimensions, at ``resolution`` points per axis."""
    k = np.fft.fftfreq(resolution, d=1 / resolution)
    grids = np.meshgrid(*([k] * dims), indexing="ij")
    wavenumber_sq = sum(g**2 for g in grids)
    std = sigma * (4 * math.pi**2 * wavenumber_sq + tau**2) ** (-alpha / 2)
    std[(0,) * dims] = 0.0
    shape = (n_samples, *([resolution] * dims))
    # white noise's FFT has coefficients of variance s^dims with the Hermitian symmetry of a real field;
    # the inverse FFT divides by s^dims: a factor s^(dims/2) gives the field exactly the covariance above,
    # whose pointwise variance is Σ_k σ²(4π²|k|² + τ²)^(−α)
    axes = tuple(range(1, dims + 1))
    noise = np.fft.fftn(rng.standard_normal(shape), axes=axes)
    return np.fft.ifftn(noise * std * resolution ** (dims / 2), axes=axes).real


# --- Darcy flow ----------------------------------------------------------------------------------


def _face_coefficients(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic means of neighbouring nodes' coefficients: (s−1, s) across rows, (s, s−1) across columns.
    The harmonic mean keeps the flux continuous across a jump of a (12 next to 3)."""
    rows = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])
    cols = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    return rows, cols


def darcy_operator(u: np.ndarray, a: np.ndarray) -> np.ndarray:
    """−∇·(a∇u) at the interior nodes, (s−2, s−2), by the 5-point flux stencil of ``solve_darcy`` —
    applied directly, not through its matrix, so that it checks the matrix."""
    h = 1.0 / (a.shape[0] - 1)
    rows, cols = _face_coefficients(a)
    flux_rows = rows * (u[1:, :] - u[:-1, :])  # a_{i+½,j} (u_{i+1,j} − u_{i,j})
    flux_cols = cols * (u[:, 1:] - u[:, :-1])
    divergence = (flux_rows[1:, 1:-1] - flux_rows[:-1, 1:-1]) + (flux_cols[1:-1, 1:] - flux_cols[1:-1, :-1])
    return -divergence / h**2


def _solve_one(a: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    s = a.shape[0]
    m = s - 2  # interior nodes per axis
    h2 = (1.0 / (s - 1)) ** 2
    rows, cols = _face_coefficients(a)
    index = np.arange(m * m).reshape(m, m)
    # each interior node (i, j) (1-based on the full grid): its four face coefficients
    north, south = rows[:-1, 1:-1], rows[1:, 1:-1]  # faces (i−½, j), (i+½, j)
    west, east = cols[1:-1, :-1], cols[1:-1, 1:]
    entries = [(index, index, (north + south + west + east) / h2)]
    for face, shift in ((north, (-1, 0)), (south, (1, 0)), (west, (0, -1)), (east, (0, 1))):
        di, dj = shift
        i0, i1 = max(0, -di), m - max(0, di)
        j0, j1 = max(0, -dj), m - max(0, dj)
        # a neighbour on the boundary is 0 and drops out; an interior one couples with −face/h²
        entries.append((index[i0:i1, j0:j1], index[i0 + di : i1 + di, j0 + dj : j1 + dj], -face[i0:i1, j0:j1] / h2))
    r = np.concatenate([e[0].ravel() for e in entries])
    c = np.concatenate([e[1].ravel() for e in entries])
    v = np.concatenate([e[2].ravel() for e in entries])
    matrix = coo_matrix((v, (r, c)), shape=(m * m, m * m)).tocsr()
    u = np.zeros((s, s))
    u[1:-1, 1:-1] = spsolve(matrix, np.ones(m * m)).reshape(m, m)
    return u


def solve_darcy(coefficient: torch.Tensor) -> torch.Tensor:
    """u with −∇·(a∇u) = 1 on the unit square and u = 0 on its boundary, for each positive coefficient
    field a of ``coefficient`` (n, 1, s, s), s ≥ 3; (n, 1, s, s) in the coefficient's dtype (computed
    in float64).

    Discretization: s × s nodes x_i = i/(s−1) including the boundary (u = 0 there), h = 1/(s−1); at
    each of the (s−2)² interior nodes the flux balance
    [Σ over the 4 faces a_f (u_node − u_neighbour)] / h² = 1, with a_f the harmonic mean of the two
    nodes' coefficients; the sparse system is solved directly (scipy's ``spsolve``).
    """
    if coefficient.ndim != 4 or coefficient.shape[1] != 1 or coefficient.shape[2] != coefficient.shape[3]:
        raise ValueError(f"coefficient must be (n, 1, s, s); got {tuple(coefficient.shape)}")
    if coefficient.shape[-1] < 3:
        raise ValueError(f"a grid needs s >= 3 (one interior node); got s = {coefficient.shape[-1]}")
    a = coefficient.detach().to(torch.float64).cpu().numpy()[:, 0]
    if not np.all(np.isfinite(a)) or a.min() <= 0:
        raise ValueError(f"the coefficient must be finite and positive; its minimum is {a.min():.3g}")
    return torch.from_numpy(np.stack([_solve_one(field) for field in a])[:, None]).to(coefficient.dtype)


def darcy_flow(n_samples: int, resolution: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, u), each (n, 1, s, s) float32: a = 12 where a Gaussian random field with covariance
    (−Δ + 9)^(−2) is ≥ 0 and 3 elsewhere (Li et al. 2020), u = ``solve_darcy(a)``."""
    rng = np.random.default_rng(seed)
    field = gaussian_random_field(n_samples, resolution, 2, alpha=2.0, tau=3.0, sigma=1.0, rng=rng)
    a = torch.from_numpy(np.where(field >= 0, 12.0, 3.0)[:, None]).to(torch.float32)
    return a, solve_darcy(a)


# --- Burgers' equation ---------------------------------------------------------------------------


def solve_burgers(u0: torch.Tensor, viscosity: float, horizon: float = 1.0, cfl: float = 0.5) -> torch.Tensor:
    """u(t = ``horizon``) of u_t + u u_x = ν u_xx on the periodic unit interval from each row of ``u0``
    (n, 1, s); (n, 1, s) in ``u0``'s dtype (computed in float64).

    Pseudo-spectral: the diffusion is integrated exactly (integrating factor e^{−ν(2πk)²t}), the
    advection −(u²/2)_x explicitly with classical RK4 (Lawson's integrating-factor form), its product
    dealiased by the 2/3 rule (modes above s/3 zeroed). The step is a fraction ``cfl`` of the advective
    limit dx / max|u0| (the maximum principle keeps max|u| ≤ max|u0|), and at most the horizon / 50;
    at 0.5 the fastest kept mode moves 2π/3 · 0.5 ≈ 1.05 < 2.8, inside RK4's stability on the
    imaginary axis.
    """
    if u0.ndim != 3 or u0.shape[1] != 1:
        raise ValueError(f"u0 must be (n, 1, s); got {tuple(u0.shape)}")
    if viscosity <= 0 or horizon <= 0:
        raise ValueError(f"viscosity and horizon must be positive; got {viscosity}, {horizon}")
    u = u0.detach().to(torch.float64).cpu().numpy()[:, 0]
    s = u.shape[-1]
    k = np.fft.rfftfreq(s, d=1 / s)
    derivative = 2j * math.pi * k
    keep = k <= s / 3  # 2/3 dealiasing
    peak = max(float(np.abs(u).max()), 1e-12)
    steps = max(50, math.ceil(horizon / (cfl / s / peak)))
    dt = horizon / steps
    half = np.exp(-viscosity * (2 * math.pi * k) ** 2 * dt / 2)

    def advection(v_hat: np.ndarray) -> np.ndarray:
        v = np.fft.irfft(v_hat, n=s)
        return -0.5 * derivative * np.fft.rfft(v * v) * keep

    v = np.fft.rfft(u)
    for _ in range(steps):
        # RK4 on w = e^{νk²t} v, written back in v's frame: the stages at t, t + dt/2 and t + dt
        k1 = advection(v)
        k2 = advection(half * (v + dt / 2 * k1))
        k3 = advection(half * v + dt / 2 * k2)
        k4 = advection(half * half * v + dt * half * k3)
        v = half * half * v + dt / 6 * (half * half * k1 + 2 * half * (k2 + k3) + k4)
    return torch.from_numpy(np.fft.irfft(v, n=s)[:, None]).to(u0.dtype)


def burgers(n_samples: int, resolution: int, seed: int, viscosity: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """(u0, u(t = 1)), each (n, 1, s) float32: u0 a Gaussian random field with covariance
    625(−Δ + 25)^(−2) (Li et al. 2020), evolved by ``solve_burgers`` with viscosity ν."""
    rng = np.random.default_rng(seed)
    u0 = gaussian_random_field(n_samples, resolution, 1, alpha=2.0, tau=5.0, sigma=25.0, rng=rng)
    initial = torch.from_numpy(u0[:, None]).to(torch.float32)
    return initial, solve_burgers(initial, viscosity)
