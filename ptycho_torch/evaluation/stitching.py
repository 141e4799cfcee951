"""The predicted patches stitched into objects: each pixel the |probe|²-weighted mean of the patches over
it, and the largest fully covered box of a scan."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..scan.placement import PatchPlacement, stitch_weight
from ..simulation import PtychoDataset

__all__ = ["scanned_box", "stitch", "stitch_objects", "stitch_weight"]


def stitch(patches: torch.Tensor, positions: Sequence[tuple[float, float]], canvas: int | tuple[int, int],
           weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The object from its (n, N, N) complex patches whose top-left corners are ``positions`` (row,
    column; sub-pixel allowed, placed bilinearly: ``placement``) on a ``canvas`` (side, or height and
    width): each pixel the ``weight``-weighted mean of the patches over it. Returns (object, coverage =
    summed weight); pixels no patch covers are 0. Computed on the patches' device."""
    if len(positions) != patches.shape[0]:
        raise ValueError(f"{patches.shape[0]} patches but {len(positions)} scan positions")
    n = patches.shape[-1]
    placement = PatchPlacement(positions, canvas, n, device=patches.device)
    w = weight.to(patches.device, torch.float64)
    total = placement.place(patches, weight=w)  # in float64, a chunk at a time
    coverage = placement.place(w.expand(len(positions), n, n))
    return torch.where(coverage > 0, total / coverage.clamp_min(1e-300), 0), coverage


def scanned_box(coverage: torch.Tensor) -> tuple[slice, slice]:
    """The largest axis-aligned box (found by shrinking the covered pixels' bounding box, one side at a
    time, the side with the most uncovered pixels first) in which every pixel is covered."""
    covered = coverage > 0
    rows, cols = torch.nonzero(covered.any(1)).flatten(), torch.nonzero(covered.any(0)).flatten()
    if rows.numel() == 0:
        raise ValueError("no pixel is covered by a patch")
    top, bottom, left, right = rows[0].item(), rows[-1].item() + 1, cols[0].item(), cols[-1].item() + 1
    while top < bottom and left < right:
        box = covered[top:bottom, left:right]
        if bool(box.all()):
            return slice(top, bottom), slice(left, right)
        gaps = {"top": (~box[0]).sum().item(), "bottom": (~box[-1]).sum().item(),
                "left": (~box[:, 0]).sum().item(), "right": (~box[:, -1]).sum().item()}
        side = max(gaps, key=gaps.__getitem__)
        top, bottom = top + (side == "top"), bottom - (side == "bottom")
        left, right = left + (side == "left"), right - (side == "right")
    raise ValueError("the covered pixels hold no fully covered box")


def stitch_objects(pred_patches: torch.Tensor, data: PtychoDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every object of ``data`` stitched from its predicted patches (in the data's order), as measured —
    no truth needed, nothing aligned: (K, H, W) complex objects and their (K, H, W) coverage (summed
    ``stitch_weight``; 0 where no patch reached)."""
    if pred_patches.shape[0] != len(data):
        raise ValueError(f"{pred_patches.shape[0]} predicted patches for {len(data)} patterns")
    weight = stitch_weight(data.probe)
    stitched = [stitch(_rows(pred_patches, index), data.positions_of(index), data.canvas, weight)
                for index in data.object_patterns()]
    return torch.stack([o for o, _ in stitched]), torch.stack([c for _, c in stitched])


def _rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``tensor[index]``, as a view where the index is a run of consecutive rows (one object's patterns
    stored together): no copy of a large scan's patches."""
    if index.numel() and bool((index == torch.arange(int(index[0]), int(index[0]) + index.numel())).all()):
        return tensor[int(index[0]) : int(index[0]) + index.numel()]
    return tensor[index]
