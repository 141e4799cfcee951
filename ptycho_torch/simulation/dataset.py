"""Simulated ptychography data: patches on a scan grid, their noisy diffraction amplitudes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..data.dataset import PtychoDataset
from ..optics import FAR_FIELD, Propagator
from ..scan.placement import PatchPlacement
from .forward import diffraction_amplitude, poisson_counts
from .objects import OBJECT_KINDS, lines_object, object_of_kind
from .probe import disk_probe, load_probe, max_defocus

__all__ = [
    "PtychoDataset",
    "SimulationConfig",
    "simulate_dataset",
    "simulated_objects",
]


ScanKind = Literal["grid", "random", "spiral"]
ObjectKind = Literal[tuple(OBJECT_KINDS)]  # type: ignore[valid-type]
SCAN_SEED = 20_261_202  # the random scan's positions: one fixed draw, the same for every object and run
GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


class SimulationConfig(BaseModel):
    """What to simulate. Patches of N × N at the scan's positions: a square grid with step ``offset`` px,
    or as many positions at the same mean density (one per offset² px²) drawn at random or on a spiral."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    N: int = Field(64, gt=0, le=1024, description="Patch and probe size (even).")
    gridsize: int = Field(1, description="Patches per sample along each axis; only 1 is implemented.")
    nimgs_train: int = Field(1, ge=1, description="Simulated objects to train on.")
    nimgs_test: int = Field(1, ge=1, description="Simulated objects to test on (other seeds).")
    object_size: int | None = Field(None, le=16384, description="Object canvas size; default 2·N.")
    offset: int | None = Field(None, ge=1, le=16384, description="Scan step in px; default N // 4.")
    n_lines: int = Field(100, ge=1, le=100_000, description="Lines drawn into each simulated object.")
    object_kinds: list[ObjectKind] = Field(["lines"], min_length=1, description="The simulated objects' "
                                                  "kinds, taken in turn: object i is of kind i mod their number "
                                                  "(lines, siemens, smooth, natural: simulation.object_of_kind).")
    nphotons: float = Field(1e9, gt=0, allow_inf_nan=False, description="Mean photons per diffraction pattern.")
    scan: ScanKind = Field("grid", description="grid: a square grid of step offset; random: uniform positions "
                           "(sub-pixel); spiral: a Fermat spiral from the centre (sub-pixel); the same number "
                           "of positions and mean density as the grid.")
    probe_path: Path | None = Field(None, description="An .npz with a complex N × N 'probeGuess'; default a disk.")
    probe_defocus: float = Field(0.0, allow_inf_nan=False, description="The disk probe's Fresnel quadratic phase "
                                 "in rad at its edge (0: flat phase); |defocus| <= π·N/8.")

    @model_validator(mode="after")
    def _sizes(self) -> SimulationConfig:
        if self.N % 2:
            raise ValueError(f"N must be a positive even size; got {self.N}")
        if self.gridsize != 1:
            raise ValueError(f"gridsize must be 1 (grouped scans are not implemented); got {self.gridsize}")
        if abs(self.probe_defocus) > max_defocus(self.N):
            raise ValueError(f"probe_defocus must be within ±π·N/8 = ±{max_defocus(self.N):.2f} rad for N = {self.N} "
                             f"(beyond it the phase aliases on the patch); got {self.probe_defocus}")
        if self.probe_defocus and self.probe_path is not None:
            raise ValueError("probe_defocus shapes the simulated disk probe; a probe_path's probe has its own phase")
        if self.object_size is not None and self.object_size < self.N:
            raise ValueError(f"object_size must be >= N = {self.N}; got {self.object_size}")
        return self

    @property
    def canvas(self) -> int:
        return self.object_size or 2 * self.N

    @property
    def step(self) -> int:
        return self.offset or max(1, self.N // 4)

    @property
    def grid_positions(self) -> int:
        """How many positions the square grid of step ``offset`` has (the other scans have as many, or the
        spiral one or two fewer where the square's corners cut it)."""
        return ((self.canvas - self.N) // self.step + 1) ** 2

    @property
    def patches_per_object(self) -> int:
        """How many N × N patches the scan places on one object (what ``_extract_patches`` yields)."""
        return self.grid_positions if self.scan == "grid" else len(self.scan_positions)

    @cached_property
    def scan_positions(self) -> list[tuple[float, float]]:
        """Each patch's top-left corner (row, column) on its object, in the order of the data: whole pixels
        on the grid; for random and spiral scans anywhere in [0, canvas − N − 1] (sub-pixel positions read
        one pixel beyond the patch)."""
        if self.scan == "grid":
            starts = range(0, self.canvas - self.N + 1, self.step)
            return [(row, col) for row in starts for col in starts]
        span = max(0, self.canvas - self.N - 1)
        if self.scan == "random":
            drawn = torch.rand(self.grid_positions, 2, generator=torch.Generator().manual_seed(SCAN_SEED),
                               dtype=torch.float64) * span
            return [(float(r), float(c)) for r, c in drawn]
        # Fermat spiral from the centre: point k at radius a·√(k/π), angle k·golden angle, one point per a²
        # px²; a = span/√n puts the grid's n positions on the square (the first n that fall inside it)
        n = self.grid_positions
        centre, spacing, found, k = span / 2, span / math.sqrt(n), [], 0
        while len(found) < n and k < 100 * n:
            radius, angle = spacing * math.sqrt(k / math.pi), k * GOLDEN_ANGLE
            row, col = centre + radius * math.sin(angle), centre + radius * math.cos(angle)
            if 0 <= row <= span and 0 <= col <= span:
                found.append((row, col))
            k += 1
        return found


def _extract_patches(obj: torch.Tensor, config: SimulationConfig) -> torch.Tensor:
    """The N × N patches of ``obj`` at the scan positions (bilinearly interpolated at sub-pixel ones)."""
    return PatchPlacement(config.scan_positions, config.canvas, config.N).extract(obj)


def simulated_objects(config: SimulationConfig, nimgs: int, seed: int) -> list[torch.Tensor]:
    """The ``nimgs`` whole objects (canvas × canvas, complex) that ``simulate_dataset`` scans, from seeds
    seed, seed+1, …, of ``config.object_kinds`` in turn."""
    kinds = config.object_kinds
    return [lines_object(config.canvas, config.n_lines, seed=seed + i) if kinds[i % len(kinds)] == "lines"
            else object_of_kind(kinds[i % len(kinds)], config.canvas, seed + i) for i in range(nimgs)]


def simulate_dataset(
    config: SimulationConfig, nimgs: int, seed: int, intensity_scale: float | None = None,
    propagator: Propagator = FAR_FIELD, objects: Sequence[torch.Tensor] | None = None,
) -> PtychoDataset:
    """``nimgs`` objects from seeds seed, seed+1, …; noise from its own stream; patterns formed by
    ``propagator`` (far field by default; ``SimulatedGeometry.propagator`` for the near field).
    ``objects``: ``nimgs`` canvas × canvas objects to scan instead of the "lines" family's (other kinds:
    ``objects.object_of_kind``).

    ``intensity_scale`` defaults to √(nphotons / mean Σ|Ψ|²) of this data, so a
    pattern holds ``nphotons`` photons on average; pass the training set's
    scale to a test set so both share one unit.
    """
    probe = (load_probe(config.probe_path, config.N) if config.probe_path
             else disk_probe(config.N, defocus=config.probe_defocus))
    if objects is not None and (len(objects) != nimgs or any(o.shape != (config.canvas,) * 2 for o in objects)):
        raise ValueError(f"objects must be {nimgs} objects of {config.canvas} × {config.canvas} px")
    scanned = simulated_objects(config, nimgs, seed) if objects is None else objects
    objects = torch.cat([_extract_patches(obj, config) for obj in scanned])
    clean = diffraction_amplitude(objects, probe, propagator)
    if intensity_scale is None:
        mean_total = clean.double().square().sum(dim=(-2, -1)).mean().item()
        intensity_scale = math.sqrt(config.nphotons / mean_total)
    counts = poisson_counts(clean, intensity_scale, torch.Generator().manual_seed(1_000_003 + seed))
    amplitudes = torch.sqrt(counts) / intensity_scale
    return PtychoDataset(
        amplitudes=amplitudes.float().unsqueeze(1),
        counts=counts.float().unsqueeze(1),
        objects=objects,
        probe=probe,
        intensity_scale=intensity_scale,
        positions=list(config.scan_positions) * nimgs,
        object_ids=torch.arange(nimgs).repeat_interleave(config.patches_per_object),
        canvas=(config.canvas, config.canvas),
        step=config.step,
        propagator=propagator,
    )
