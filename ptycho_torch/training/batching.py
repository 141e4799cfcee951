"""How a batch is formed: each step's patterns in one epoch — shuffled patches (``loss_on`` 'patches'),
whole objects, or square tiles of neighbouring positions whose edges move every epoch ('stitched')."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..scan import ScanOverlap, canvas_for, scan_tiles, tile_side
from ..simulation import PtychoDataset
from .config import TrainingConfig
from .distributed import DistributedContext, shard_indices

__all__ = ["StepBatch", "scan_overlap", "step_batches"]


@dataclass(frozen=True)
class StepBatch:
    """One optimizer step's patterns: ``indices`` into the dataset; with the stitched loss, consecutive
    groups of len(``positions``) patterns are stitched together, ``positions`` their top-left corners."""

    indices: torch.Tensor
    positions: tuple[tuple[float, float], ...] | None = None


def step_batches(train_set: PtychoDataset, config: TrainingConfig, epoch: int,
                  ctx: DistributedContext) -> list[StepBatch]:
    """This rank's batches for each step of one epoch, in (seed, epoch) order. ``loss_on`` 'patches':
    shuffled patches, ``batch_size`` a step. 'stitched': a scan grid narrower than two tiles of
    ⌊√batch_size⌋ positions (``overlap.tile_side``) goes whole, round(batch_size / patterns per object)
    objects a step (at least one); a wider one in such square tiles of neighbouring positions
    (``overlap.scan_tiles``), one a step, the tile edges shifted every epoch, every object's tiles
    shuffled together."""
    if config.loss_on == "patches":
        return [StepBatch(b) for b in shard_indices(len(train_set), epoch, config.seed, ctx).split(config.batch_size)]
    objects = train_set.object_patterns()
    scans = [tuple(train_set.positions_of(index)) for index in objects]
    tiles = [tile_side(config.batch_size, math.isqrt(len(index))) for index in objects]
    if all(tile is None for tile in tiles):
        order = shard_indices(len(objects), epoch, config.seed, ctx)
        # several objects a step only where they share one scan (their patches stitch alike)
        per_step = max(1, round(config.batch_size / len(objects[0]))) if len(set(scans)) == 1 else 1
        return [StepBatch(torch.cat([objects[int(k)] for k in chunk]), scans[int(chunk[0])])
                for chunk in order.split(per_step)]
    offset_draw = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    offset = {tile: int(torch.randint(tile, (), generator=offset_draw)) for tile in dict.fromkeys(tiles)
              if tile is not None}
    units: list[tuple[torch.Tensor, tuple[tuple[float, float], ...]]] = []  # (indices, positions) per tile
    tilings: dict[tuple[tuple[tuple[float, float], ...], int | None], list[list[int]]] = {}  # one per scan
    for index, scan, tile in zip(objects, scans, tiles):
        if (scan, tile) not in tilings:
            tilings[scan, tile] = ([list(range(len(index)))] if tile is None
                                   else scan_tiles(scan, train_set.step, tile, offset[tile]))
        units += [(index[torch.tensor(group)], tuple(scan[p] for p in group)) for group in tilings[scan, tile]]
    return [StepBatch(*units[int(i)]) for i in shard_indices(len(units), epoch, config.seed, ctx)]


def scan_overlap(positions: tuple[tuple[float, float], ...], probe: torch.Tensor) -> ScanOverlap:
    """The overlap map of a group of scan positions, moved by whole pixels to a canvas just large enough
    for them (their sub-pixel parts, and so the bilinear weights, unchanged)."""
    top, left = math.floor(min(r for r, _ in positions)), math.floor(min(c for _, c in positions))
    shifted = [(r - top, c - left) for r, c in positions]
    return ScanOverlap(shifted, canvas_for(shifted, probe.shape[-1]), probe)
