"""Near-field propagation against closed forms: a plane wave, a Gaussian beam's width in the near and
the far field, energy, and the X-ray regime's digits."""

from __future__ import annotations

import math

import pytest
import torch

from ptycho_torch.optics import angular_spectrum_transfer, propagate


def gaussian(n: int, pixel: float, waist: float) -> torch.Tensor:
    x = (torch.arange(n, dtype=torch.float64) - n / 2) * pixel
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    return torch.exp(-r2 / waist**2).to(torch.complex128)


def second_moment_width(field: torch.Tensor, pixel: float) -> float:
    """w from the intensity's second moment along one axis: I ∝ exp(−2x²/w²) has ⟨x²⟩ = w²/4."""
    n = field.shape[-1]
    x = (torch.arange(n, dtype=torch.float64) - n / 2) * pixel
    intensity = field.abs().double() ** 2
    profile = intensity.sum(dim=0)
    mean = (profile * x).sum() / profile.sum()
    return 2 * math.sqrt(((profile * (x - mean) ** 2).sum() / profile.sum()).item())


def test_a_plane_wave_stays_a_plane_wave() -> None:
    transfer = angular_spectrum_transfer((64, 64), (1e-7, 1e-7), 1e-10, 3.6e-3)
    out = propagate(torch.ones(64, 64, dtype=torch.complex64), transfer)
    torch.testing.assert_close(out, torch.ones_like(out), atol=1e-6, rtol=0)


@pytest.mark.parametrize("z_over_rayleigh", [0.5, 1.0, 2.0, 8.0])
def test_a_gaussian_beam_widens_as_w0_sqrt_1_plus_z_over_zr_squared(z_over_rayleigh) -> None:
    """Paraxial Gaussian beam: w(z) = w₀·√(1 + (z/z_R)²), z_R = π·w₀²/λ — near field at z_R and below, the
    far field's cone w₀·z/z_R (divergence λ/(π·w₀)) at 8·z_R, which the formula then meets within 0.8%."""
    n, pixel, wavelength, waist = 512, 1.0, 0.5, 8.0
    rayleigh = math.pi * waist**2 / wavelength
    z = z_over_rayleigh * rayleigh
    transfer = angular_spectrum_transfer((n, n), (pixel, pixel), wavelength, z).to(torch.complex128)
    out = propagate(gaussian(n, pixel, waist), transfer)
    expected = waist * math.sqrt(1 + z_over_rayleigh**2)
    # the grid's discretization and the non-paraxial exact kernel: well under 0.5% at these sizes
    assert second_moment_width(out, pixel) == pytest.approx(expected, rel=5e-3)


def test_energy_is_conserved_and_backward_undoes_forward() -> None:
    g = torch.Generator().manual_seed(0)
    field = torch.randn(96, 80, generator=g, dtype=torch.complex64)
    forward = angular_spectrum_transfer((96, 80), (1.8e-7, 1.8e-7), 9.8e-11, 3.64e-3)
    backward = angular_spectrum_transfer((96, 80), (1.8e-7, 1.8e-7), 9.8e-11, -3.64e-3)
    out = propagate(field, forward)
    assert out.abs().square().sum().item() == pytest.approx(field.abs().square().sum().item(), rel=1e-5)
    torch.testing.assert_close(propagate(out, backward), field, atol=1e-5, rtol=1e-5)


def test_x_ray_phases_keep_their_digits_and_match_the_fresnel_kernel() -> None:
    """At λ ≈ 1e-10 m, 1/λ² ≈ 1e20 dwarfs f² ≈ 1e13: the naive √(1/λ² − f²) − 1/λ loses every digit in
    float32; the paraxial (Fresnel) kernel −π·λ·z·f² is then exact to (λf)² ≈ 1e-7 relative."""
    shape, pixel, wavelength, z = (100, 100), (1.79e-7, 1.79e-7), 9.79e-11, 3.64e-3
    transfer = angular_spectrum_transfer(shape, pixel, wavelength, z)
    fy = torch.fft.fftfreq(shape[0], d=pixel[0], dtype=torch.float64)
    fx = torch.fft.fftfreq(shape[1], d=pixel[1], dtype=torch.float64)
    fresnel = torch.polar(torch.ones(shape, dtype=torch.float64),
                          -math.pi * wavelength * z * (fy[:, None] ** 2 + fx[None, :] ** 2))
    torch.testing.assert_close(transfer, fresnel.to(torch.complex64), atol=2e-5, rtol=0)
    assert transfer.abs().min().item() == pytest.approx(1.0)  # nothing evanescent at X-ray wavelengths


