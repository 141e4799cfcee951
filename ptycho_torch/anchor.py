"""The iterative anchor: the same scan reconstructed by CDTools (automatic-differentiation ptychography).

A network's object means little without what an established iterative solver makes of the same
measured patterns. This adapter hands CDTools (``cdtools-py``, the ``anchor`` extra) exactly our
simulated data — the photon counts, the scan positions, and the probe, given as known and held fixed —
and reconstructs each object on its own canvas from a flat start (1 everywhere) with CDTools'
``SimplePtycho`` model and its Adam reconstructor (amplitude-MSE loss; an iteration here is one of its
epochs, a pass over the object's patterns in minibatches of ``DEFAULT_BATCH``). The result is returned as the
object's windows at the scan positions, so that ``evaluate_objects`` stitches, crops, aligns and
scores it exactly as it does a generator's patches.

Conventions checked against ours (``tests/ptycho_torch_tests/test_anchor.py``): CDTools propagates with
fftshift(FFT₂(ifftshift(ψ)), orthonormal), which has our pattern's intensities (the ifftshift is a
phase ramp in the far field); it places a window at the integer (row, column) of its top-left corner,
as our grid scan does (``SimplePtycho`` rounds a sub-pixel position to the nearest pixel: on a random
or spiral scan the anchor works with positions up to half a pixel off, the generator's stitch with the
exact ones); its probe basis maps (row, column) to (y, x), so the translations are (column, row, 0) in
units of one pixel.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from importlib import metadata

import torch

from .scan.placement import PatchPlacement
from .simulation import PtychoDataset

__all__ = ["ANCHOR_PACKAGE", "DEFAULT_ITERATIONS", "AnchorResult", "anchor_available", "iterative_reconstruction"]

ANCHOR_PACKAGE = "cdtools-py"
DEFAULT_ITERATIONS = 100
DEFAULT_LR = 0.05  # CDTools' documented upper end for a stable Adam step; the object is the only parameter
DEFAULT_BATCH = 5


@dataclass
class AnchorResult:
    """The reconstructed object's windows at the scan positions, in the data's order, and the cost."""

    patches: torch.Tensor  # (n, N, N) complex64
    iterations: int
    seconds: float  # wall time of all objects' reconstructions
    seconds_per_object: float
    package: str  # "cdtools-py 0.3.2"


def _cdtools() -> tuple[type, type]:
    """CDTools' dataset and model classes. Its import passes ``N`` to matplotlib's ListedColormap, which
    matplotlib ≥ 3.11 deprecates: that warning is CDTools' to fix, not our user's to read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Passing 'N' to ListedColormap", category=DeprecationWarning)
        from cdtools.datasets import Ptycho2DDataset
        from cdtools.models import SimplePtycho
    return Ptycho2DDataset, SimplePtycho


def anchor_available() -> bool:
    """Whether CDTools can be imported (the ``anchor`` extra)."""
    try:
        _cdtools()
    except ImportError:
        return False
    return True


def _one_object(counts: torch.Tensor, probe: torch.Tensor, positions: list[tuple[float, float]],
                canvas: tuple[int, int], iterations: int, lr: float, batch_size: int,
                device: torch.device) -> torch.Tensor:
    """One object's canvas from its (n, N, N) photon counts at ``positions``, the probe known and fixed."""
    Ptycho2DDataset, SimplePtycho = _cdtools()
    rows_cols = torch.tensor(positions, dtype=torch.float32)
    translations = torch.stack([rows_cols[:, 1], rows_cols[:, 0], torch.zeros(len(rows_cols))], dim=1)
    # numpy in: CDTools copies its inputs with torch.tensor(…), which warns when handed a tensor
    dataset = Ptycho2DDataset(translations.numpy(), counts.float().numpy(), wavelength=1.0,
                              detector_geometry={"distance": 1.0, "basis": torch.eye(3)[:, :2].numpy()})
    basis = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # (row, column) → (x = column, y = row, z)
    model = SimplePtycho(wavelength=1.0, probe_basis=basis, probe_guess=probe,
                         obj_guess=torch.ones(*canvas, dtype=torch.complex64))
    model.probe.requires_grad_(False)  # the probe is known: only the object is reconstructed
    model.to(device)
    dataset.get_as(device=device)
    for _ in model.Adam_optimize(iterations, dataset, batch_size=batch_size, lr=lr, thread=False):
        pass
    return model.obj.detach().to("cpu", torch.complex64)


def iterative_reconstruction(data: PtychoDataset, iterations: int = DEFAULT_ITERATIONS, lr: float = DEFAULT_LR,
                             batch_size: int = DEFAULT_BATCH, device: torch.device | str = "cpu",
                             seed: int = 0) -> AnchorResult:
    """Every object of ``data`` reconstructed by CDTools from its patterns at their scan positions, the
    probe known, on ``device``; raises ImportError naming the extra when CDTools is missing. CDTools draws
    its minibatch order from torch's global RNG: that is seeded with ``seed`` for the reconstruction (and
    restored after), so the same data give the same object whatever ran before."""
    if not anchor_available():
        raise ImportError(f"the iterative anchor needs CDTools: pip install '{ANCHOR_PACKAGE}' "
                          "(or this package's 'anchor' extra)")
    # our counts are Poisson((scale·|FFT(P·O)|)²): the probe in count units is scale·P
    probe = data.probe.to(torch.complex64) * data.intensity_scale
    start = time.perf_counter()
    patches = torch.zeros(len(data), *data.probe.shape, dtype=torch.complex64)
    objects = data.object_patterns()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for index in objects:
            positions = data.positions_of(index)
            canvas = _one_object(data.counts[index, 0], probe, positions, data.canvas, iterations, lr, batch_size,
                                 torch.device(device))
            patches[index] = PatchPlacement(positions, data.canvas, data.probe.shape[-1]).extract(canvas)
    seconds = time.perf_counter() - start
    return AnchorResult(patches, iterations, seconds, seconds / len(objects),
                        f"{ANCHOR_PACKAGE} {metadata.version(ANCHOR_PACKAGE)}")
