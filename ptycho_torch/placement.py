"""Where each patch lies on its object: N × N patches at any (sub-pixel) scan positions, placed bilinearly.

A patch whose top-left corner is (r, c) = (r₀ + f, c₀ + g), r₀ = ⌊r⌋, covers the object pixels around
(r + i, c + j). Placing it (stitching) spreads each patch pixel over the four object pixels around
that point with the bilinear weights (1−f)(1−g), f(1−g), (1−f)g, fg; extracting a patch from an object
reads each patch pixel as the same weighted sum of those four — the transpose of placing, so the
stitched loss's stitch and re-extraction are one linear map and its adjoint.

Why bilinear and not a Fourier (sinc) shift: the weights are local, non-negative and sum to 1, so a
weighted mean of patches stays a mean (no coverage can turn negative, nothing rings at the edge of the
probe's support, nothing wraps around the patch), and at whole-pixel positions the weights are
(1, 0, 0, 0): a square-grid scan gives exactly the numbers of a plain slice. The price is a slight
low-pass at fractional shifts (a half-pixel shift averages two pixels), below the resolution the
reconstruction metrics resolve here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "PatchPlacement",
    "canvas_for",
    "stitch_weight",
]


def stitch_weight(probe: torch.Tensor) -> torch.Tensor:
    """Each patch pixel's weight in the stitched object: |probe|² where it exceeds 1% of its maximum, else
    0 (there the data hardly constrain the object)."""
    weight = probe.abs().square()
    return torch.where(weight > 0.01 * weight.max(), weight, 0)


def canvas_for(positions: Sequence[tuple[float, float]], patch: int) -> tuple[int, int]:
    """The smallest (height, width) holding a ``patch`` px patch at every top-left (row, column) position
    (positions at or right of 0; a fractional position needs one pixel more)."""
    rows = max(math.ceil(r) for r, _ in positions)
    cols = max(math.ceil(c) for _, c in positions)
    return rows + patch, cols + patch


class PatchPlacement:
    """P patches of ``patch`` × ``patch`` px at top-left ``positions`` (row, column; floats allowed) on a
    ``canvas`` (height, width) object: ``place`` sums weighted patches onto the canvas, ``extract`` reads
    patches from a canvas, each the other's transpose. Every position must keep its patch (and, at a
    fractional position, the one pixel beyond it) inside the canvas."""

    def __init__(self, positions: Sequence[tuple[float, float]], canvas: int | tuple[int, int], patch: int,
                 device: torch.device | str | None = None) -> None:
        height, width = (canvas, canvas) if isinstance(canvas, int) else canvas
        pos = torch.as_tensor([[float(r), float(c)] for r, c in positions], dtype=torch.float64).reshape(-1, 2)
        if not bool(torch.isfinite(pos).all()):
            raise ValueError("every scan position must be finite")
        base = pos.floor()
        frac = pos - base
        # the far row (column) is read only where the position is fractional along it
        far = (frac > 0).to(torch.float64)
        if bool((base < 0).any()) or bool((base[:, 0] + far[:, 0] + patch > height).any()) \
                or bool((base[:, 1] + far[:, 1] + patch > width).any()):
            raise ValueError(f"every scan position must place its {patch} px patch inside the {height} × {width} "
                             "px canvas")
        f, g = frac[:, 0], frac[:, 1]
        # (P, K): the weights of the neighbours (0,0), (1,0), (0,1), (1,1); whole-pixel positions need
        # only the first (K = 1: a plain slice, at a plain slice's cost)
        weights = torch.stack([(1 - f) * (1 - g), f * (1 - g), (1 - f) * g, f * g], dim=1)
        shifts = torch.tensor([0, width, 1, width + 1])
        if not bool((frac > 0).any()):
            weights, shifts = weights[:, :1], shifts[:1]
        cells = torch.arange(patch)
        pixel = cells[:, None] * width + cells[None, :]  # (N, N) flat offsets within the canvas
        corner = (base[:, 0] * width + base[:, 1]).long()  # (P,)
        # a neighbour of weight 0 may lie just outside the canvas: point it at the (0,0) one instead
        shifts_used = shifts[None, :] * (weights > 0)  # (P, K)
        self.weights = weights
        self.index = corner[:, None, None] + shifts_used[:, :, None] + pixel.flatten()[None, None, :]
        self.positions, self.patch, self.canvas = pos.shape[0], patch, (height, width)
        if device is not None:
            self.to(device)

    def to(self, device: torch.device | str) -> PatchPlacement:
        self.weights, self.index = self.weights.to(device), self.index.to(device)
        return self

    def _check(self, patches: torch.Tensor) -> None:
        if tuple(patches.shape[-3:]) != (self.positions, self.patch, self.patch):
            raise ValueError(f"expected patches (…, {self.positions}, {self.patch}, {self.patch}); "
                             f"got {tuple(patches.shape)}")

    def place(self, patches: torch.Tensor) -> torch.Tensor:
        """(…, P, N, N) patches → (…, H, W): each canvas pixel the bilinear-weighted sum of the patch
        pixels that fall on it (complex patches allowed)."""
        self._check(patches)
        if patches.is_complex():
            return torch.complex(self.place(patches.real), self.place(patches.imag))
        lead, (height, width) = patches.shape[:-3], self.canvas
        flat = patches.reshape(-1, self.positions, 1, self.patch * self.patch)
        spread = flat * self.weights.to(flat.dtype)[None, :, :, None]  # (B, P, K, N²)
        out = spread.new_zeros(flat.shape[0], height * width)
        out = out.index_add(1, self.index.flatten(), spread.reshape(flat.shape[0], -1))
        return out.reshape(*lead, height, width)

    def extract(self, canvas: torch.Tensor) -> torch.Tensor:
        """(…, H, W) objects → (…, P, N, N) patches, each pixel bilinearly interpolated at its place."""
        if tuple(canvas.shape[-2:]) != self.canvas:
            raise ValueError(f"expected objects (…, {self.canvas[0]}, {self.canvas[1]}); got {tuple(canvas.shape)}")
        if canvas.is_complex():
            return torch.complex(self.extract(canvas.real), self.extract(canvas.imag))
        lead = canvas.shape[:-2]
        flat = canvas.reshape(-1, self.canvas[0] * self.canvas[1])
        read = flat[:, self.index]  # (B, P, K, N²)
        patches = (read * self.weights.to(flat.dtype)[None, :, :, None]).sum(dim=2)
        return patches.reshape(*lead, self.positions, self.patch, self.patch)
