"""The scan's overlap constraint as a differentiable map, for a loss on the stitched object.

One diffraction pattern does not determine its patch: with a probe whose phase is flat (or symmetric)
the patch's global phase and its twin, conj(O(−r)), give the same pattern. Each patch predicted alone
may take another phase offset or twin than its neighbour, and stitching then prints the mismatch at
every scan position. Ptychography resolves it by overlap: neighbouring patterns share object pixels.
``ScanOverlap`` maps one object's predicted patches to their weighted mean on the object canvas (the
stitch of ``evaluation``) and back to patches; a physics loss on those re-extracted patches can only be
low when the patches agree where they overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .placement import PatchPlacement, stitch_weight

__all__ = [
    "ScanOverlap",
    "grid_tiles",
    "scan_tiles",
    "tile_side",
]


class ScanOverlap:
    """Patches (B, P, N, N) of B objects, P scan positions each → the patches of their stitched objects.

    Pixel by pixel the stitched object is Σ_p w·O_p / Σ_p w over the patches p covering it (w:
    ``stitch_weight``, spread bilinearly at sub-pixel positions: ``placement``), so re-extracted patches
    are unchanged where the patches agree; pixels no patch weighs are 0. ``positions`` are the patches'
    top-left corners (row, column) on a ``canvas`` (side, or height and width) object.
    """

    def __init__(self, positions: Sequence[tuple[float, float]], canvas: int | tuple[int, int],
                 probe: torch.Tensor) -> None:
        n = probe.shape[-1]
        self.placement = PatchPlacement(positions, canvas, n, probe.device)
        self.weight = stitch_weight(probe).float()
        self.positions, self.patch = len(positions), n
        coverage = self.placement.place(self.weight.expand(len(positions), n, n))
        self.inverse_coverage = torch.where(coverage > 0, 1 / coverage.clamp_min(1e-30), 0)

    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        if patches.dim() != 4 or tuple(patches.shape[1:]) != (self.positions, self.patch, self.patch):
            raise ValueError(f"expected patches (B, {self.positions}, {self.patch}, {self.patch}); "
                             f"got {tuple(patches.shape)}")
        stitched = self.placement.place(patches * self.weight) * self.inverse_coverage
        return self.placement.extract(stitched)


def scan_tiles(positions: Sequence[tuple[float, float]], step: float, tile: int, offset: int = 0) -> list[list[int]]:
    """The scan's positions (indices into ``positions``, top-left corners in px) in square blocks of about
    ``tile`` × ``tile`` neighbours: each position's cell on the lattice of period ``step`` px, the cells
    cut into blocks of ``tile`` × ``tile`` whose edges are shifted by ``offset`` cells (a block at the
    edge thinner than half a tile, or than 2, joins its neighbour); empty blocks are left out.

    For a scan of more patterns than a step can hold: the overlap constraint is applied within each
    block, and a block edge that moves from epoch to epoch lets it reach across all of them. A square
    grid of that step gets its ``tile`` × ``tile`` squares of positions (``grid_tiles``)."""
    if tile < 1 or not 0 <= offset < tile:
        raise ValueError(f"tile must be >= 1 and 0 <= offset < tile; got tile {tile}, offset {offset}")
    cells = [(round(r / step), round(c / step)) for r, c in positions]
    side = max(max(cell) for cell in cells) + 1
    starts = sorted({0, *range(tile - offset if offset else tile, side, tile)})
    bounds = list(zip(starts, [*starts[1:], side]))
    narrow = max(2, (tile + 1) // 2)  # an edge block this thin joins its neighbour: a lone row constrains little
    if len(bounds) > 1 and bounds[0][1] - bounds[0][0] < narrow:
        bounds[:2] = [(bounds[0][0], bounds[1][1])]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < narrow:
        bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
    block = [next(b for b, (low, high) in enumerate(bounds) if low <= v < high) for v in range(side)]
    groups: dict[tuple[int, int], list[int]] = {}
    for index, (row, col) in enumerate(cells):
        groups.setdefault((block[row], block[col]), []).append(index)
    return [groups[key] for key in sorted(groups)]


def grid_tiles(side: int, tile: int, offset: int = 0) -> list[list[int]]:
    """``scan_tiles`` of a ``side`` × ``side`` grid of step 1 (positions in row-major order)."""
    return scan_tiles([(row, col) for row in range(side) for col in range(side)], 1, tile, offset)


def tile_side(batch_size: int, grid_side: int) -> int | None:
    """The side, in scan positions, of the square tiles a step of the stitched loss takes from a
    ``grid_side`` × ``grid_side`` scan: ⌊√batch_size⌋ (at least 2); None — whole objects — where the
    grid is narrower than two tiles (a tiling would only cut it once)."""
    tile = max(2, math.isqrt(batch_size))
    return tile if grid_side >= 2 * tile else None
