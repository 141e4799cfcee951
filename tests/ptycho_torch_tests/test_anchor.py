"""The iterative anchor's adapter to CDTools: our conventions (pattern, positions, probe units) reach it
unchanged, and it reconstructs a well-measured scan."""

from __future__ import annotations

import pytest
import torch

from ptycho_torch import anchor
from ptycho_torch.evaluation import evaluate_objects, reconstruction_metrics
from ptycho_torch.simulation import SimulationConfig, diffraction_amplitude, lines_object, simulate_dataset

CONFIG = SimulationConfig(N=16, nimgs_test=1, object_size=32, offset=4)


def test_cdtools_forward_model_matches_ours_on_the_true_object() -> None:
    """CDTools' SimplePtycho holding the true object and our probe (in count units) predicts our noise-free
    intensities: same far-field convention, same window positions, same scale."""
    Ptycho2DDataset, SimplePtycho = anchor._cdtools()
    data = simulate_dataset(CONFIG, 1, seed=7)
    obj = lines_object(CONFIG.canvas, CONFIG.n_lines, seed=7)
    probe = data.probe * data.intensity_scale
    basis = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    model = SimplePtycho(wavelength=1.0, probe_basis=basis, probe_guess=probe, obj_guess=obj)
    rows_cols = torch.tensor(CONFIG.scan_positions, dtype=torch.float32)
    translations = torch.stack([rows_cols[:, 1], rows_cols[:, 0], torch.zeros(len(rows_cols))], dim=1)
    with torch.no_grad():
        predicted = model.measurement(model.forward_propagator(model.interaction(None, translations)))
    ours = (data.intensity_scale * diffraction_amplitude(data.objects, data.probe)) ** 2
    torch.testing.assert_close(predicted.float(), ours.float(), rtol=1e-4, atol=1e-3 * ours.max().item())


def test_a_well_measured_scan_is_reconstructed_and_scored_like_a_generator() -> None:
    data = simulate_dataset(CONFIG, 1, seed=11)
    result = anchor.iterative_reconstruction(data, iterations=60)
    assert result.patches.shape == data.objects.shape and result.iterations == 60
    assert result.seconds > 0 and result.package.startswith("cdtools-py ")
    scores = reconstruction_metrics(evaluate_objects(result.patches, data))
    # 10⁹ photons, 75% linear overlap, the probe known: the object is recovered (the flat start, an
    # object of ones, scores SSIM phase 0.17 and phase MAE 0.17 rad; after 60 iterations 0.96 and 0.021 rad,
    # deterministic: CDTools' Adam from a fixed start on fixed data), its error unrelated to the scan lattice
    assert scores["ssim_phase"] > 0.9 and scores["mae_phase"] < 0.05, scores
    assert scores["lattice_phase"] < 0.2, scores


def test_a_missing_package_is_named(monkeypatch) -> None:
    monkeypatch.setattr(anchor, "anchor_available", lambda: False)
    with pytest.raises(ImportError, match="pip install 'cdtools-py'"):
        anchor.iterative_reconstruction(simulate_dataset(CONFIG, 1, seed=1))


def test_the_same_scan_gives_the_same_object_whatever_ran_before() -> None:
    """CDTools shuffles its minibatches with torch's global RNG: the anchor seeds it (and restores it),
    so what a training run left in that RNG does not change the iterative object."""
    data = simulate_dataset(CONFIG, 1, seed=11)
    torch.manual_seed(1)
    first = anchor.iterative_reconstruction(data, iterations=5, seed=3).patches
    after = torch.rand(1)
    torch.manual_seed(1)
    assert torch.equal(after, torch.rand(1))  # the caller's stream goes on as if nothing had drawn from it
    torch.manual_seed(2)
    second = anchor.iterative_reconstruction(data, iterations=5, seed=3).patches
    assert torch.equal(first, second)
