"""PtyLab's engines as solvers with the probe known (ptycho_torch.solvers.ptylab): its geometry, propagator,
probe scale and canvas offset are ours, so that on a scan with negligible noise its object converges to the
truth; a start is placed where ours is; the probe is never updated; a solve is reproducible and leaves
numpy's global generator as it found it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptycho_torch.evaluation import stitch_objects
from ptycho_torch.simulation import SimulationConfig
from ptycho_torch.solvers import object_ssim, solve_with, solver_package, solver_problem
from ptycho_torch.training import TrainingConfig
from ptycho_torch.training.config import make_datasets

pytest.importorskip("PtyLab")
from ptycho_torch.solvers import ptylab as adapter  # noqa: E402  (after the skip: it needs PtyLab to mean anything)


def scan(nphotons: float = 1e9, step: int = 4, objects: int = 2):
    config = TrainingConfig(data=SimulationConfig(N=16, nimgs_train=1, nimgs_test=objects, nphotons=nphotons,
                                                  offset=step), model={"fno_modes": 1}, seed=3, device="cpu")
    return make_datasets(config)[1]


def test_both_engines_converge_to_the_truth_on_a_scan_with_negligible_noise() -> None:
    # 1e9 photons: the noise is ~1e-4 of the signal; step N/4: 75% overlap. A wrong canvas offset, probe
    # scale, propagator centring or pixel size leaves the object far from the truth (SSIM about 0.5 or
    # below); rPIE itself reaches 0.998 / 1.000 on this scan in 400 passes, mPIE the same; ePIE (step 0.25,
    # no momentum) is slower: 0.976 / 0.992. The solves are seeded: these are fixed numbers, no sampling.
    data = scan(objects=1)
    for engine, floor in (("ptylab-mpie", 0.99), ("ptylab-epie", 0.95)):
        solve = solve_with(engine, data, checkpoints=(50, 100, 200, 400))
        last = solve.history[-1]
        assert last["ssim_amp"] > floor and last["ssim_phase"] > 0.99, (engine, solve.history)
        assert solve.seconds_per_object > 0 and solve.iterations == last["iterations"]


def test_the_probe_is_held_fixed_and_the_start_placed_where_ours_is() -> None:
    data = scan()
    one = adapter._OneObject(data, 0, "mPIE", adapter.DEFAULT_BETA, None)
    before = np.asarray(one.reconstruction.probe).copy()
    one.advance(3)
    assert np.array_equal(np.asarray(one.reconstruction.probe), before)
    # started from the truth, a few passes keep it: a start placed at another offset would be scored far off
    stitched, coverage = stitch_objects(data.objects, data)
    truths = [torch.where(c > 0, o, torch.ones_like(o)) for o, c in zip(stitched, coverage)]
    solve = adapter.ptylab_to_convergence(data, "mPIE", checkpoints=(2,), starts=truths)
    assert solve.history[0]["ssim_amp"] > 0.99 and solve.history[0]["ssim_phase"] > 0.99
    flat = adapter.ptylab_to_convergence(data, "mPIE", checkpoints=(2,))
    assert flat.history[0]["ssim_amp"] < solve.history[0]["ssim_amp"] - 0.1


def test_a_solve_is_reproducible_and_leaves_numpys_generator_and_logging_alone() -> None:
    import logging

    data = scan(nphotons=1e4)  # noisy: the random position order matters to the object
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    logging.disable(logging.INFO)  # a caller's own setting, kept
    try:
        first = adapter.ptylab_to_convergence(data, "ePIE", checkpoints=(5,), seed=1)
        assert logging.root.manager.disable == logging.INFO
    finally:
        logging.disable(logging.NOTSET)
    assert np.random.random() == expected_next
    again = adapter.ptylab_to_convergence(data, "ePIE", checkpoints=(5,), seed=1)
    other = adapter.ptylab_to_convergence(data, "ePIE", checkpoints=(5,), seed=2)
    assert torch.equal(first.patches, again.patches) and not torch.equal(first.patches, other.patches)
    assert object_ssim(first.patches, data) == {k: first.history[0][k] for k in ("ssim_amp", "ssim_phase")}


def test_bad_arguments_are_refused_naming_what_is_allowed() -> None:
    data = scan()
    with pytest.raises(ValueError, match="engine must be one of ePIE, mPIE; got 'rPIE'"):
        adapter.ptylab_to_convergence(data, "rPIE")
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\]; got 0"):
        adapter.ptylab_to_convergence(data, "mPIE", beta=0)
    with pytest.raises(ValueError, match="starts must be 2 objects of"):
        adapter.ptylab_to_convergence(data, "mPIE", starts=[torch.ones(3, 3)])
    import dataclasses

    masked = dataclasses.replace(data, good_pixels=torch.ones(16, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="bad detector pixels.*use the rpie solver"):
        adapter.ptylab_to_convergence(masked, "mPIE")
    assert solver_problem("ptylab-dm") == "unknown solver 'ptylab-dm'; allowed: rpie, ptylab-mpie, ptylab-epie"
    assert solver_package("ptylab-mpie").startswith("ptylab ") and solver_package("ptylab-mpie").endswith(" mPIE")


def test_without_ptylab_the_solver_names_what_to_install(monkeypatch) -> None:
    from ptycho_torch.solvers import choice

    monkeypatch.setattr(choice, "ptylab_available", lambda: False)
    assert choice.solver_problem("ptylab-mpie") == "ptylab-mpie needs PtyLab: pip install ptylab"
    assert choice.solver_problem("rpie") is None
    with pytest.raises(ValueError, match="pip install ptylab"):
        solve_with("ptylab-epie", scan())
