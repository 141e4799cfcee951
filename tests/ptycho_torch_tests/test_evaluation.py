"""The stitched-object measure: stitching, the scanned box, phase alignment, FRC and the metrics'
directions (perfect scores perfectly, shifted and noisy objects score worse)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from ptycho_torch.evaluation import (
    METRIC_NAMES,
    evaluate_objects,
    frc_resolution,
    lattice_floor,
    lattice_note,
    lattice_share,
    on_lattice,
    peak_signal_noise_ratio,
    phase_images,
    reconstruction_metrics,
    remove_phase_offset_and_plane,
    scanned_box,
    stitch,
    structural_similarity,
)
from ptycho_torch.simulation import SimulationConfig, lines_object, simulate_dataset

CONFIG = SimulationConfig(N=32, nimgs_train=1, nimgs_test=2)


@pytest.fixture(scope="module")
def data():
    return simulate_dataset(CONFIG, CONFIG.nimgs_test, seed=100)


def scores(pred_patches: torch.Tensor, data, config: SimulationConfig = CONFIG) -> dict[str, float | None]:
    return reconstruction_metrics(evaluate_objects(pred_patches, data))


def test_a_perfect_prediction_scores_perfectly(data) -> None:
    result = scores(data.objects.clone(), data)
    assert set(result) == set(METRIC_NAMES)
    assert result["mae_amp"] < 1e-6 and result["mae_phase"] < 1e-6
    assert result["ssim_amp"] == pytest.approx(1, abs=1e-6) and result["ssim_phase"] == pytest.approx(1, abs=1e-6)
    assert result["psnr_amp"] is None and result["psnr_phase"] is None  # infinite: no error at all
    assert result["frc_amp"] == result["frc_phase"] == 0.5  # correlated up to Nyquist


def test_the_stitched_truth_is_the_object_over_the_scanned_box(data) -> None:
    (first, *_) = evaluate_objects(data.objects.clone(), data)
    obj = lines_object(CONFIG.canvas, CONFIG.n_lines, seed=100).to(torch.complex128).numpy()
    rows, cols = first.truth.shape
    # the disk probe leaves the canvas's outer rim uncovered: the box is inside it, and equal to the object there
    matches = [(r, c) for r in range(CONFIG.canvas - rows + 1) for c in range(CONFIG.canvas - cols + 1)
               if np.allclose(obj[r : r + rows, c : c + cols], first.truth, atol=1e-6)]
    assert matches and rows > CONFIG.canvas // 2


def test_a_phase_offset_and_ramp_are_removed(data) -> None:
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    positions = CONFIG.scan_positions
    ramps = []
    for (row, col), patch in zip(positions * 2, data.objects):
        # the same object-wide ramp (steep enough to wrap past ±π) seen through each patch
        phase = 2.1 + 0.25 * (x + col) - 0.4 * (y + row)
        ramps.append(patch * torch.exp(1j * phase))
    result = scores(torch.stack(ramps).to(torch.complex64), data)
    assert result["mae_phase"] < 1e-5 and result["mae_amp"] < 1e-6
    assert result["ssim_phase"] == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("offset", [2.0, 2.5, 3.0, -1.0])
def test_no_phase_score_depends_on_the_objects_global_phase(data, offset: float) -> None:
    # a global phase is unobservable: turning truth and reconstruction alike, by an angle that carries
    # part of the object's phase (0 … π/2) across ±π, must change no score
    generator = torch.Generator().manual_seed(1)
    pred = data.objects + 0.05 * torch.randn(data.objects.shape, generator=generator, dtype=torch.cfloat)
    before = scores(pred, data)
    turn = torch.exp(torch.tensor(1j * offset))
    turned = copy.copy(data)
    turned.objects = (data.objects * turn).to(data.objects.dtype)
    after = scores((pred * turn).to(pred.dtype), turned)
    for name in METRIC_NAMES:
        assert after[name] == pytest.approx(before[name], rel=1e-5, abs=1e-6), name


def test_phase_images_do_not_cut_an_object_whose_phase_crosses_pi() -> None:
    # phase 2.9 … 3.6 rad wraps to [2.9, π] ∪ (−π, −2.68]: scored as one range of 0.7 rad, starting at 0
    y, x = np.indices((16, 16))
    phase = 2.9 + 0.7 * x / 15
    truth = np.exp(1j * phase)
    error = 0.01 * np.sin(y)
    truth_phase, pred_phase = phase_images(truth, truth * np.exp(1j * error))
    np.testing.assert_allclose(truth_phase, 0.7 * x / 15, atol=1e-12)
    np.testing.assert_allclose(pred_phase - truth_phase, error, atol=1e-12)
    # an error across ±π is the short way round: −3.1 against 3.1 rad is 0.083 rad, not 6.2
    truth_phase, pred_phase = phase_images(np.array([[np.exp(3.1j)]]), np.array([[np.exp(-3.1j)]]))
    assert pred_phase[0, 0] - truth_phase[0, 0] == pytest.approx(2 * math.pi - 6.2)


def test_shifted_and_noisy_objects_score_worse_in_order(data) -> None:
    perfect = scores(data.objects.clone(), data)
    shifted = scores(torch.roll(data.objects, shifts=(2, 2), dims=(1, 2)), data)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(data.objects.shape, generator=generator, dtype=torch.cfloat)
    noisy = [scores(data.objects + level * noise, data) for level in (0.02, 0.1, 0.3)]
    for name in ("amp", "phase"):
        assert shifted[f"mae_{name}"] > 0.01 and shifted[f"ssim_{name}"] < perfect[f"ssim_{name}"] - 0.05
        maes = [r[f"mae_{name}"] for r in noisy]
        ssims = [r[f"ssim_{name}"] for r in noisy]
        psnrs = [r[f"psnr_{name}"] for r in noisy]
        assert maes == sorted(maes) and maes[0] > 0
        assert ssims == sorted(ssims, reverse=True) and ssims[0] < 1
        assert psnrs == sorted(psnrs, reverse=True)


def test_psnr_and_ssim_are_scikit_images() -> None:
    pytest.importorskip("skimage")
    from skimage.metrics import peak_signal_noise_ratio as skimage_psnr
    from skimage.metrics import structural_similarity as skimage_ssim

    rng = np.random.default_rng(0)
    truth = rng.random((20, 24), dtype=np.float32)
    pred = truth + rng.normal(0, 0.05, truth.shape).astype(np.float32)
    # scikit-image subtracts in float32, we in float64: each squared difference is off by at most
    # 2⁻²³ relative, the PSNR by at most (10 / ln 10)·2⁻²³ ≈ 5e-7 dB
    for data_range in (1.0, 0.37):
        assert peak_signal_noise_ratio(truth, pred, data_range) == pytest.approx(
            skimage_psnr(truth, pred, data_range=data_range), abs=6e-7)
    assert peak_signal_noise_ratio(truth, truth, 1.0) == math.inf
    # in float64 both compute the same sums in another order: equal to rounding; odd, even, non-square sizes
    for shape in ((7, 7), (20, 24), (33, 18)):
        a = rng.random(shape)
        for b in (a + rng.normal(0, 0.1, shape), rng.random(shape), 2 * a + 1):
            assert structural_similarity(a, b, 1.3) == pytest.approx(skimage_ssim(a, b, data_range=1.3), abs=1e-12)
    assert structural_similarity(truth, truth, 1.0) == pytest.approx(1, abs=1e-12)


def test_a_box_smaller_than_the_ssim_window_scores_no_ssim() -> None:
    from ptycho_torch.evaluation import evaluate_object

    patch = lines_object(8, seed=1).unsqueeze(0)
    probe = torch.zeros(8, 8, dtype=torch.cfloat)
    probe[2:6, 2:6] = 1  # a 4 × 4 support: the scanned box is 4 × 4
    result = evaluate_object(patch, patch, [(0, 0)], 8, probe, step=8)
    assert result.truth.shape == (4, 4) and result.metrics["ssim_amp"] is None
    assert result.metrics["mae_amp"] < 1e-6


def test_stitch_averages_overlaps_with_the_weights() -> None:
    patches = torch.stack([torch.full((4, 4), 1 + 0j), torch.full((4, 4), 3 + 0j)])
    image, coverage = stitch(patches, [(0, 0), (0, 2)], 6, torch.ones(4, 4))
    assert image[0, 1].real == 1 and image[0, 2].real == image[0, 3].real == 2 and image[0, 5].real == 3
    assert coverage[0, 2] == 2 and image[5, 0] == 0 and coverage[5, 0] == 0
    with pytest.raises(ValueError, match="2 patches but 1 scan positions"):
        stitch(patches, [(0, 0)], 6, torch.ones(4, 4))


def test_scanned_box_is_fully_covered_and_as_large_as_the_hole_allows() -> None:
    coverage = torch.ones(10, 12)
    coverage[0, :3] = 0  # a notch in the top-left
    coverage[:, 11] = 0  # an uncovered column
    rows, cols = scanned_box(coverage)
    assert bool((coverage[rows, cols] > 0).all())
    assert (rows, cols) == (slice(1, 10), slice(0, 11))
    with pytest.raises(ValueError, match="no pixel"):
        scanned_box(torch.zeros(3, 3))


def test_remove_phase_plane_leaves_a_matching_image_alone() -> None:
    obj = lines_object(40, seed=3).to(torch.complex128)
    torch.testing.assert_close(remove_phase_offset_and_plane(obj, obj), obj)


def test_frc_falls_with_blur_and_noise() -> None:
    image = lines_object(64, seed=5).abs().numpy().astype(np.float64)
    assert frc_resolution(image, image) == 0.5
    kernel = np.exp(-0.5 * (np.fft.fftfreq(64)[:, None] ** 2 + np.fft.fftfreq(64)[None, :] ** 2) / 0.05**2)
    blurred = np.real(np.fft.ifft2(np.fft.fft2(image) * kernel))
    rng = np.random.default_rng(0)
    noisy = blurred + 0.02 * rng.standard_normal(image.shape)
    resolution = frc_resolution(noisy, image)
    # the blur keeps frequencies up to about 2σ = 0.1 cycles/px above the noise
    assert 0.03 < resolution < 0.25, resolution
    assert frc_resolution(rng.standard_normal((64, 64)), image) < 0.1 + math.ulp(1)


def test_lattice_share_is_one_for_a_periodic_error_and_zero_for_none() -> None:
    tile = np.random.default_rng(1).standard_normal((8, 8))
    periodic = np.tile(tile, (7, 7))[3:53, 5:50]  # any origin: the classes are only relabelled
    assert lattice_share(periodic, 8) == pytest.approx(1, abs=1e-12)
    assert lattice_share(np.full((20, 20), 0.3), 8) == 0.0
    assert lattice_share(periodic + 5.0, 8) == pytest.approx(1, abs=1e-12)  # an offset is no lattice
    with pytest.raises(ValueError, match="step must be an integer >= 1; got 0"):
        lattice_share(periodic, 0)


def test_lattice_share_of_independent_noise_follows_its_beta_distribution() -> None:
    from scipy import stats

    shape, step = (56, 56), 8
    n, k = shape[0] * shape[1], step * step
    assert lattice_floor(shape, step) == pytest.approx((k - 1) / (n - 1))
    rng = np.random.default_rng(2)
    shares = np.array([lattice_share(rng.standard_normal(shape), step) for _ in range(400)])
    # the share is Beta((k-1)/2, (n-k)/2): its mean over 400 draws lies within 5 standard errors of the
    # floor (two-sided normal tail, false-failure probability 6e-7), every draw below the 1 - 1e-6
    # quantile (400 draws: 4e-4)
    beta = stats.beta((k - 1) / 2, (n - k) / 2)
    assert abs(shares.mean() - beta.mean()) < 5 * beta.std() / math.sqrt(len(shares))
    assert shares.max() < beta.ppf(1 - 1e-6)


def test_planted_patch_centre_blobs_score_high_and_clean_objects_zero(data) -> None:
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    blob = 0.3 * torch.exp(-((y - 15.5) ** 2 + (x - 15.5) ** 2) / (2 * 1.5**2))
    clean = scores(data.objects.clone(), data)
    assert clean["lattice_amp"] == clean["lattice_phase"] == 0.0
    planted = scores(torch.polar(data.objects.abs() + blob, data.objects.angle() + 0.5 * blob), data)
    # the same blob added at the centre of every patch, stitched: the error repeats with the scan step
    # except in the box's rim, ~10 px (the probe's reach) wide, where fewer patches overlap — most of a box
    # scanned 5 × 5 times; 0.60 here, 30 times the floor of an error unrelated to the scan
    assert planted["lattice_amp"] > 0.5 and planted["lattice_phase"] > 0.5, planted
    rng = torch.Generator().manual_seed(3)
    noisy = data.objects * (1 + 0.05 * torch.randn(data.objects.shape, generator=rng))
    # independent noise per patch pixel: the stitched pixels are independent (each a weighted mean of its
    # own draws), so the share stays at the scale of the floor, (64 - 1)/(n - 1) ≈ 0.02 here
    assert scores(noisy, data)["lattice_amp"] < 0.1


def test_a_sparse_scan_is_scored_over_its_covered_pixels() -> None:
    config = SimulationConfig(N=32, nimgs_test=1, offset=24)  # 2 × 2 positions: the probe disks leave gaps
    data = simulate_dataset(config, 1, seed=4)
    perfect = scores(data.objects.clone(), data, config)
    assert perfect["mae_amp"] < 1e-6 and perfect["ssim_amp"] == pytest.approx(1, abs=1e-6)
    assert perfect["frc_amp"] is None and perfect["frc_phase"] is None  # a Fourier ring needs the whole image
    rng = torch.Generator().manual_seed(5)
    noisy = scores(data.objects * (1 + 0.1 * torch.randn(data.objects.shape, generator=rng)), data, config)
    assert noisy["ssim_amp"] < 0.9 and noisy["mae_amp"] > 0.01
    (first,) = evaluate_objects(data.objects.clone(), data)
    assert (first.reconstruction == 0).any()  # the gaps, left at 0 in the picture


def test_a_scan_whose_full_box_is_a_sliver_is_scored_over_its_covered_pixels() -> None:
    config = SimulationConfig(N=32, nimgs_test=1, offset=16)  # 3 × 3 positions: gaps at the diagonals
    data = simulate_dataset(config, 1, seed=4)
    (first,) = evaluate_objects(data.objects.clone(), data)
    # the only fully covered box is a strip of under half the covered pixels; the covered pixels' bounding
    # box is scored instead (its gaps left at 0), not the strip
    assert first.truth.shape == (52, 52) and (first.reconstruction == 0).any()
    assert first.metrics["frc_amp"] is None and first.metrics["ssim_amp"] == pytest.approx(1, abs=1e-6)


def test_masked_ssim_over_every_pixel_is_the_plain_ssim() -> None:
    rng = np.random.default_rng(6)
    a = rng.random((20, 24))
    b = a + rng.normal(0, 0.1, a.shape)
    assert structural_similarity(a, b, 1.0, mask=np.ones(a.shape, dtype=bool)) == structural_similarity(a, b, 1.0)
    mask = np.ones(a.shape, dtype=bool)
    mask[:, 12:] = False  # the left half: only its windows count
    left = structural_similarity(a[:, :12], b[:, :12], 1.0)
    assert structural_similarity(a, b, 1.0, mask=mask) == pytest.approx(left)


@pytest.mark.parametrize("scan", ["random", "spiral"])
def test_a_scan_off_any_lattice_has_no_lattice_share_and_says_why(scan) -> None:
    # the share of an error that repeats with period `step` measures a defect printed at every patch only
    # where the patches sit on that lattice; off it, it printed ~1e-31 (step 1) or a number of no meaning
    config = SimulationConfig(N=32, nimgs_train=1, nimgs_test=1, scan=scan)
    data = simulate_dataset(config, 1, seed=100)
    generator = torch.Generator().manual_seed(0)
    result = scores(data.objects + 0.05 * torch.randn(data.objects.shape, generator=generator,
                                                      dtype=torch.cfloat), data)
    assert result["lattice_amp"] is None and result["lattice_phase"] is None
    assert result["ssim_amp"] is not None
    assert "not on a lattice of step 8 px" in lattice_note(data)
    grid = simulate_dataset(SimulationConfig(N=32, nimgs_train=1, nimgs_test=1), 1, seed=100)
    assert lattice_note(grid) is None


def test_on_lattice_needs_every_position_a_whole_number_of_steps_from_the_first() -> None:
    assert on_lattice([(3, 5), (3, 13), (11, 5), (19, 21)], 8)
    assert not on_lattice([(3, 5), (3, 13.5)], 8)  # sub-pixel
    assert not on_lattice([(3, 5), (3, 9)], 8)  # half a step
    assert not on_lattice([(0, 0), (0, 1), (1, 1)], 1)  # a 1-px step is no lattice: every image repeats with it
