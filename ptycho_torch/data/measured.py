"""Scans from files, in place of the simulation: which files, and the datasets they give.

``DataFiles`` names a training scan and optionally a test scan in the canonical format
(``data_files``); both are read and checked when the config is made, so a malformed file is refused
before any work. Without a test file the run is tested on the training scan itself — the usual
ptychography question, what object these measurements give — and says so.

Units. The model compares amplitudes, |FFT(probe · object)| in every file whatever its dose; the
Poisson loss and the iterative anchor need photon counts, counts = (scale · amplitude)², each file with
its own scale: the file's ``_metadata["intensity_scale"]`` where this package wrote it, else
√(nphotons / mean Σ amplitude²) with ``nphotons`` from the file's metadata, or ``DataFiles.nphotons``
(default 1e9, the simulation's), so that a pattern holds nphotons photons on average.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ..optics import Propagation
from .dataset import PtychoDataset
from .readers import read_any_scan
from .scan_files import ScanFile

__all__ = [
    "DEFAULT_NPHOTONS",
    "DataFiles",
    "dataset_from_scan",
    "datasets_from_files",
    "describe",
    "intensity_scale",
    "lattice_step",
]

DEFAULT_NPHOTONS = 1e9
COUNTS_CHUNK = 256  # patterns whose counts are computed at a time


class DataFiles(BaseModel):
    """Measured scans to train and test on: PtychoPINN's canonical ``.npz`` format, or CXI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_path: Path = Field(description="The scan to train on: .npz (diff3d, probeGuess, xcoords, ycoords, …) or "
                             "CXI (HDF5).")
    test_path: Path | None = Field(None, description="The scan to test on; default the training scan itself.")
    nphotons: float | None = Field(None, gt=0, allow_inf_nan=False,
                                   description="Mean photons per pattern, where the file's metadata gives neither "
                                   "intensity_scale nor nphotons (default 1e9).")
    propagation: Propagation = Field("far-field", description="How the patterns were formed: far-field (a "
                                     "Fourier transform; .npz and CXI) or near-field (in-line holography, "
                                     "angular-spectrum propagation; CXI, whose geometry it needs).")
    focus_distance: float | None = Field(None, gt=0, allow_inf_nan=False, description="Near field with a "
                                         "diverging beam: the focus-to-sample distance z₁ in m, which a CXI file "
                                         "does not hold (Fresnel scaling: M = (z₁ + z₂)/z₁).")
    _scans: dict[str, ScanFile] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _read(self) -> DataFiles:
        if self.focus_distance is not None and self.propagation == "far-field":
            raise ValueError("focus_distance is for near-field propagation: drop it, or set propagation = "
                             "'near-field'")
        train = read_any_scan(self.train_path, self.propagation, self.focus_distance)
        test = train if self.test_path is None else read_any_scan(self.test_path, self.propagation,
                                                                   self.focus_distance)
        if test.N != train.N:
            raise ValueError(f"test_path's patterns are {test.N} px, train_path's {train.N} px: one size, please")
        if train.probe_guessed and test is not train:  # one probe per run: the training scan's guess, learned
            test = dataclasses.replace(test, probe=train.probe, probe_guessed=True)
        if not torch.equal(test.probe, train.probe):
            raise ValueError("test_path's probeGuess differs from train_path's: the model learns one probe's "
                             "patterns (one probe per run)")
        self._scans.update(train=train, test=test)
        return self

    @property
    def probe_guessed(self) -> bool:
        """The training file held no probe: the one it gives is a guess from its patterns."""
        return self._scans["train"].probe_guessed

    @property
    def N(self) -> int:
        return self._scans["train"].N

    @property
    def scans(self) -> tuple[ScanFile, ScanFile]:
        """(training scan, test scan), as read."""
        return self._scans["train"], self._scans["test"]

    def notes(self) -> list[str]:
        """What was converted or assumed while reading, to be said once."""
        train, test = self.scans
        said = [f"{train.path}: {note}" for note in train.notes]
        if train.probe_guessed:
            said.append(f"{train.path} holds no probe: the guess is its mean pattern carried back to the sample with "
                        "a flat phase, to be learned (learn_probe)")
        if test is not train:
            said += [f"{test.path}: {note}" for note in test.notes]
        else:
            said.append("no test_path: the run is tested on the training scan itself")
        if test.patch_truth is None:
            said.append(f"{test.path} has no objectGuess or Y: the reconstruction metrics are skipped, the object "
                        "is still written")
        return said


def intensity_scale(scan: ScanFile, nphotons: float | None) -> float:
    """counts = (scale · amplitude)²: the file's own scale, else the one that makes the mean pattern hold
    nphotons photons (from the file's metadata, else ``nphotons``, else 1e9)."""
    if isinstance(scan.metadata.get("intensity_scale"), (int, float)) and scan.metadata["intensity_scale"] > 0:
        return float(scan.metadata["intensity_scale"])
    photons = scan.metadata.get("nphotons")
    photons = float(photons) if isinstance(photons, (int, float)) and photons > 0 else (nphotons or DEFAULT_NPHOTONS)
    mean_total = scan.amplitudes.double().square().sum(dim=(-2, -1)).mean().item()
    return math.sqrt(photons / mean_total) if mean_total > 0 else 1.0


def lattice_step(positions: list[tuple[float, float]]) -> int:
    """The scan's typical spacing in px (the median distance to the nearest other position, at least 1):
    the period ``evaluation.lattice_share`` looks for."""
    if len(positions) < 2:
        return 1
    points = torch.tensor(positions, dtype=torch.float64)
    sample = torch.arange(0, len(points), max(1, len(points) // 1000))  # a thousand positions tell the median
    distances = torch.cdist(points[sample], points)
    distances[torch.arange(len(sample)), sample] = math.inf
    return max(1, round(distances.min(dim=1).values.median().item()))


def dataset_from_scan(scan: ScanFile, scale: float) -> PtychoDataset:
    """The scan as a dataset in model units (counts = (scale · amplitude)²)."""
    amplitudes = scan.amplitudes.unsqueeze(1).float()
    counts = torch.empty_like(amplitudes)
    for start in range(0, len(amplitudes), COUNTS_CHUNK):  # in float64, without a float64 copy of the stack
        part = slice(start, start + COUNTS_CHUNK)
        counts[part] = (scale * amplitudes[part].double()).square()
    return PtychoDataset(amplitudes=amplitudes, counts=counts,
                         objects=scan.patch_truth, probe=scan.probe, intensity_scale=scale,
                         positions=list(scan.positions), object_ids=scan.object_index.clone(), canvas=scan.canvas,
                         step=lattice_step(scan.positions), origin=scan.origin, propagator=scan.propagator,
                         good_pixels=scan.good_pixels)


def datasets_from_files(files: DataFiles) -> tuple[PtychoDataset, PtychoDataset]:
    """Training and test datasets. Each file's amplitudes are |FFT(probe · object)| whatever its dose, so
    both feed the model alike; each converts to its own photon counts with its own scale."""
    train, test = files.scans
    train_set = dataset_from_scan(train, intensity_scale(train, files.nphotons))
    if test is train:
        return train_set, train_set
    return train_set, dataset_from_scan(test, intensity_scale(test, files.nphotons))


def describe(files: DataFiles) -> dict[str, Any]:
    """What a run's metrics record of its files."""
    train, test = files.scans
    return {"train_path": str(train.path), "test_path": str(test.path), "train_patterns": len(train),
            "test_patterns": len(test), "N": train.N, "notes": files.notes()}
