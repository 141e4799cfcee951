"""The operator-learning problems: the solvers solve their equations, converge, and the data are seeded."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("scipy")

from benchmarks.pde_tasks import (  # noqa: E402
    burgers,
    darcy_flow,
    darcy_operator,
    gaussian_random_field,
    solve_burgers,
    solve_darcy,
)

# The maximum of the torsion function (−Δu = 1 on the unit square, u = 0 on its boundary), at the centre.
TORSION_CENTRE = 0.0736713532814


def test_the_random_field_has_the_covariance_asked_for() -> None:
    # one point per sample: 4,000 independent N(0, Σλ) draws, whose sample variance has relative standard
    # error √(2/3999) = 0.0224; 5 of them (0.112) fail a correct field with probability < 1e-6
    rng = np.random.default_rng(1)
    for dims, resolution, alpha, tau, sigma in ((1, 64, 2.0, 5.0, 25.0), (2, 16, 2.0, 3.0, 1.0)):
        field = gaussian_random_field(4000, resolution, dims, alpha, tau, sigma, rng)
        k = np.fft.fftfreq(resolution, d=1 / resolution)
        k2 = sum(g**2 for g in np.meshgrid(*([k] * dims), indexing="ij"))
        eigenvalues = sigma**2 * (4 * math.pi**2 * k2 + tau**2) ** (-alpha)
        expected = eigenvalues.sum() - eigenvalues[(0,) * dims]  # the mean mode is removed
        observed = field[(slice(None),) + (0,) * dims].var(ddof=1)
        assert abs(observed / expected - 1) < 0.112, (dims, observed, expected)
        assert np.allclose(field.mean(axis=tuple(range(1, dims + 1))), 0, atol=1e-12)  # zero-mean per sample


def test_darcy_solution_satisfies_its_discrete_equation() -> None:
    a, _ = darcy_flow(3, 24, seed=5)
    u = solve_darcy(a.double())
    for field, solution in zip(a.double().numpy()[:, 0], u.numpy()[:, 0]):
        residual = darcy_operator(solution, field) - 1.0
        assert np.abs(residual).max() <= 1e-6  # relative to the right-hand side 1
        assert np.all(solution[[0, -1], :] == 0) and np.all(solution[:, [0, -1]] == 0)
        assert solution[1:-1, 1:-1].min() > 0  # a positive source gives a positive solution inside


def test_darcy_converges_at_second_order_to_the_torsion_function() -> None:
    errors = [abs(solve_darcy(torch.ones(1, 1, s, s, dtype=torch.float64))[0, 0, s // 2, s // 2].item()
                  - TORSION_CENTRE) for s in (9, 17, 33, 65)]
    assert errors[-1] < 2e-5
    for coarse, fine in zip(errors, errors[1:]):  # h halves: the error quarters (ratios measured 3.9–4.0)
        assert 3.5 < coarse / fine < 4.5


def test_a_larger_coefficient_gives_a_proportionally_smaller_solution() -> None:
    a, _ = darcy_flow(2, 16, seed=0)
    u = solve_darcy(a.double())
    assert torch.allclose(solve_darcy(4 * a.double()), u / 4, rtol=1e-10, atol=1e-14)


def test_darcy_data_are_seeded_thresholded_and_float32() -> None:
    a, u = darcy_flow(4, 16, seed=7)
    assert a.shape == u.shape == (4, 1, 16, 16) and a.dtype == u.dtype == torch.float32
    assert set(a.unique().tolist()) == {3.0, 12.0}
    again_a, again_u = darcy_flow(4, 16, seed=7)
    assert torch.equal(a, again_a) and torch.equal(u, again_u)
    assert not torch.equal(a, darcy_flow(4, 16, seed=8)[0])


def _cole_hopf(x: np.ndarray, t: float, viscosity: float) -> np.ndarray:
    """An exact solution: u = −2ν φ_x / φ with φ = 1.5 + e^{−ν(2π)²t} cos 2πx + 0.3 e^{−ν(6π)²t} cos 6πx
    solving the heat equation (the Cole–Hopf transform)."""
    d1, d3 = math.exp(-viscosity * (2 * math.pi) ** 2 * t), math.exp(-viscosity * (6 * math.pi) ** 2 * t)
    phi = 1.5 + d1 * np.cos(2 * np.pi * x) + 0.3 * d3 * np.cos(6 * np.pi * x)
    phi_x = -2 * np.pi * d1 * np.sin(2 * np.pi * x) - 0.3 * 6 * np.pi * d3 * np.sin(6 * np.pi * x)
    return -2 * viscosity * phi_x / phi


@pytest.mark.parametrize("viscosity", [0.1, 0.02])
def test_burgers_matches_the_cole_hopf_solution_and_converges(viscosity: float) -> None:
    errors = []
    for s in (64, 128, 256):
        x = np.arange(s) / s
        u0 = torch.from_numpy(_cole_hopf(x, 0.0, viscosity))[None, None]
        u1 = solve_burgers(u0, viscosity, horizon=1.0)[0, 0].numpy()
        exact = _cole_hopf(x, 1.0, viscosity)
        errors.append(np.abs(u1 - exact).max() / np.abs(exact).max())
    assert errors[-1] <= 1e-6, errors
    assert errors[0] > errors[1] > errors[2], errors


def test_burgers_conserves_the_mean_and_loses_energy() -> None:
    u0, u1 = burgers(8, 128, seed=3)
    shifted = solve_burgers(u0.double() + 0.5, 0.1)
    assert torch.allclose(shifted.mean(-1), u0.double().mean(-1) + 0.5, atol=1e-12)
    assert torch.all(u1.square().sum(-1) < u0.square().sum(-1))  # viscosity dissipates energy


def test_burgers_data_are_seeded_and_float32() -> None:
    u0, u1 = burgers(3, 64, seed=2)
    assert u0.shape == u1.shape == (3, 1, 64) and u0.dtype == u1.dtype == torch.float32
    assert torch.equal(u1, burgers(3, 64, seed=2)[1])
    assert not torch.equal(u0, burgers(3, 64, seed=4)[0])


def test_the_solvers_refuse_what_they_cannot_solve() -> None:
    with pytest.raises(ValueError, match=r"coefficient must be \(n, 1, s, s\); got \(2, 8, 8\)"):
        solve_darcy(torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match="finite and positive; its minimum is -1"):
        solve_darcy(-torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="s >= 3"):
        solve_darcy(torch.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"u0 must be \(n, 1, s\); got \(4, 16\)"):
        solve_burgers(torch.zeros(4, 16), 0.1)
    with pytest.raises(ValueError, match="viscosity and horizon must be positive; got 0"):
        solve_burgers(torch.zeros(1, 1, 16), 0.0)
