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

A layer's constructor counts its modes in its own convention (this package's ``modes`` M keeps
(2M, M); neuraloperator's ``n_modes`` (M, M) keeps (M, M//2 + 1)); ``layer_modes`` turns that count
into the weight's, so that "K modes" can mean what it means to the layer's user (μP's base).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .checks import check_positive_int

__all__ = ["SpectralGeometry", "both_signs_but_last"]

ModeRule = Callable[[tuple[int, ...]], tuple[int, ...]]


def both_signs_but_last(nominal: tuple[int, ...]) -> tuple[int, ...]:
    """(2·k_1, …, 2·k_{d−1}, k_d): the kept modes of a layer given k per axis that keeps frequencies of
    both signs on every axis but the last (rfft's half spectrum): Li et al.'s ``modes1…`` and this
    package's ``modes``."""
    return (*(2 * k for k in nominal[:-1]), nominal[-1])


@dataclass(frozen=True)
class SpectralGeometry:
    """Channels, summed branches and kept modes of one spectral weight.

    ``modes`` is empty when unknown (a weight filled without a layer around it). ``layer_modes`` maps
    the modes the layer's constructor takes, one per axis of ``modes``, to the weight's ``modes``
    (None: the same numbers); it takes no part in comparing geometries.
    """

    in_channels: int
    out_channels: int
    branches: int = 1
    modes: tuple[int, ...] = ()
    layer_modes: ModeRule | None = field(default=None, compare=False, repr=False)

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

    def modes_for(self, k: int) -> tuple[int, ...]:
        """The kept modes this weight would hold in its layer built with ``k`` modes on every axis, as
        the layer counts them (``modes``, ``n_modes``, ``modes1``…)."""
        nominal = (k,) * self.spatial_rank
        return nominal if self.layer_modes is None else tuple(self.layer_modes(nominal))

    @property
    def fan_in(self) -> int:
        """Terms summed into one output value: branches · in_channels."""
        return self.branches * self.in_channels

    @property
    def fan_out(self) -> int:
        """Terms summed into one input gradient: branches · out_channels."""
        return self.branches * self.out_channels
