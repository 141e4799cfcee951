"""Apply settings to weights: the one place where a strategy meets a layer's tensor."""

from __future__ import annotations

from typing import Any

import torch

from .registry import Strategy, check_complex_tensor, get_strategy
from .settings import SpectralInitSettings, resolve_settings


class SpectralInitializer:
    """Settings bound to their strategy and, when seeded, one private generator.

    Share one initializer between the layers of a model: with a seed they then
    draw successive, different weights from a single reproducible stream, and
    the global RNG is never touched. Weights are drawn on the CPU and copied to
    the weight's device, so a seed gives the same weights on every device.
    """

    def __init__(self, settings: SpectralInitSettings) -> None:
        self.settings = settings
        self.strategy: Strategy = get_strategy(settings.strategy)
        self.generator: torch.Generator | None = (
            None if settings.seed is None else torch.Generator().manual_seed(settings.seed)
        )

    def __call__(self, weight: torch.Tensor, *, in_channels: int, out_channels: int) -> torch.Tensor:
        """Re-draw ``weight`` in place; on any failure it is left as it was."""
        check_complex_tensor(weight)
        draft = torch.empty(weight.shape, dtype=weight.dtype)
        self.strategy(
            draft,
            in_channels=in_channels,
            out_channels=out_channels,
            gain=self.settings.gain,
            generator=self.generator,
            **self.settings.params,
        )
        if not torch.isfinite(torch.view_as_real(draft)).all():
            raise FloatingPointError(
                f"strategy {self.strategy.name!r} produced non-finite weights for "
                f"in_channels={in_channels}, out_channels={out_channels}, gain={self.settings.gain}"
            )
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
    in_channels: int,
    out_channels: int,
    spectral_init: SpectralInitializer | SpectralInitSettings | str | dict[str, Any] | None = None,
) -> torch.Tensor:
    """Fill ``weight`` in place as ``spectral_init`` says and return it."""
    return make_initializer(spectral_init)(weight, in_channels=in_channels, out_channels=out_channels)
