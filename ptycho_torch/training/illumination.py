"""What the measurement needs besides the object, learned beside the generator where the data do not give
it: the probe that lights the object, a sub-pixel correction of each training pattern's scan position,
and the detector's background.

The probe and the object share a scale: (a·P)·(O/a) gives the same patterns. The probe's power Σ|P|² is
held at its starting value after every step, so the object keeps the scale of the data (for a file's
guess: |O| ≈ 1 where the object is transparent). The position shifts are held at a zero mean: a common
shift of every position moves the object, not the fit. The background b starts at a thousandth of the
patterns' mean amplitude: the loss's gradient in b is proportional to b (a pattern is √(|Ψ|² + b²)), so at
0 it would never move; Adam's step does not depend on the gradient's size, so from there it grows at its
rate."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .config import TrainingConfig

__all__ = ["Illumination"]


class Illumination(nn.Module):
    """The probe (N, N), fixed or learned, ``patterns`` position shifts (row, column px), learned or none,
    and the background (N, N, amplitude units), learned or none, with their Adam parameter groups
    (``param_groups``) and the constraints above (``hold_``)."""

    def __init__(self, probe: torch.Tensor, patterns: int, learn_probe: bool, refine_positions: bool,
                 background_scale: float | None = None) -> None:
        """``background_scale``: the patterns' mean amplitude, to learn a background in its unit; None: none."""
        super().__init__()
        start = torch.view_as_real(probe.to(torch.complex64).clone())
        if learn_probe:
            self.probe_parts = nn.Parameter(start)
        else:
            self.register_buffer("probe_parts", start)
        self.register_buffer("power", probe.abs().double().square().sum().float())
        self.shifts = nn.Parameter(torch.zeros(patterns, 2)) if refine_positions else None
        self.background = (None if background_scale is None else
                           nn.Parameter(torch.full(probe.shape[-2:], 1e-3 * background_scale)))
        self.background_scale = background_scale
        self.learn_probe = learn_probe

    @property
    def probe(self) -> torch.Tensor:
        return torch.view_as_complex(self.probe_parts)

    def shifts_of(self, indices: torch.Tensor) -> torch.Tensor | None:
        """The shifts of the training patterns ``indices``, or None when positions are not refined."""
        return None if self.shifts is None else self.shifts[indices.to(self.shifts.device)]

    def param_groups(self, config: TrainingConfig) -> list[dict[str, Any]]:
        """The probe's group at ``probe_lr`` × its mean amplitude (the rate's unit is the probe's own); the
        shifts' at ``position_lr`` px per step; the background's at ``probe_lr`` × the patterns' mean
        amplitude."""
        groups = []
        if self.learn_probe:
            mean_amplitude = self.probe.detach().abs().mean().item()
            groups.append({"params": [self.probe_parts], "lr": config.probe_lr * mean_amplitude})
        if self.shifts is not None:
            groups.append({"params": [self.shifts], "lr": config.position_lr})
        if self.background is not None:
            groups.append({"params": [self.background], "lr": config.probe_lr * self.background_scale})
        return groups

    @torch.no_grad()
    def hold_(self) -> None:
        """The probe's power back to its start, the shifts' mean to zero."""
        if self.learn_probe:
            now = self.probe.abs().double().square().sum().float()
            self.probe_parts.mul_((self.power / now).sqrt())
        if self.shifts is not None:
            self.shifts.sub_(self.shifts.mean(dim=0))

    def record(self) -> dict[str, Any]:
        """What a run's metrics keep of it."""
        shifts = None if self.shifts is None else self.shifts.detach().cpu()
        return {"learned_probe": self.learn_probe, "refined_positions": shifts is not None,
                "position_shifts": None if shifts is None else shifts.tolist(),
                "max_position_shift": None if shifts is None else shifts.norm(dim=1).max().item(),
                "learned_background": self.background is not None}
