"""PtyLab (Loetgering et al. 2023, Opt. Express 31, 13763; ``pip install ptylab``) as a second family of
iterative solvers beside this package's rPIE, the probe known: its ePIE or mPIE (momentum-accelerated PIE,
Maiden, Johnson & Li 2017) with the probe step set to 0, run to convergence by ``convergence.converge``.

Each object of the data is one PtyLab reconstruction of its own: the photon counts as the ptychogram, the
probe in count units (``scale·P``: our counts are Poisson((scale·|FFT(P·O)|)²)), a flat object (1
everywhere). The geometry is set so that PtyLab's object pixel is ours (wavelength 1, detector pixel 1,
distance N: its Fraunhofer pixel λ·z/(N·dx) is 1) and its square canvas holds ours: a scan position is the
top-left (row, column) of the window in both, whole pixels in PtyLab (it rounds a sub-pixel position, as
CDTools does). Its Fraunhofer propagator, fftshift(FFT₂(ifftshift(ψ))) orthonormal, has our pattern's
intensities (the ifftshift is a phase ramp in the far field). PtyLab shuffles its positions with numpy's
global generator: a solve seeds it and restores it after.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np
import torch

from ..data.dataset import PtychoDataset
from .convergence import CHECKPOINTS, TOLERANCE, ConvergedSolve, checked_starts, converge

__all__ = ["DEFAULT_BETA", "ENGINES", "PTYLAB_PACKAGE", "ptylab_available", "ptylab_to_convergence", "ptylab_version"]

PTYLAB_PACKAGE = "ptylab"
ENGINES = ("ePIE", "mPIE")
DEFAULT_BETA = 0.25  # PtyLab's own object step for both engines


def ptylab_available() -> bool:
    """Whether PtyLab can be imported (``pip install ptylab``)."""
    return importlib.util.find_spec("PtyLab") is not None


def ptylab_version() -> str:
    """``"ptylab 0.3.7"``: the package that solved, for the record."""
    return f"{PTYLAB_PACKAGE} {metadata.version(PTYLAB_PACKAGE)}"


@contextlib.contextmanager
def _quiet() -> Any:
    """PtyLab prints a line at every start, logs its settings and draws progress bars: none of it is ours
    to show."""
    before = logging.root.manager.disable  # the level a caller may have disabled already
    logging.disable(max(before, logging.WARNING))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(before)


class _OneObject:
    """One object's PtyLab reconstruction, run further a number of iterations at a time."""

    def __init__(self, data: PtychoDataset, object_id: int, engine: str, beta: float,
                 start: torch.Tensor | None) -> None:
        from PtyLab import Engines, ExperimentalData, Params, Reconstruction
        from PtyLab.Monitor.Monitor import DummyMonitor

        indices = torch.nonzero(data.object_ids == object_id).flatten()
        n = data.probe.shape[-1]
        self.positions = np.array(data.positions_of(indices), dtype=np.float64)
        self.canvas = data.canvas
        measured = ExperimentalData("test:nodata")  # PtyLab's empty dataset, its fields then set here
        measured.ptychogram = data.counts[indices, 0].numpy().astype(np.float32)
        measured.wavelength, measured.dxd, measured.zo = 1.0, 1.0, float(n)
        measured.encoder = self.positions
        measured._setData()
        params = Params()
        params.gpuSwitch = False
        params.propagatorType = "Fraunhofer"
        params.positionOrder = "random"
        self.reconstruction = Reconstruction(measured, params)
        # its canvas (square, the scan in the middle) big enough that ours fits at the offset of its positions
        needed = 2 * (max(self.canvas) + n)
        self.reconstruction.No = max(int(self.reconstruction.No), needed + needed % 2)
        self.reconstruction.initializeObjectProbe()
        probe = (data.probe.to(torch.complex64) * data.intensity_scale).numpy()
        self.reconstruction.probe = probe.reshape(self.reconstruction.probe.shape).astype(np.complex64)
        self.offset = (np.asarray(self.reconstruction.positions[0]) - np.round(self.positions[0])).astype(int)
        if start is not None:  # our canvas's pixels at their place in PtyLab's; 1 around it, as a flat start
            (r, c), (h, w) = self.offset, self.canvas
            self.reconstruction.object[..., r:r + h, c:c + w] = start.to(torch.complex64).numpy()
        self.engine = getattr(Engines, engine)(self.reconstruction, measured, params, DummyMonitor())
        self.engine.betaObject = beta
        self.engine.betaProbe = 0.0  # the probe is known

    def advance(self, iterations: int) -> torch.Tensor:
        self.engine.numIterations = iterations
        self.engine.reconstruct()
        no = self.reconstruction.No
        obj = np.asarray(self.reconstruction.object).reshape(no, no)
        (r, c), (h, w) = self.offset, self.canvas
        return torch.from_numpy(obj[r:r + h, c:c + w].astype(np.complex64))


def ptylab_to_convergence(data: PtychoDataset, engine: str = "mPIE", beta: float = DEFAULT_BETA,
                          checkpoints: Sequence[int] = CHECKPOINTS, tolerance: float = TOLERANCE,
                          seed: int = 0, starts: Sequence[torch.Tensor] | None = None) -> ConvergedSolve:
    """Every object of ``data`` (which must carry the truth) by PtyLab's ``engine`` (ePIE, mPIE), object
    step ``beta``, the probe known, to convergence (``convergence.converge``) from ``starts`` (one canvas
    per object) or a flat start (1 everywhere); raises ImportError naming the package when PtyLab is
    missing."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if not 0 < beta <= 1:
        raise ValueError(f"beta must be in (0, 1]; got {beta}")
    if not ptylab_available():
        raise ImportError(f"this solver needs PtyLab: pip install {PTYLAB_PACKAGE}")
    if data.good_pixels is not None:  # rPIE keeps the field at bad pixels; these engines would fit them
        raise ValueError("the data mark bad detector pixels, which PtyLab's engines are not given here: "
                         "use the rpie solver")
    count = checked_starts(data, starts)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with _quiet():
            solvers = [_OneObject(data, k, engine, beta, None if starts is None else starts[k]) for k in range(count)]

        def advance(iterations: int) -> list[torch.Tensor]:
            with _quiet():
                return [solver.advance(iterations) for solver in solvers]

        return converge(data, advance, checkpoints, tolerance)
    finally:
        np.random.set_state(state)
