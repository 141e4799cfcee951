"""Where each patch lies on its object: ``placement`` (patches placed and read bilinearly at sub-pixel
positions), ``overlap`` (the stitched loss's map, patches → their stitched object → patches) and
``tiles`` (a large scan cut into tiles of neighbours, one a step)."""

from .overlap import ScanOverlap
from .placement import INDEX_CHUNK, PatchPlacement, canvas_for, stitch_weight
from .tiles import grid_tiles, scan_tiles, tile_side

__all__ = ["INDEX_CHUNK", "PatchPlacement", "ScanOverlap", "canvas_for", "grid_tiles", "scan_tiles", "stitch_weight",
           "tile_side"]
