"""CXI scan files: the measured PETRA III scan read with its geometry, a written scan read back, and
every malformed entry refused by name."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ptycho_torch.data.cxi import CXI_ENTRIES, read_cxi, write_cxi
from ptycho_torch.data.file_errors import DataFileError

h5py = pytest.importorskip("h5py")

MEASURED = Path(__file__).resolve().parents[3] / "shared" / "data" / "petra-p25-near-field" / \
    "PETRAIII_P25_Near_Field_Ptycho.cxi"


def small_scan(tmp_path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    counts = rng.poisson(50.0, size=(6, 8, 10)).astype(np.int32)
    translations = np.stack([rng.uniform(-1e-6, 1e-6, 6), rng.uniform(-1e-6, 1e-6, 6), np.zeros(6)], axis=1)
    good = np.ones((8, 10), dtype=bool)
    good[2, 3] = False
    args = dict(wavelength=1e-10, detector_distance=2.0, pixel_size=(75e-6, 55e-6), good_pixels=good,
                probe=(rng.normal(size=(8, 10)) + 1j).astype(np.complex64))
    path = tmp_path / "scan.cxi"
    write_cxi(path, counts, translations, **{**args, **overrides})
    return path


def test_a_written_scan_reads_back_with_its_far_field_positions(tmp_path) -> None:
    path = small_scan(tmp_path)
    scan = read_cxi(path)
    with h5py.File(path) as h5:
        counts = h5[CXI_ENTRIES["data"]][()]
        translations = h5[CXI_ENTRIES["translation"]][()]
    np.testing.assert_array_equal(scan.counts, counts)
    assert scan.good_pixels.sum() == 79 and not scan.good_pixels[2, 3]
    assert scan.probe is not None and scan.probe.shape == (8, 10)
    # far field: an object pixel of λz/(N·dp) along each axis; rows along −y, columns along −x, and the probe
    # moves by the sample's negative, so row = t_y/pixel_row and column = t_x/pixel_column, from 0
    pixel_row, pixel_col = 1e-10 * 2.0 / (8 * 75e-6), 1e-10 * 2.0 / (10 * 55e-6)
    assert scan.geometry.object_pixel == pytest.approx((pixel_row, pixel_col))
    expected = np.stack([translations[:, 1] / pixel_row, translations[:, 0] / pixel_col], axis=1)
    np.testing.assert_allclose(scan.positions, expected - expected.min(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scan.origin, expected.min(axis=0))


def test_near_field_demagnifies_the_detector_pixel(tmp_path) -> None:
    scan = read_cxi(small_scan(tmp_path, pixel_size=55e-6), "near-field", focus_distance=4e-3)
    magnification = (4e-3 + 2.0) / 4e-3
    assert scan.geometry.magnification == pytest.approx(magnification)
    assert scan.geometry.object_pixel == pytest.approx((55e-6 / magnification,) * 2)
    assert scan.geometry.effective_distance == pytest.approx(2.0 / magnification)


@pytest.mark.skipif(not MEASURED.exists(), reason="the shared measured scan is not here")
def test_the_measured_petra_scan_reads_with_its_geometry() -> None:
    scan = read_cxi(MEASURED, "near-field", focus_distance=3.65e-3)
    assert scan.counts.shape == (200, 100, 100) and int((~scan.good_pixels).sum()) == 5
    geometry = scan.geometry
    assert geometry.magnification == pytest.approx(307.85, abs=0.01)
    assert geometry.object_pixel[0] == pytest.approx(178.7e-9, rel=1e-3)
    assert geometry.effective_distance == pytest.approx(3.638e-3, rel=1e-3)
    extent = scan.positions.max(axis=0) * geometry.object_pixel[0]  # the spiral's ≈ 19 × 20 µm
    assert 18e-6 < extent.min() and extent.max() < 21e-6
    steps = np.hypot(*np.diff(scan.positions, axis=0).T) * geometry.object_pixel[0]
    assert np.median(steps) == pytest.approx(1.3e-6, rel=0.05)


def _rewrite(path: Path, key: str, value) -> None:
    with h5py.File(path, "a") as h5:
        del h5[key]
        if value is not None:
            h5[key] = value


@pytest.mark.parametrize("key, value, message", [
    ("data", None, "missing"),
    ("data", np.zeros((8, 10)), r"shape \(8, 10\); \(n, H, W\)"),
    ("data", -np.ones((6, 8, 10)), ">= 0"),
    ("translation", np.zeros((5, 3)), r"\(6, 3\)"),
    ("distance", None, "missing"),
    ("distance", -1.0, "one positive number"),
    ("wavelength", np.nan, "non-finite"),
    ("mask", np.zeros((3, 3), dtype=np.uint32), r"shape \(3, 3\)"),
    ("mask", np.ones((8, 10), dtype=np.uint32), "every pixel bad"),
    ("basis_vectors", np.zeros((3, 2)), "parallel or zero"),
    ("basis_vectors", np.zeros((4, 4)), r"\(3, 2\) or \(2, 3\)"),
    ("probe", np.ones((3, 3), dtype=np.complex64), r"shape \(3, 3\)"),
    ("translation", np.array([b"a", b"b"]), "numbers are expected"),
])
def test_a_malformed_entry_is_named(tmp_path, key, value, message) -> None:
    path = small_scan(tmp_path)
    _rewrite(path, CXI_ENTRIES[key], value)
    if key == "wavelength":
        _rewrite(path, CXI_ENTRIES["energy"], None)
    with pytest.raises(DataFileError, match=message) as info:
        read_cxi(path)
    assert str(path) in str(info.value)


def test_wavelength_from_the_energy_and_pixel_sizes_without_basis_vectors(tmp_path) -> None:
    path = small_scan(tmp_path)
    _rewrite(path, CXI_ENTRIES["wavelength"], None)
    _rewrite(path, CXI_ENTRIES["basis_vectors"], None)
    scan = read_cxi(path)
    assert scan.geometry.wavelength == pytest.approx(1e-10)
    np.testing.assert_allclose(scan.geometry.basis, [[0, -55e-6], [-75e-6, 0], [0, 0]])


def test_not_hdf5_and_near_field_without_z1_are_refused(tmp_path) -> None:
    text = tmp_path / "scan.cxi"
    text.write_text("not hdf5")
    with pytest.raises(DataFileError, match="not an HDF5"):
        read_cxi(text)
    with pytest.raises(DataFileError, match="no such file"):
        read_cxi(tmp_path / "absent.cxi")
    with pytest.raises(ValueError, match="focus-to-sample distance"):
        read_cxi(small_scan(tmp_path), "near-field")
    with pytest.raises(ValueError, match="far-field' or 'near-field"):
        read_cxi(small_scan(tmp_path), "fresnel")


def test_cdtools_reads_what_is_written(tmp_path) -> None:
    cdtools = pytest.importorskip("cdtools")
    path = small_scan(tmp_path)
    dataset = cdtools.datasets.Ptycho2DDataset.from_cxi(str(path))
    ours = read_cxi(path)
    np.testing.assert_allclose(dataset.patterns.numpy(), ours.counts)
    # CDTools keeps the probe's translations (the sample's negated), as this reader does
    np.testing.assert_allclose(dataset.translations.numpy(), -ours.translations, rtol=1e-6, atol=1e-12)
    assert math.isclose(float(dataset.wavelength), 1e-10, rel_tol=1e-6)


def simulate_cli(tmp_path: Path, name: str, *flags: str) -> Path:
    from ptycho_torch.simulation.__main__ import main

    path = tmp_path / name
    assert main(["--output", str(path), "--N", "16", "--scan", "spiral", "--nphotons", "1e6", *flags]) == 0
    return path


@pytest.mark.parametrize("flags", [(), ("--propagation", "near-field", "--focus-distance", "2e-3")],
                         ids=["far-field", "near-field"])
def test_a_simulated_scan_written_as_cxi_reads_back_as_simulated(tmp_path, flags) -> None:
    """The counts exactly, the positions to 1e-9 px, the probe up to the reader's power scale, and the
    propagator the closed form gives for the geometry (near field: the angular spectrum over z₂·z₁/(z₁ + z₂)
    at the object pixel)."""
    import torch

    from ptycho_torch.data.cxi import scan_from_cxi
    from ptycho_torch.optics import angular_spectrum_transfer
    from ptycho_torch.simulation import SimulatedGeometry, SimulationConfig, simulate_dataset

    path = simulate_cli(tmp_path, "sim.cxi", *flags)
    geometry = SimulatedGeometry(**({} if not flags else {"propagation": "near-field", "focus_distance": 2e-3}))
    config = SimulationConfig(N=16, scan="spiral", nphotons=1e6)
    simulated = simulate_dataset(config, 1, seed=0, propagator=geometry.propagator(16))
    scan = scan_from_cxi(path, geometry.propagation, geometry.focus_distance)
    cxi = read_cxi(path, geometry.propagation, geometry.focus_distance)
    np.testing.assert_array_equal(cxi.counts, simulated.counts[:, 0].numpy())
    expected = np.array(simulated.positions)
    np.testing.assert_allclose(np.array(scan.positions), expected - expected.min(axis=0), atol=1e-9)
    assert cxi.geometry.object_pixel == pytest.approx((1e-7, 1e-7), rel=1e-12)
    ratio = scan.probe / simulated.probe
    assert not scan.probe_guessed and torch.allclose(ratio, ratio[8, 8].expand_as(ratio), rtol=1e-5)
    if geometry.propagation == "near-field":
        closed_form = angular_spectrum_transfer((16, 16), (1e-7, 1e-7), 1e-10, 1.0 * 2e-3 / (2e-3 + 1.0))
        torch.testing.assert_close(scan.propagator.transfer, closed_form, rtol=0, atol=1e-5)
    else:
        assert scan.propagator.kind == "far-field"
    good = torch.ones(16, 16, dtype=torch.bool)
    assert torch.equal(scan.good_pixels, good)


def test_a_simulated_scan_without_its_probe_is_one_to_retrieve(tmp_path) -> None:
    from ptycho_torch.data.cxi import scan_from_cxi

    path = simulate_cli(tmp_path, "sim.cxi", "--propagation", "near-field", "--focus-distance", "1e-3", "--no-probe")
    assert read_cxi(path, "near-field", 1e-3).probe is None
    assert scan_from_cxi(path, "near-field", 1e-3).probe_guessed


@pytest.mark.parametrize(("flags", "message"), [
    (("--output", "x.npz", "--propagation", "near-field", "--focus-distance", "1e-3"), "need .cxi"),
    (("--output", "x.npz", "--no-probe"), "need .cxi"),
    (("--output", "x.cxi", "--nimgs", "2"), "one object's scan"),
    (("--output", "x.h5"), ".npz or .cxi"),
    (("--output", "x.cxi", "--propagation", "near-field"), "needs focus_distance"),
    (("--output", "x.cxi", "--focus-distance", "1e-3"), "focus_distance is for near-field"),
])
def test_the_simulations_file_and_geometry_are_checked_before_any_work(tmp_path, capsys, monkeypatch, flags,
                                                                      message) -> None:
    from ptycho_torch.simulation.__main__ import main

    monkeypatch.chdir(tmp_path)
    assert main(["--N", "16", *flags]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cdtools_reads_a_simulated_near_field_scan_with_its_translations(tmp_path) -> None:
    cdtools = pytest.importorskip("cdtools")
    path = simulate_cli(tmp_path, "sim.cxi", "--propagation", "near-field", "--focus-distance", "1e-3")
    dataset = cdtools.datasets.Ptycho2DDataset.from_cxi(str(path))
    ours = read_cxi(path, "near-field", 1e-3)
    np.testing.assert_allclose(dataset.patterns.numpy(), ours.counts)
    np.testing.assert_allclose(dataset.translations.numpy(), -ours.translations, rtol=1e-6, atol=1e-12)
