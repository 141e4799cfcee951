"""``SpectralGeometry``: what a strategy knows about the weight it fills.

One spectral weight maps ``in_channels`` → ``out_channels`` separately at each
kept mode. What decides the output's variance is how many terms are summed
into one output value: ``in_channels`` per branch, times the number of
independent spectral ``branches`` whose outputs are added (1 for the 2-D FNO
layer; 2 for the factorized layer, whose W-axis and H-axis branches are
summed). So the fans are

    fan_in  = branches · in_channels      fan_out = branches · out_channels

(each input value also feeds every branch, so the backward pass sums over them
too). The number of kept modes never enters a fan; ``modes`` (kept modes per
spatial axis of the weight) and ``spatial_rank`` are there for strategies that
need the layer's frequency geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import check_positive_int

__all__ = ["SpectralGeometry"]


@dataclass(frozen=True)
class SpectralGeometry:
    """Channels, summed branches and kept modes of one spectral weight.

    ``modes`` is empty when unknown (a weight filled without a layer around it).
    """

    in_channels: int
    out_channels: int
    branches: int = 1
    modes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_positive_int(self.in_channels, "in_channels")
        check_positive_int(self.out_channels, "out_channels")
        check_positive_int(self.branches, "branches")
        object.__setattr__(self, "modes", tuple(self.modes))  # a list becomes the frozen tuple
        for m in self.modes:
            check_positive_int(m, "modes (each axis)")

    @property
    def spatial_rank(self) -> int:
        """Number of spatial axes with kept modes (0 when unknown)."""
        return len(self.modes)

    @property
    def fan_in(self) -> int:
        """Terms summed into one output value: branches · in_channels."""
        return self.branches * self.in_channels

    @property
    def fan_out(self) -> int:
        """Terms summed into one input gradient: branches · out_channels."""
        return self.branches * self.out_channels
