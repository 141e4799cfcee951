"""``PtychoDataset``: diffraction amplitudes in model units, where each was taken, and the truth where known
— what training, evaluation and reconstruction take, from a simulation or a scan file alike."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..optics import FAR_FIELD, Propagator

__all__ = ["PtychoDataset"]


@dataclass
class PtychoDataset:
    """Measured amplitudes, where each was taken, and the ground truth where known, in model units
    (counts = (scale · amplitude)²). Patterns belong to objects (``object_ids``); each pattern's patch
    lies at ``positions`` (top-left row, column, sub-pixel allowed) on its object's ``canvas``."""

    amplitudes: torch.Tensor  # (n, 1, N, N) float32: √counts / intensity_scale
    counts: torch.Tensor  # (n, 1, N, N) float32 photon counts
    objects: torch.Tensor | None  # (n, N, N) complex64 ground-truth patches; None: no truth
    probe: torch.Tensor  # (N, N) complex64
    intensity_scale: float
    positions: list[tuple[float, float]]  # per pattern
    object_ids: torch.Tensor  # (n,) int64: 0 … K−1
    canvas: tuple[int, int]  # every object's (height, width)
    step: int  # the scan lattice's period in px (for evaluation.lattice_share)
    origin: tuple[float, float] = (0.0, 0.0)  # the canvas's (0, 0) in its scan file's frame (data.scan_files.ScanFile)
    propagator: Propagator = FAR_FIELD  # how an exit wave became these patterns
    good_pixels: torch.Tensor | None = None  # (N, N) bool: the detector pixels to trust (None: all)
    background: torch.Tensor | None = None  # (N, N) the detector background's amplitude b, a learned one (physics)

    def __len__(self) -> int:
        return self.amplitudes.shape[0]

    def object_patterns(self) -> list[torch.Tensor]:
        """The indices of each object's patterns, object by object, in the data's order (one stable sort,
        not a pass over the data per object: it runs every epoch)."""
        order = torch.argsort(self.object_ids, stable=True)
        counts = torch.bincount(self.object_ids, minlength=int(self.object_ids.max()) + 1)
        return list(order.split(counts.tolist()))

    def positions_of(self, indices: torch.Tensor) -> list[tuple[float, float]]:
        return [self.positions[int(i)] for i in indices]

    def dynamic_range(self) -> dict[str, float]:
        """What the generator's input spans: per pattern its peak amplitude over its median amplitude
        (the DC peak for a flat-phase probe), the median over patterns; and the share of pixels that
        count no photon. Where a pattern's median amplitude is 0 (most pixels dark) its peak is taken over
        its smallest non-zero amplitude instead, so that the ratio stays finite."""
        flat = self.amplitudes.flatten(1).double()
        median = flat.median(dim=1).values
        floor = torch.where(flat > 0, flat, torch.inf).min(dim=1).values
        ratio = flat.max(dim=1).values / torch.where(median > 0, median, floor)
        return {"peak_over_median": ratio.median().item(),
                "zero_count_share": (self.counts == 0).double().mean().item()}
