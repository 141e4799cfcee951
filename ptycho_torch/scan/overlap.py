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

from collections.abc import Sequence

import torch

from .placement import PatchPlacement, stitch_weight

__all__ = ["ScanOverlap"]


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
