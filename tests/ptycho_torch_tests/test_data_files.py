"""PtychoPINN's canonical dataset format: what this package writes it reads back, what a hand-built file
holds is read as the format says, and every malformed file is refused naming the file, the key and the
problem."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ptycho_torch.data.scan_files import DataFileError, read_scan_file, write_scan_file
from ptycho_torch.simulation import SimulationConfig, simulate_dataset

N = 16


def hand_built(n: int = 9, **override) -> dict[str, np.ndarray]:
    """A valid file's arrays, built by hand as the format's table says: a 3 × 3 scan of patch centres."""
    rng = np.random.default_rng(0)
    centres = np.array([(N / 2 + 4 * i, N / 2 + 4 * j) for i in range(3) for j in range(3)], dtype=np.float64)[:n]
    arrays = {
        "diff3d": rng.random((n, N, N)).astype(np.float32) * 0.3,
        "probeGuess": (rng.random((N, N)) + 1j * rng.random((N, N))).astype(np.complex64),
        "xcoords": centres[:, 1].copy(),
        "ycoords": centres[:, 0].copy(),
        "objectGuess": np.exp(1j * rng.random((32, 32))).astype(np.complex64),
    }
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}


def save(tmp_path, arrays, name="scan.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_what_we_write_reads_back_the_same(tmp_path) -> None:
    config = SimulationConfig(N=N, object_size=40, scan="random")
    data = simulate_dataset(config, 1, seed=0)
    path = tmp_path / "sim.npz"
    write_scan_file(path, data.amplitudes, data.probe, config.scan_positions, patch_truth=data.objects,
                    metadata={"intensity_scale": data.intensity_scale})
    scan = read_scan_file(path)
    assert torch.equal(scan.amplitudes, data.amplitudes[:, 0]) and torch.equal(scan.probe, data.probe)
    assert np.allclose(scan.positions, config.scan_positions, atol=1e-12)  # no object: the scan starts at 0
    assert torch.equal(scan.patch_truth, data.objects) and scan.metadata["intensity_scale"] == data.intensity_scale
    assert scan.notes == [] and len(scan) == config.patches_per_object and scan.N == N


def test_a_hand_built_file_is_read_as_the_format_says(tmp_path) -> None:
    arrays = hand_built()
    scan = read_scan_file(save(tmp_path, arrays))
    # positions are patch centres, x the column: the first patch's top-left corner is (y − N/2, x − N/2)
    assert scan.positions[1] == (0.0, 4.0) and scan.canvas == (32, 32)
    # without Y, the truth patches are objectGuess at the positions
    row, col = scan.positions[5]
    assert torch.equal(scan.patch_truth[5], torch.from_numpy(arrays["objectGuess"])[int(row): int(row) + N,
                                                                                       int(col): int(col) + N])


def test_integer_intensities_are_converted_and_said(tmp_path) -> None:
    counts = (np.random.default_rng(1).random((9, N, N)) * 500).astype(np.uint16)
    scan = read_scan_file(save(tmp_path, hand_built(diff3d=counts)))
    assert np.allclose(scan.amplitudes.numpy(), np.sqrt(counts.astype(np.float64)), rtol=1e-6)
    assert any("uint16 intensities" in note for note in scan.notes)


def test_accepted_variants_of_the_layout(tmp_path) -> None:
    base = hand_built()
    for variant in (dict(diff3d=None, diffraction=base["diff3d"]),  # the alias key
                    dict(diff3d=np.moveaxis(base["diff3d"], 0, 2)),  # (H, W, n)
                    dict(diff3d=base["diff3d"][..., None]),  # trailing channel
                    dict(diffraction=base["diff3d"])):  # both keys, equal
        scan = read_scan_file(save(tmp_path, hand_built(**variant)))
        assert torch.equal(scan.amplitudes, torch.from_numpy(base["diff3d"]))


BAD = {
    "missing diffraction": (dict(diff3d=None), "diff3d", "missing"),
    "missing probe": (dict(probeGuess=None), "probeGuess", "missing"),
    "missing xcoords": (dict(xcoords=None), "xcoords", "missing"),
    "missing ycoords": (dict(ycoords=None), "ycoords", "missing"),
    "rank 2 patterns": (dict(diff3d=np.ones((9, N * N), np.float32)), "diff3d", "expected (n, H, W)"),
    "complex patterns": (dict(diff3d=np.ones((9, N, N), np.complex64)), "diff3d", "dtype complex64"),
    "string coordinates": (dict(xcoords=np.array(["a"] * 9)), "xcoords", "dtype <U1"),
    "NaN amplitude": (dict(diff3d=np.where(np.eye(N, dtype=bool), np.nan, 0.1).astype(np.float32)[None].repeat(9, 0)),
                      "diff3d", "non-finite"),
    "inf coordinate": (dict(xcoords=np.array([np.inf] + [8.0] * 8)), "xcoords", "non-finite"),
    "negative amplitude": (dict(diff3d=-np.ones((9, N, N), np.float32)), "diff3d", "negative"),
    "counts as floats": (dict(diff3d=np.full((9, N, N), 7.0, np.float32)), "diff3d", "look like intensities"),
    "fewer patterns": (dict(diff3d=np.ones((8, N, N), np.float32)), "diff3d", "8 patterns but 9 scan positions"),
    "lengths differ": (dict(ycoords=np.zeros(8)), "ycoords", "8 values but xcoords has 9"),
    "odd patterns": (dict(diff3d=np.ones((9, 15, 15), np.float32)), "diff3d", "square with an even side"),
    "probe of another size": (dict(probeGuess=np.ones((8, 8), np.complex64)), "probeGuess", "shape (8, 8)"),
    "zero probe": (dict(probeGuess=np.zeros((N, N), np.complex64)), "probeGuess", "all zero"),
    "off the object": (dict(xcoords=np.full(9, 40.0)), "xcoords", "outside objectGuess"),
    "metres, not pixels": (dict(objectGuess=None, xcoords=np.linspace(0, 1e5, 9)), "xcoords", "are they in pixels"),
    "both keys, different": (dict(diffraction=np.zeros((9, N, N), np.float32)), "diffraction", "different"),
    "Y of another shape": (dict(Y=np.ones((9, 8, 8), np.complex64)), "Y", "expected (9, 16, 16)"),
    "objectGuess NaN": (dict(objectGuess=np.full((32, 32), np.nan, np.complex64)), "objectGuess", "non-finite"),
    "two objects, one truth": (dict(object_index=np.array([0] * 5 + [1] * 4)), "objectGuess", "object_index names 2"),
    "bad object_index": (dict(object_index=np.array([-1] * 9)), "object_index", "integers >= 0"),
    "pickled patterns": (dict(diff3d=np.array([None] * 9, dtype=object)), "diff3d", "without pickle"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_file_is_refused_naming_the_file_key_and_problem(tmp_path, case) -> None:
    override, key, problem = BAD[case]
    path = save(tmp_path, hand_built(**override))
    with pytest.raises(DataFileError, match=re.escape(problem)) as info:
        read_scan_file(path)
    assert info.value.key == key and str(info.value).startswith(f"{path}: {key}: ")


def test_files_that_are_not_npz_are_said_for_what_they_are(tmp_path) -> None:
    # numpy's own message for these advised allow_pickle=True: loading unsafely, and still not the data
    with pytest.raises(DataFileError, match="no such file"):
        read_scan_file(tmp_path / "absent.npz")
    with pytest.raises(DataFileError, match="a directory, not a file"):
        read_scan_file(tmp_path)
    hdf5 = tmp_path / "scan.cxi"
    hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    npy = tmp_path / "patterns.npz"
    np.save(tmp_path / "patterns.npy", np.ones(3))
    (tmp_path / "patterns.npy").rename(npy)
    text = tmp_path / "notes.npz"
    text.write_text("diff3d, probeGuess\n")
    for path, said in ((hdf5, "an HDF5 file (CXI, HDF5 or .h5)"), (npy, "a single .npy array"),
                       (text, "not an .npz (zip) archive: it starts with b'diff3d, '")):
        with pytest.raises(DataFileError, match=re.escape(said)) as info:
            read_scan_file(path)
        assert "pickle" not in str(info.value) and "PtychoPINN's .npz dataset format" in str(info.value)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK not a zip")
    with pytest.raises(DataFileError, match="not a readable .npz"):
        read_scan_file(garbage)


def simulated_arrays(n_side: int = 3, **override) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A simulated scan's file arrays (amplitudes from the forward model, the probe, the object) and its
    amplitudes: n_side × n_side positions of N px patches."""
    config = SimulationConfig(N=N, object_size=N + 8 * (n_side - 1), offset=8)
    data = simulate_dataset(config, 1, seed=3)
    amplitudes = data.amplitudes[:, 0].numpy()
    rows, cols = np.array(config.scan_positions, dtype=np.float64).T
    arrays = {"diff3d": amplitudes, "probeGuess": data.probe.numpy(), "xcoords": cols + N / 2,
              "ycoords": rows + N / 2, "Y": data.objects.numpy()}
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}, amplitudes


