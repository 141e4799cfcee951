"""The parametric core: E|w|² = scale · gain² / fan, drawn from one distribution.

Every built-in strategy is a preset of this core, in the spirit of JAX's
``variance_scaling``. The fans are channel counts only: a spectral weight of
shape (in, out, modes…) maps in→out separately at each retained mode, so the
number of modes never enters the fan (unlike ``torch.nn.init``'s fan logic,
which multiplies by the trailing dimensions and reads dim 1 as fan_in).
Summed branches do enter it: with b independent spectral branches added into
one output (``SpectralGeometry.branches``), fan_in = b·in and fan_out = b·out,
so a variance-preserving draw stays variance-preserving on every layer kind.
The literal reproductions of reference code (fan ``in_out_squared``) do not
count branches: they copy a formula, not a principle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import torch

from ..geometry import SpectralGeometry

__all__ = [
    "DISTRIBUTION_LABELS",
    "Distribution",
    "FanMode",
    "VarianceScaling",
    "complex_normal_",
    "uniform_parts_",
]

_FANS: dict[str, tuple[Callable[[int, int, int], float], str]] = {
    # name: (fan(in, out, branches), denominator as printed in the E|w|² formula)
    "in": (lambda i, o, b: float(b * i), "(b·in)"),
    "out": (lambda i, o, b: float(b * o), "(b·out)"),
    "avg": (lambda i, o, b: b * (i + o) / 2.0, "(b·(in+out))"),
    "in_out_squared": (lambda i, o, b: float(i * o) ** 2, "(in·out)²"),
    # each branch drawn as if it were alone: the reference factorized layer's 1/√channels
    "in_per_branch": (lambda i, o, b: float(i), "in"),
}
# The names exist once, as the tables' keys; the Literals are built from them for pydantic and the docs.
FanMode = Literal[tuple(_FANS)]  # type: ignore[valid-type]


def complex_normal_(
    weight: torch.Tensor, second_moment: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill ``weight`` with a circular complex normal of E|w|² = ``second_moment``.

    Real and imaginary parts are independent N(0, second_moment/2); the modulus
    is Rayleigh and the phase uniform. ``Tensor.normal_(0, s)`` on a complex
    tensor already draws E|w|² = s², so s = √second_moment. Like ``torch.nn.init``'s
    fills it runs under ``no_grad``, so it fills an ``nn.Parameter`` too.
    """
    with torch.no_grad():
        return weight.normal_(0.0, math.sqrt(second_moment), generator=generator)


def uniform_parts_(
    weight: torch.Tensor, second_moment: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill real and imaginary parts each with a·U[0, 1), where E|w|² = 2a²/3.

    This is the reference FNO code's ``scale * torch.rand(cfloat)``: its mean is
    a(1+i)/2, not zero, and each part has variance a²/12. Runs under ``no_grad``.
    """
    amplitude = math.sqrt(1.5 * second_moment)
    with torch.no_grad():
        torch.view_as_real(weight).uniform_(0.0, amplitude, generator=generator)
    return weight


_DISTRIBUTIONS: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
    # name: (in-place sampler with the given E|w|², label for listings)
    "complex_normal": (complex_normal_, "circular complex normal"),
    "uniform_parts": (uniform_parts_, "Re, Im each a·U[0,1), nonzero mean"),
}
Distribution = Literal[tuple(_DISTRIBUTIONS)]  # type: ignore[valid-type]
DISTRIBUTION_LABELS: dict[str, str] = {name: label for name, (_, label) in _DISTRIBUTIONS.items()}


def _coefficient_text(value: float) -> str:
    frac = Fraction(value).limit_denominator(1000)
    if frac == 1:
        return ""
    if frac.denominator == 1:
        return f"{frac.numerator}·"
    return f"({frac.numerator}/{frac.denominator})·"


@dataclass(frozen=True)
class VarianceScaling:
    """E|w|² = ``scale`` · gain² / fan, sampled from ``distribution``.

    ``fan``, with b summed branches (``SpectralGeometry.branches``, 1 when no
    geometry is given): ``in`` → b·in, ``out`` → b·out, ``avg`` → b·(in+out)/2,
    ``in_out_squared`` → (in·out)² (the reference code's 1/(in·out) std, b
    never counted), ``in_per_branch`` → in (b never counted).
    """

    scale: float
    fan: FanMode
    distribution: Distribution

    def __post_init__(self) -> None:
        if self.fan not in _FANS:
            raise ValueError(f"fan must be one of {list(_FANS)}; got {self.fan!r}")
        if self.distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {list(_DISTRIBUTIONS)}; got {self.distribution!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a finite number > 0; got {self.scale!r}")

    def second_moment(
        self, in_channels: int, out_channels: int, gain: float, *, geometry: SpectralGeometry | None = None
    ) -> float:
        fan, _ = _FANS[self.fan]
        branches = 1 if geometry is None else geometry.branches
        return self.scale * gain * gain / fan(in_channels, out_channels, branches)

    def fill(
        self,
        weight: torch.Tensor,
        *,
        in_channels: int,
        out_channels: int,
        gain: float,
        generator: torch.Generator | None,
        geometry: SpectralGeometry | None = None,
    ) -> torch.Tensor:
        target = self.second_moment(in_channels, out_channels, gain, geometry=geometry)
        sampler, _ = _DISTRIBUTIONS[self.distribution]
        return sampler(weight, target, generator)

    @property
    def formula(self) -> str:
        """E|w|² as text, e.g. ``2·gain²/(b·(in+out))``; b is the number of summed branches."""
        _, denominator = _FANS[self.fan]
        # avg's fan is (in+out)/2, so its printed denominator carries a factor 2.
        coefficient = self.scale * (2 if self.fan == "avg" else 1)
        return f"{_coefficient_text(coefficient)}gain²/{denominator}"

    @property
    def distribution_label(self) -> str:
        return DISTRIBUTION_LABELS[self.distribution]
