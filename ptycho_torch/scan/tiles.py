"""The scan cut into square tiles of neighbouring positions: what one step of the stitched loss takes from
a scan of more patterns than a step can hold, the tile edges moved from epoch to epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["grid_tiles", "scan_tiles", "tile_side"]


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