@pytest.mark.parametrize("truth", [True, False])
def test_float_intensities_are_told_from_amplitudes_by_the_probes_power(tmp_path, truth) -> None:
    # Parseval: mean Σ amplitude² / Σ|probe|² is about mean |object|²; intensities fit it only as Σ I
    arrays, amplitudes = simulated_arrays(**({} if truth else {"Y": None}))
    scan = read_scan_file(save(tmp_path, arrays))
    assert scan.notes == [] and np.array_equal(scan.amplitudes.numpy(), amplitudes)
    arrays["diff3d"] = (amplitudes.astype(np.float64) ** 2).astype(np.float32)
    scan = read_scan_file(save(tmp_path, arrays))
    assert np.allclose(scan.amplitudes.numpy(), amplitudes, rtol=1e-5, atol=1e-6)
    assert any("float intensities" in note and "converted to amplitudes" in note for note in scan.notes)


def test_patterns_with_dc_at_the_corner_are_refused_saying_so(tmp_path) -> None:
    arrays, amplitudes = simulated_arrays()
    arrays["diff3d"] = np.fft.ifftshift(amplitudes, axes=(-2, -1))
    with pytest.raises(DataFileError, match="DC .* at the corner.*np.fft.fftshift") as info:
        read_scan_file(save(tmp_path, arrays))
    assert info.value.key == "diff3d"