def test_evanescent_frequencies_are_dropped() -> None:
    transfer = angular_spectrum_transfer((32, 32), (0.2, 0.2), 1.0, 5.0)  # f up to 2.5 > 1/λ = 1
    f = torch.fft.fftfreq(32, d=0.2, dtype=torch.float64)
    evanescent = (f[:, None] ** 2 + f[None, :] ** 2) >= 1.0
    assert evanescent.any() and (transfer[evanescent] == 0).all() and (transfer[~evanescent].abs() > 0.99).all()


@pytest.mark.parametrize("kwargs, message", [({"wavelength": 0.0}, "wavelength"), ({"distance": math.inf}, "finite"),
                                             ({"pixel_size": (0.0, 1.0)}, "pixel_size")])
def test_bad_geometry_is_refused(kwargs, message) -> None:
    args = {"shape": (8, 8), "pixel_size": (1.0, 1.0), "wavelength": 1.0, "distance": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        angular_spectrum_transfer(**args)


def test_the_far_field_propagator_is_the_simulations_and_back_undoes_it() -> None:
    from ptycho_torch.optics import FAR_FIELD, Propagator

    g = torch.Generator().manual_seed(1)
    wave = torch.randn(3, 16, 16, generator=g, dtype=torch.complex64)
    expected = torch.fft.fftshift(torch.fft.fft2(wave, norm="ortho"), dim=(-2, -1)).abs()
    torch.testing.assert_close(FAR_FIELD.amplitude(wave), expected)
    torch.testing.assert_close(FAR_FIELD.back(FAR_FIELD.field(wave)), wave, atol=1e-5, rtol=1e-5)
    near = Propagator.near_field((16, 16), (1e-7, 1e-7), 1e-10, 1e-3)
    torch.testing.assert_close(near.back(near.field(wave)), wave, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="transfer function"):
        Propagator("near-field")
    with pytest.raises(ValueError, match="far-field' or 'near-field"):
        Propagator("fresnel")


def test_a_moved_object_under_a_fixed_probe() -> None:
    """An integer shift s: the exit wave is P(x)·O(x + s), the object moved and the probe where it was."""
    from ptycho_torch.optics import fourier_shift, moved_exit_wave

    g = torch.Generator().manual_seed(2)
    obj = torch.randn(2, 12, 12, generator=g, dtype=torch.complex64)
    probe = torch.randn(12, 12, generator=g, dtype=torch.complex64)
    shifts = torch.tensor([[0.0, 0.0], [2.0, -3.0]])
    torch.testing.assert_close(fourier_shift(obj, shifts)[1], torch.roll(obj[1], (2, -3), dims=(0, 1)),
                               atol=1e-5, rtol=1e-5)
    moved = moved_exit_wave(obj, probe, shifts)
    torch.testing.assert_close(moved[0], probe * obj[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(moved[1], probe * torch.roll(obj[1], (-2, 3), dims=(0, 1)), atol=1e-5, rtol=1e-5)


def test_the_loss_leaves_bad_pixels_out() -> None:
    from ptycho_torch.optics import Propagator
    from ptycho_torch.physics import physics_loss

    g = torch.Generator().manual_seed(3)
    obj = torch.randn(2, 8, 8, generator=g, dtype=torch.complex64)
    probe = torch.ones(8, 8, dtype=torch.complex64)
    near = Propagator.near_field((8, 8), (1.0, 1.0), 0.5, 3.0)
    measured = near.amplitude(probe * obj).unsqueeze(1)
    assert physics_loss(obj, probe, measured, measured, 1.0, propagator=near).item() < 1e-6
    broken = measured.clone()
    broken[..., 3, 4] += 100.0  # a dead pixel's nonsense
    good = torch.ones(8, 8, dtype=torch.bool)
    good[3, 4] = False
    assert physics_loss(obj, probe, broken, broken, 1.0, propagator=near).item() > 1.0
    assert physics_loss(obj, probe, broken, broken, 1.0, propagator=near, good_pixels=good).item() < 1e-6
