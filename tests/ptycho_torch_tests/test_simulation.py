"""The ptychography simulator: forward model, noise, objects, probes and datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptycho_torch.simulation import (
    SimulationConfig,
    diffraction_amplitude,
    disk_probe,
    lines_object,
    load_probe,
    poisson_counts,
    simulate_dataset,
)


def test_parseval() -> None:
    g = torch.Generator().manual_seed(0)
    patch = torch.randn(3, 32, 32, dtype=torch.complex128, generator=g)
    probe = disk_probe(32).to(torch.complex128)
    amp = diffraction_amplitude(patch, probe)
    torch.testing.assert_close(amp.square().sum(dim=(-2, -1)), (probe * patch).abs().square().sum(dim=(-2, -1)))


def test_flat_object_gives_the_probes_diffraction() -> None:
    probe = disk_probe(64)
    flat = torch.full((64, 64), 0.7 * complex(math.cos(1.1), math.sin(1.1)), dtype=torch.complex64)
    expected = 0.7 * torch.fft.fftshift(torch.fft.fft2(probe, norm="ortho")).abs()
    torch.testing.assert_close(diffraction_amplitude(flat, probe), expected, rtol=1e-5, atol=1e-5)
    # centred: a flat-phase disk's far field peaks at DC, which fftshift puts at (N/2, N/2)
    amp = diffraction_amplitude(flat, probe)
    assert divmod(int(amp.argmax()), 64) == (32, 32)


@pytest.mark.parametrize("rate", [4.0, 100.0])
def test_poisson_counts_mean_and_variance(rate: float) -> None:
    """Sample mean ± 6·√(λ/n); sample variance ± 6·√((λ + 2λ²)/n): false-failure ≈ 2e-9 each."""
    n = 200_000
    scale = 2.0
    amplitude = torch.full((n,), math.sqrt(rate) / scale)
    counts = poisson_counts(amplitude, scale, torch.Generator().manual_seed(1)).double()
    assert torch.equal(counts, counts.round()) and counts.min() >= 0
    assert abs(counts.mean().item() - rate) < 6 * math.sqrt(rate / n)
    assert abs(counts.var().item() - rate) < 6 * math.sqrt((rate + 2 * rate**2) / n)


def test_lines_object_is_deterministic_and_in_range() -> None:
    a, b, c = lines_object(96, seed=3), lines_object(96, seed=3), lines_object(96, seed=4)
    assert a.shape == (96, 96) and a.dtype == torch.complex64
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().min() >= 0.5 - 1e-6 and a.abs().max() <= 1 + 1e-6
    assert a.angle().min() >= -1e-6 and a.angle().max() <= math.pi / 2 + 1e-6
    with pytest.raises(ValueError, match="n_lines"):
        lines_object(32, n_lines=0)


def test_disk_probe() -> None:
    probe = disk_probe(64)
    assert probe.shape == (64, 64) and probe.dtype == torch.complex64
    assert probe[32, 32].abs() > 0.99 and probe[0, 0].abs() < 1e-3
    torch.testing.assert_close(probe, probe.flip(0).flip(1))


def test_load_probe(tmp_path) -> None:
    good = tmp_path / "probe.npz"
    array = (np.random.default_rng(0).standard_normal((16, 16)) + 1j).astype(np.complex64)
    np.savez(good, probeGuess=array)
    assert torch.equal(load_probe(good, 16), torch.from_numpy(array))
    with pytest.raises(ValueError, match=r"shape \(16, 16\), expected \(32, 32\)"):
        load_probe(good, 32)
    other = tmp_path / "other.npz"
    np.savez(other, probe=array)
    with pytest.raises(ValueError, match="no 'probeGuess'"):
        load_probe(other, 16)
    with pytest.raises(FileNotFoundError):
        load_probe(tmp_path / "missing.npz", 16)


def test_dataset_shapes_scale_and_patches() -> None:
    config = SimulationConfig(N=32, nphotons=1e6)
    data = simulate_dataset(config, nimgs=2, seed=0)
    per_image = ((2 * 32 - 32) // 8 + 1) ** 2
    assert len(data) == 2 * per_image
    assert data.amplitudes.shape == data.counts.shape == (2 * per_image, 1, 32, 32)
    assert data.amplitudes.dtype == torch.float32 and data.objects.dtype == torch.complex64
    # On average a pattern holds nphotons photons: Σ counts has std ≈ √(n·1e6) over n patterns.
    assert abs(data.counts.double().sum(dim=(-2, -1)).mean().item() / 1e6 - 1) < 6 / math.sqrt(len(data) * 1e6)
    torch.testing.assert_close(data.amplitudes, torch.sqrt(data.counts) / data.intensity_scale)
    # The first patch is the object's top-left corner.
    torch.testing.assert_close(data.objects[0], lines_object(64, seed=0)[:32, :32])


def test_test_set_uses_other_images_and_the_given_scale() -> None:
    config = SimulationConfig(N=32)
    train = simulate_dataset(config, 1, seed=0)
    test = simulate_dataset(config, 1, seed=7, intensity_scale=train.intensity_scale)
    assert test.intensity_scale == train.intensity_scale
    assert not torch.equal(train.objects, test.objects)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(N=33), "positive even"),
        (dict(gridsize=2), "gridsize must be 1"),
        (dict(N=32, object_size=16), "object_size"),
        (dict(nphotons=0), "nphotons"),
        (dict(N=-2), "N"),
    ],
)
def test_simulation_config_rejects_bad_input(kwargs, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        SimulationConfig(**kwargs)


def test_a_defocused_disk_has_the_fresnel_quadratic_phase_within_the_bound() -> None:
    from ptycho_torch.simulation.probe import max_defocus

    flat, defocused = disk_probe(32), disk_probe(32, defocus=5.0)
    torch.testing.assert_close(defocused.abs(), flat.abs())
    coords = torch.arange(32, dtype=torch.float64) - 15.5
    r2 = coords.view(-1, 1) ** 2 + coords.view(1, -1) ** 2
    inside = flat.abs() > 0.5
    expected = torch.polar(torch.ones_like(r2), 5.0 * r2 / 8**2)  # d·(r/R)², R = N/4 = 8
    torch.testing.assert_close(defocused[inside].to(torch.complex128), (expected * flat.abs())[inside],
                               rtol=1e-5, atol=1e-5)
    assert max_defocus(32) == pytest.approx(math.pi * 8 / 2)
    with pytest.raises(ValueError, match=r"probe_defocus must be within ±π·N/8 = ±12.57 rad for N = 32"):
        SimulationConfig(N=32, probe_defocus=-13)
    with pytest.raises(ValueError, match="a probe_path's probe has its own phase"):
        SimulationConfig(N=32, probe_defocus=1, probe_path="probe.npz")


def test_defocus_spreads_the_pattern_and_the_dynamic_range_says_so() -> None:
    flat = simulate_dataset(SimulationConfig(N=32), 1, seed=0).dynamic_range()
    defocused = simulate_dataset(SimulationConfig(N=32, probe_defocus=12), 1, seed=0).dynamic_range()
    # the flat disk's DC peak stands ~10³ above the median amplitude; a defocused disk spreads the light
    # over the pattern (a wider, flatter far field): a far smaller peak ratio and fewer dark pixels
    assert flat["peak_over_median"] > 300, flat
    assert defocused["peak_over_median"] < flat["peak_over_median"] / 10, (flat, defocused)
    assert 0 <= defocused["zero_count_share"] < flat["zero_count_share"], (flat, defocused)


@pytest.mark.parametrize("scan", ["random", "spiral"])
def test_random_and_spiral_scans_cover_the_object_at_the_grids_density(scan) -> None:
    grid = SimulationConfig(N=32, object_size=96, offset=8)
    config = SimulationConfig(N=32, object_size=96, offset=8, scan=scan)
    positions = torch.tensor(config.scan_positions, dtype=torch.float64)
    span = config.canvas - config.N - 1
    # as many positions as the grid (a spiral loses at most a few to the square's corners), all sub-pixel
    # and inside the canvas, the same ones every time
    assert grid.grid_positions - 3 <= len(positions) <= grid.patches_per_object == len(grid.scan_positions) == 81
    assert config.patches_per_object == len(positions)
    assert bool(((positions >= 0) & (positions <= span)).all()) and bool((positions.frac() != 0).any())
    assert config.scan_positions == SimulationConfig(N=32, object_size=96, offset=8, scan=scan).scan_positions
    # spread over the square: each quadrant holds a quarter of them. Random: Binomial(81, 1/4) per quadrant,
    # P(outside [8, 33]) = 7.7e-4 each (exact binomial tails), and the draw is fixed: it cannot flake
    quadrant = (positions[:, 0] > span / 2).long() * 2 + (positions[:, 1] > span / 2).long()
    assert all(8 <= int((quadrant == q).sum()) <= 33 for q in range(4))
    data = simulate_dataset(config, 1, seed=0)
    assert data.amplitudes.shape == (len(positions), 1, 32, 32) and bool(torch.isfinite(data.amplitudes).all())


def test_a_sub_pixel_patch_is_the_object_interpolated_there() -> None:
    config = SimulationConfig(N=16, object_size=48, scan="random")
    data = simulate_dataset(config, 1, seed=3)
    obj = lines_object(config.canvas, config.n_lines, seed=3)
    row, col = config.scan_positions[0]
    r0, c0, f, g = int(row), int(col), row % 1, col % 1
    expected = ((1 - f) * (1 - g) * obj[r0 : r0 + 16, c0 : c0 + 16] + f * (1 - g) * obj[r0 + 1 : r0 + 17, c0 : c0 + 16]
                + (1 - f) * g * obj[r0 : r0 + 16, c0 + 1 : c0 + 17] + f * g * obj[r0 + 1 : r0 + 17, c0 + 1 : c0 + 17])
    assert torch.allclose(data.objects[0], expected.to(data.objects.dtype), atol=1e-6)


@pytest.mark.parametrize("kind", ["lines", "siemens", "smooth", "natural"])
def test_every_object_kind_is_deterministic_and_in_the_lines_range(kind) -> None:
    from ptycho_torch.simulation import object_of_kind

    a, b, other = object_of_kind(kind, 48, 3), object_of_kind(kind, 48, 3), object_of_kind(kind, 48, 4)
    assert a.shape == (48, 48) and a.dtype == torch.complex64 and torch.equal(a, b) and not torch.equal(a, other)
    assert a.abs().min().item() == pytest.approx(0.5, abs=1e-6) and a.abs().max().item() == pytest.approx(1, abs=1e-6)
    assert 0 <= a.angle().min().item() and a.angle().max().item() == pytest.approx(math.pi / 2, abs=1e-6)


def test_the_siemens_star_has_its_spokes() -> None:
    """Around a ring at half the radius, 36 spokes make 72 transitions between dark and bright."""
    from ptycho_torch.simulation.objects import siemens_star_object

    star = siemens_star_object(128, seed=0, spokes=36).abs()
    angles = torch.linspace(0, 2 * math.pi, 2000, dtype=torch.float64)[:-1]
    rows = (63.5 + 30 * torch.sin(angles)).round().long()
    cols = (63.5 + 30 * torch.cos(angles)).round().long()
    bright = star[rows, cols] > 0.75
    assert int((bright != bright.roll(1)).sum()) == 72


def test_an_unknown_object_kind_is_refused_by_name() -> None:
    from ptycho_torch.simulation import object_of_kind

    with pytest.raises(ValueError, match="unknown object kind 'cat'; choose from lines, siemens, smooth, natural"):
        object_of_kind("cat", 32, 0)


def test_a_natural_object_is_two_photographs_cropped_and_resized() -> None:
    """Amplitude and phase come from two different bundled images: each is an area-average of one of them
    (a crop's mean grey level survives averaging), and the two are not the same picture."""
    from skimage import data as images

    from ptycho_torch.simulation.objects import NATURAL_IMAGES, natural_object

    obj = natural_object(64, seed=5)
    amplitude, phase = (obj.abs() - 0.5) / 0.5, obj.angle() / (math.pi / 2)
    assert abs(torch.corrcoef(torch.stack([amplitude.flatten(), phase.flatten()]))[0, 1].item()) < 0.9
    for name in NATURAL_IMAGES:  # every listed image is bundled: no download
        assert getattr(images, name)().size > 64 * 64
    # the same seed's crops rebuilt independently: amplitude and phase are the area-averaged crops
    generator = torch.Generator().manual_seed(5)
    first, second = torch.randperm(len(NATURAL_IMAGES), generator=generator)[:2].tolist()
    for name, got in ((NATURAL_IMAGES[first], amplitude), (NATURAL_IMAGES[second], phase)):
        image = torch.as_tensor(getattr(images, name)(), dtype=torch.float64)
        image = image.mean(-1) if image.ndim == 3 else image
        side = int(min(image.shape) * (0.5 + 0.5 * torch.rand(1, generator=generator, dtype=torch.float64).item()))
        top, left = (int(torch.randint(e - side + 1, (1,), generator=generator)) for e in image.shape)
        crop = image[top:top + side, left:left + side]
        expected = torch.nn.functional.interpolate(crop[None, None], size=(64, 64), mode="area")[0, 0]
        expected = (expected - expected.min()) / (expected.max() - expected.min())
        torch.testing.assert_close(got.double(), expected, atol=2e-6, rtol=0)


def test_a_simulation_takes_its_object_kinds_in_turn() -> None:
    from ptycho_torch.simulation import object_of_kind, simulated_objects

    config = SimulationConfig(N=16, object_size=32, object_kinds=("lines", "smooth"), n_lines=7)
    made = simulated_objects(config, 3, seed=10)
    torch.testing.assert_close(made[1], object_of_kind("smooth", 32, 11))
    from ptycho_torch.simulation.objects import lines_object

    torch.testing.assert_close(made[2], lines_object(32, 7, seed=12))  # the lines keep the config's n_lines
    with pytest.raises(ValueError, match="object_kinds"):
        SimulationConfig(N=16, object_kinds=("lines", "cat"))


def test_a_scan_of_given_objects_reads_their_patches() -> None:
    from ptycho_torch.scan.placement import PatchPlacement
    from ptycho_torch.simulation import object_of_kind

    config = SimulationConfig(N=16, object_size=32, offset=4)
    objects = [object_of_kind("siemens", 32, 1), object_of_kind("smooth", 32, 2)]
    data = simulate_dataset(config, 2, seed=0, objects=objects)
    placement = PatchPlacement(config.scan_positions, config.canvas, config.N)
    torch.testing.assert_close(data.objects, torch.cat([placement.extract(o) for o in objects]))
    with pytest.raises(ValueError, match="2 objects of 32 × 32 px"):
        simulate_dataset(config, 2, seed=0, objects=objects[:1])
