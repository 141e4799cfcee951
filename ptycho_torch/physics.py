"""The physics-informed loss and reconstruction errors: generator output → object → diffraction."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from .optics import FAR_FIELD, Propagator, moved_exit_wave

__all__ = [
    "LossName",
    "physics_loss",
    "probe_support",
    "reconstruction_errors",
    "to_complex_object",
]

LossName = Literal["mae", "poisson"]


def to_complex_object(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """A generator's output as a complex object patch (B, N, N) for C = 1.

    ``real_imag`` outputs (B, N, N, 1, 2) are re + i·im; ``amp_phase`` outputs
    (amp, phase), each (B, 1, N, N), are amp·e^{i·phase}.
    """
    if isinstance(output, tuple):
        amp, phase = output
        return torch.polar(amp[:, 0], phase[:, 0])
    return torch.complex(output[..., 0, 0], output[..., 0, 1])


def physics_loss(
    obj: torch.Tensor,
    probe: torch.Tensor,
    amplitudes: torch.Tensor,
    counts: torch.Tensor,
    intensity_scale: float,
    kind: LossName = "mae",
    *,
    propagator: Propagator = FAR_FIELD,
    good_pixels: torch.Tensor | None = None,
    shifts: torch.Tensor | None = None,
    background: torch.Tensor | None = None,
) -> torch.Tensor:
    """Compare the measurement with what ``obj`` under ``probe`` gives through ``propagator``.

    ``mae``: mean |predicted − measured amplitude| in model units. ``poisson``: the Poisson negative
    log-likelihood of the photon counts at rate (scale · predicted amplitude)², divided by scale² to stay
    in model units. ``good_pixels`` (N, N) bool: the mean is taken over those only (a detector's bad
    pixels say nothing). ``shifts`` (B, 2) px: each object moved that much under the probe (refined scan
    positions, ``optics.moved_exit_wave``). ``background`` (N, N): a detector background b, incoherent with
    the wave, in amplitude units: the predicted amplitude is √(|Ψ|² + b²) (CDTools' quadratic background).
    """
    exit_wave = probe * obj if shifts is None else moved_exit_wave(obj, probe, shifts)
    predicted = propagator.amplitude(exit_wave).unsqueeze(1)
    if background is not None:
        predicted = torch.sqrt(predicted.square() + background.square())
    if kind == "mae":
        per_pixel = (predicted - amplitudes).abs()
    else:
        rate = (intensity_scale * predicted) ** 2
        per_pixel = F.poisson_nll_loss(rate, counts, log_input=False, full=False, eps=1e-8,
                                       reduction="none") / intensity_scale**2
    if good_pixels is None:
        return per_pixel.mean()
    good = good_pixels.to(per_pixel.device, per_pixel.dtype)
    return (per_pixel * good).sum() / (good.sum() * per_pixel[..., 0, 0].numel())


def probe_support(probe: torch.Tensor) -> torch.Tensor:
    """Where the probe illuminates the object enough to constrain it: |probe| > 10% of its maximum."""
    return probe.abs() > 0.1 * probe.abs().max()


def reconstruction_errors(pred: torch.Tensor, true: torch.Tensor, probe: torch.Tensor) -> dict[str, float]:
    """Amplitude and phase mean absolute errors inside the probe, after removing each patch's global phase.

    The global phase is unobservable in ptychography; it is removed per patch
    by the φ₀ that maximizes Re Σ true·conj(pred·e^{iφ₀}). Pixels count where
    the probe amplitude exceeds 10% of its maximum.
    """
    support = probe_support(probe)
    overlap = (true * pred.conj() * support).sum(dim=(-2, -1), keepdim=True)
    aligned = pred * torch.exp(1j * torch.angle(overlap))
    amp_err = (aligned.abs() - true.abs()).abs()[..., support]
    phase_diff = torch.angle(aligned * true.conj())[..., support]
    return {
        "amplitude_mae": amp_err.mean().item(),
        "phase_mae": phase_diff.abs().mean().item(),
        "phase_mae_fraction_of_pi": phase_diff.abs().mean().item() / math.pi,
    }