def test_a_cube_stack_is_read_in_the_layout_its_patterns_show(tmp_path) -> None:
    # 4 × 4 = 16 positions of 16 px patterns: (16, 16, 16) is (n, H, W) or (H, W, n)
    arrays, amplitudes = simulated_arrays(n_side=4)
    assert amplitudes.shape == (N, N, N)
    assert np.array_equal(read_scan_file(save(tmp_path, arrays)).amplitudes.numpy(), amplitudes)
    arrays["diff3d"] = np.moveaxis(amplitudes, 0, 2).copy()
    scan = read_scan_file(save(tmp_path, arrays))
    assert np.array_equal(scan.amplitudes.numpy(), amplitudes) and any("read as (H, W, n)" in n for n in scan.notes)
    arrays["diff3d"] = np.full((N, N, N), 0.2, np.float32)  # no structure to tell the layouts apart
    with pytest.raises(DataFileError, match=r"is \(n, H, W\) or \(H, W, n\), and neither"):
        read_scan_file(save(tmp_path, arrays))


def test_metadata_that_is_not_json_is_ignored_with_a_note(tmp_path) -> None:
    scan = read_scan_file(save(tmp_path, hand_built(_metadata=np.array("{not json"))))
    assert scan.metadata == {} and any("_metadata" in n for n in scan.notes)
    scan = read_scan_file(save(tmp_path, hand_built(_metadata=np.array(json.dumps({"nphotons": 1e6})))))
    assert scan.metadata == {"nphotons": 1e6}


MUTATIONS = {
    "drop": lambda a, rng: None,
    "flatten": lambda a, rng: a.reshape(-1),
    "add axis": lambda a, rng: a[None],
    "transpose": lambda a, rng: a.T.copy(),
    "as int8": lambda a, rng: np.real(a).astype(np.int8),
    "as bool": lambda a, rng: a != 0,
    "as str": lambda a, rng: a.astype(str),
    "NaN": lambda a, rng: np.where(rng.random(a.shape) < 0.1, np.nan, a).astype(np.result_type(a.dtype, np.float32)),
    "negate": lambda a, rng: -a,
    "shorten": lambda a, rng: a[: max(1, a.shape[0] // 2)] if a.ndim else a,
    "scale by 1e9": lambda a, rng: a * 1e9,
    "empty": lambda a, rng: a[:0] if a.ndim else a,
}


@given(key=st.sampled_from(["diff3d", "probeGuess", "xcoords", "ycoords", "objectGuess"]),
       mutations=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3), seed=st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_any_mutated_file_is_read_or_refused_with_a_data_file_error(tmp_path_factory, key, mutations, seed) -> None:
    """Whatever is done to a valid file's arrays, reading it gives a checked scan or a DataFileError naming the
    file: never another exception (a traceback for a user's file)."""
    rng = np.random.default_rng(seed)
    arrays = hand_built()
    for mutation in mutations:
        if arrays.get(key) is not None:
            try:
                arrays[key] = MUTATIONS[mutation](arrays[key], rng)
            except (TypeError, ValueError):  # a mutation that makes no sense for this array (NaN in text)
                continue
    path = save(tmp_path_factory.mktemp("fuzz"), {k: v for k, v in arrays.items() if v is not None})
    try:
        scan = read_scan_file(path)
    except DataFileError as exc:
        assert str(exc).startswith(str(path))
        return
    assert bool(torch.isfinite(scan.amplitudes).all()) and bool((scan.amplitudes >= 0).all())
    assert len(scan.positions) == len(scan) and scan.probe.shape == (scan.N, scan.N)
