"""Apply settings to weights: the one place where a strategy meets a layer's tensor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .geometry import SpectralGeometry
from .registry import Strategy, check_complex_tensor, get_strategy, resolve_geometry
from .settings import SpectralInitSettings, resolve_settings

__all__ = [
    "SpectralInitializer",
    "all_finite",
    "init_spectral_weight_",
    "make_initializer",
]


def all_finite(draft: torch.Tensor) -> bool:
    """Whether every element of a draw is finite: on the CPU checked by numpy, on the calling thread."""
    values = torch.view_as_real(draft) if draft.is_complex() else draft
    if values.device.type != "cpu":
        return bool(torch.isfinite(values).all())
    return bool(np.isfinite(values.detach().numpy()).all())


class SpectralInitializer:
    """Settings bound to their strategy and, when seeded, one private generator.

    Share one initializer between the layers of a model: with a seed they then
    draw successive, different weights from a single reproducible stream, and
    the global RNG is never touched. Weights are drawn on the CPU and copied to
    the weight's device, so a seed gives the same weights on every device. The
    finite check runs in numpy, off torch's thread pool (which a busy machine
    stalls); the process's torch thread count is left alone.
    """

    def __init__(self, settings: SpectralInitSettings) -> None:
        self.settings = settings
        self.strategy: Strategy = get_strategy(settings.strategy)
        self.generator: torch.Generator | None = (
            None if settings.seed is None else torch.Generator().manual_seed(settings.seed)
        )

    def second_moment(self, geometry: SpectralGeometry) -> float:
        """The E|w|² these settings promise for a weight of ``geometry``."""
        return self.strategy.second_moment(geometry=geometry, gain=self.settings.gain, **self.settings.params)

    def draft(self, weight: torch.Tensor, geometry: SpectralGeometry) -> torch.Tensor:
        """A fresh CPU draw of ``weight``'s shape and dtype, checked finite; ``weight`` is not touched."""
        check_complex_tensor(weight)
        draft = torch.empty(weight.shape, dtype=weight.dtype)
        settings = self.settings
        self.strategy(draft, geometry=geometry, gain=settings.gain, generator=self.generator, **settings.params)
        if not all_finite(draft):
            raise FloatingPointError(
                f"strategy {self.strategy.name!r} produced non-finite weights for {geometry}, "
                f"gain={self.settings.gain}"
            )
        return draft

    def __call__(
        self,
        weight: torch.Tensor,
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
        geometry: SpectralGeometry | None = None,
    ) -> torch.Tensor:
        """Re-draw ``weight`` in place; on any failure it is left as it was."""
        draft = self.draft(weight, resolve_geometry(in_channels, out_channels, geometry))
        with torch.no_grad():
            weight.copy_(draft)
        return weight

    def __repr__(self) -> str:
        return f"SpectralInitializer({self.settings!r})"


def make_initializer(
    spec: SpectralInitializer | SpectralInitSettings | str | dict[str, Any] | None = None,
) -> SpectralInitializer:
    """An initializer from a name, settings, a dict of fields, or ``None`` (defaults + env)."""
    if isinstance(spec, SpectralInitializer):
        return spec
    return SpectralInitializer(resolve_settings(spec))


def init_spectral_weight_(
    weight: torch.Tensor,
    *,
    in_channels: int | None = None,
    out_channels: int | None = None,
    geometry: SpectralGeometry | None = None,
    spectral_init: SpectralInitializer | SpectralInitSettings | str | dict[str, Any] | None = None,
) -> torch.Tensor:
    """Fill ``weight`` in place as ``spectral_init`` says and return it (channels or ``geometry``)."""
    return make_initializer(spectral_init)(
        weight, in_channels=in_channels, out_channels=out_channels, geometry=geometry
    )
