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
    "INDEX_CHUNK",
    "PatchPlacement",
    "canvas_for",
    "stitch_weight",
]


INDEX_CHUNK = 2**22  # index entries built at once: 32 MiB of int64, and as many values gathered or spread


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
        # the gather/scatter index of patch p's neighbour k's pixel j is corner[p] + shift[p, k] + pixel[j]:
        # kept as its three factors and built a chunk of patches at a time (the whole (P, K, N²) int64
        # index of a 10,000-pattern scan of 64² is 1.3 GB)
        self.pixel = (cells[:, None] * width + cells[None, :]).flatten()  # (N²,) offsets within the canvas
        self.corner = (base[:, 0] * width + base[:, 1]).long()  # (P,)
        # a neighbour of weight 0 may lie just outside the canvas: point it at the (0,0) one instead
        self.shifts = shifts[None, :] * (weights > 0)  # (P, K)
        self.weights = weights
        self.positions, self.patch, self.canvas = pos.shape[0], patch, (height, width)
        if device is not None:
            self.to(device)

    def to(self, device: torch.device | str) -> PatchPlacement:
        self.weights, self.corner = self.weights.to(device), self.corner.to(device)
        self.shifts, self.pixel = self.shifts.to(device), self.pixel.to(device)
        return self

    def _chunks(self) -> list[slice]:
        """The patches in groups whose index holds at most INDEX_CHUNK entries."""
        per_chunk = max(1, INDEX_CHUNK // (self.shifts.shape[1] * self.patch * self.patch))
        return [slice(start, start + per_chunk) for start in range(0, self.positions, per_chunk)]

    def _index(self, chunk: slice) -> torch.Tensor:
        """(p, K, N²) flat canvas indices of the chunk's patches' pixels and their neighbours."""
        return self.corner[chunk, None, None] + self.shifts[chunk, :, None] + self.pixel[None, None, :]

    def _check(self, patches: torch.Tensor) -> None:
        if tuple(patches.shape[-3:]) != (self.positions, self.patch, self.patch):
            raise ValueError(f"expected patches (…, {self.positions}, {self.patch}, {self.patch}); "
                             f"got {tuple(patches.shape)}")

    def place(self, patches: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """(…, P, N, N) patches → (…, H, W): each canvas pixel the bilinear-weighted sum of the patch
        pixels that fall on it (complex patches allowed). With ``weight`` (N, N), each patch is
        multiplied by it first, in its dtype and a chunk at a time (no weighted copy of every patch);
        an expanded (broadcast) ``patches`` is read a chunk at a time too."""
        self._check(patches)
        if patches.is_complex():
            return torch.complex(self.place(patches.real, weight), self.place(patches.imag, weight))
        lead, (height, width) = patches.shape[:-3], self.canvas
        batch = math.prod(lead)
        out = None
        for chunk in self._chunks():
            part = patches[..., chunk, :, :]
            if weight is not None:
                part = part.to(torch.promote_types(part.dtype, weight.dtype)) * weight
            part = part.reshape(batch, -1, 1, self.patch * self.patch)
            spread = part * self.weights[chunk].to(part.dtype)[None, :, :, None]  # (B, p, K, N²)
            out = spread.new_zeros(batch, height * width) if out is None else out
            out = out.index_add(1, self._index(chunk).flatten(), spread.reshape(batch, -1))
        return out.reshape(*lead, height, width)

    def extract(self, canvas: torch.Tensor) -> torch.Tensor:
        """(…, H, W) objects → (…, P, N, N) patches, each pixel bilinearly interpolated at its place."""
        if tuple(canvas.shape[-2:]) != self.canvas:
            raise ValueError(f"expected objects (…, {self.canvas[0]}, {self.canvas[1]}); got {tuple(canvas.shape)}")
        lead = canvas.shape[:-2]
        flat = canvas.reshape(-1, self.canvas[0] * self.canvas[1])
        weights = self.weights.to(flat.real.dtype)  # real weights: a complex canvas is read as it is
        chunks = self._chunks()
        out = None if len(chunks) == 1 else flat.new_empty(flat.shape[0], self.positions, self.patch * self.patch)
        for chunk in chunks:
            part = (flat[:, self._index(chunk)] * weights[chunk][None, :, :, None]).sum(dim=2)  # (B, p, N²)
            if out is None:
                out = part
            else:  # written into the whole: no list of parts beside their concatenation
                out[:, chunk] = part
        return out.reshape(*lead, self.positions, self.patch, self.patch)
