"""Acceptance intervals for sample statistics, derived from their sampling distributions.

Each check accepts a correct implementation with probability at least 1 - ALPHA, ALPHA = 10⁻⁷,
split equally between the two tails. No example of the property suite makes more than 5 checks,
so its false-failure probability is at most 10⁻⁶ per example; a whole run makes a few thousand
checks, so a correct implementation fails a fresh random run (``dev`` profile) with probability
below 10⁻³, and the derandomized ``ci`` profile (fixed examples and seeds) either always passes or
always fails.

Circular complex normal, n i.i.d. elements with E|w|² = σ² (w = σ(a + ib)/√2, a, b ~ N(0, 1)):

- |w|²/σ² = (a² + b²)/2 ~ Exp(1), so S = n·mean|w|²/σ² ~ Gamma(n, 1) exactly. Accept S within
  [Q_n(ALPHA/2), Q_n(1 - ALPHA/2)], Q_n the Gamma(n, 1) quantile (bisection on
  ``torch.special.gammainc``). For n = 1 that is |w|²/σ² ∈ [5·10⁻⁸, 16.8]; for n = 10⁶ it is
  mean|w|²/σ² = 1 ± 0.0053. Small tensors get their own wide, still exact, interval.
- Re w ~ N(0, σ²/2): Σ(Re w)²/(σ²/2) ~ χ²_n = 2·Gamma(n/2, 1), so Σ(Re w)²/σ² ~ Gamma(n/2, 1); the
  same for Im w.
- mean(Re w) ~ N(0, σ²/(2n)) exactly: |mean| ≤ Z·σ/√(2n) with Z = Φ⁻¹(1 - ALPHA/2) = 5.33.
- Given Re w, Σ Re·Im ~ N(0, (σ²/2)·Σ Re²), because Im is independent of Re; so
  Σ Re·Im / √((σ²/2)·Σ Re²) ~ N(0, 1) exactly, accepted within ±Z. A real part that copies the
  imaginary one gives √(2·Σ Re²/σ²) ≈ √n instead.

Bounded draws (``uniform_parts``: Re, Im i.i.d. a·U[0, 1), E|w|² = 2a²/3): X = |w|² lies in
[0, 2a²] with mean μ = 2a²/3 and variance v = 2a⁴(1/5 - 1/9) = 8a⁴/45. Bernstein's inequality,
P(|X̄ - μ| ≥ t) ≤ 2·exp(-n·t² / (2v + 2bt/3)) with b = max|X - μ| = 4a²/3, holds for every n;
solved for t at ALPHA it gives the half-width (for large n about 1.1 times the CLT's Z·√(v/n)).
The same inequality bounds each part's mean (values in [0, a]: mean a/2, v = a²/12, b = a/2) and
each part's mean square about a/2 ((U - 1/2)² ∈ [0, 1/4]: mean 1/12, v = 1/80 - 1/144 = 1/180,
b = 1/6, scaled by a²).

Any other distribution (a plugin's own fill): only E|w|² is checked, by the studentized CLT — the
sample's own variance of |w|², Z standard errors, plus the rounding of |w|² in the weight's precision
(all that remains for a constant-modulus draw). That is approximate, so it needs n ≥ 1000.
"""

from __future__ import annotations

import functools
import math

import torch

from spectral_init.strategies.scaling import DISTRIBUTION_LABELS

ALPHA = 1e-7
Z = -torch.special.ndtri(torch.tensor(ALPHA / 2, dtype=torch.float64)).item()
LOG_TWO_OVER_ALPHA = math.log(2 / ALPHA)
STUDENTIZED_MIN_N = 1000


@functools.lru_cache(maxsize=4096)
def gamma_quantile(shape: float, p: float) -> float:
    """The p-quantile of Gamma(shape, 1), by bisection on the regularized incomplete gamma."""
    a = torch.tensor(shape, dtype=torch.float64)
    lo, hi = 0.0, shape + 60 * math.sqrt(shape) + 60
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if torch.special.gammainc(a, torch.tensor(mid, dtype=torch.float64)).item() < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def gamma_interval(shape: float) -> tuple[float, float]:
    return gamma_quantile(shape, ALPHA / 2), gamma_quantile(shape, 1 - ALPHA / 2)


def bernstein_halfwidth(n: int, variance: float, bound: float) -> float:
    """t with 2·exp(-n·t² / (2·variance + 2·bound·t/3)) = ALPHA: a quadratic in t."""
    lin = 2 * bound * LOG_TWO_OVER_ALPHA / 3
    return (lin + math.sqrt(lin * lin + 8 * n * variance * LOG_TWO_OVER_ALPHA)) / (2 * n)


def _values(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = weight.detach().to(torch.complex128).flatten()
    return w.real, w.imag


def _within(name: str, value: float, lo: float, hi: float, n: int) -> None:
    assert lo <= value <= hi, f"{name} = {value:.6g} outside [{lo:.6g}, {hi:.6g}] (n={n}, false-failure ≤ {ALPHA})"


class ComplexNormal:
    """Circular complex normal: exact Gamma, chi-square and normal intervals."""

    @staticmethod
    def check_second_moment(weight: torch.Tensor, expected: float) -> None:
        re, im = _values(weight)
        n = re.numel()
        lo, hi = gamma_interval(n)
        s = ((re.square() + im.square()).sum() / expected).item()
        _within("n·mean|w|²/E|w|²", s, lo, hi, n)

    @staticmethod
    def check_parts(weight: torch.Tensor, expected: float) -> None:
        re, im = _values(weight)
        n = re.numel()
        half = expected / 2
        lo, hi = gamma_interval(n / 2)
        for name, part in (("Re", re), ("Im", im)):
            _within(f"Σ({name} w)²/E|w|²", (part.square().sum() / expected).item(), lo, hi, n)  # Gamma(n/2, 1)
            _within(f"mean({name} w)/√(E|w|²/(2n))", part.mean().item() / math.sqrt(half / n), -Z, Z, n)
        cross = (re * im).sum().item() / math.sqrt(half * re.square().sum().item() + 1e-300)
        _within("Σ Re·Im / √((E|w|²/2)·Σ Re²)", cross, -Z, Z, n)


class UniformParts:
    """Re, Im i.i.d. a·U[0, 1): Bernstein intervals, valid for every n."""

    @staticmethod
    def check_second_moment(weight: torch.Tensor, expected: float) -> None:
        re, im = _values(weight)
        n = re.numel()
        a2 = 1.5 * expected  # E|w|² = 2a²/3
        t = bernstein_halfwidth(n, 8 * a2 * a2 / 45, 4 * a2 / 3)
        mean = (re.square() + im.square()).mean().item()
        _within("mean|w|²", mean, expected - t, expected + t, n)

    @staticmethod
    def check_parts(weight: torch.Tensor, expected: float) -> None:
        re, im = _values(weight)
        n = re.numel()
        a = math.sqrt(1.5 * expected)
        t_mean = bernstein_halfwidth(n, a * a / 12, a / 2)
        t_var = bernstein_halfwidth(n, a**4 / 180, a * a / 6)
        for name, part in (("Re", re), ("Im", im)):
            assert 0 <= part.min().item() and part.max().item() < a, f"{name} w outside [0, a), a={a:.6g}"
            _within(f"mean({name} w)", part.mean().item(), a / 2 - t_mean, a / 2 + t_mean, n)
            spread = (part - a / 2).square().mean().item()
            _within(f"mean(({name} w - a/2)²)", spread, a * a / 12 - t_var, a * a / 12 + t_var, n)


class Studentized:
    """A distribution the suite does not know: E|w|² by the CLT with the sample's own variance."""

    @staticmethod
    def check_second_moment(weight: torch.Tensor, expected: float) -> None:
        re, im = _values(weight)
        n = re.numel()
        assert n >= STUDENTIZED_MIN_N, f"the studentized check needs n ≥ {STUDENTIZED_MIN_N}; got {n}"
        sq = re.square() + im.square()
        # Z standard errors, plus the rounding of |w|² in the weight's own precision (≤ 2·eps relative
        # per element; 8·eps bounds the mean), which is all there is when |w| is constant
        half_width = Z * sq.std().item() / math.sqrt(n) + 8 * torch.finfo(weight.real.dtype).eps * expected
        _within("mean|w|²", sq.mean().item(), expected - half_width, expected + half_width, n)


FAMILIES = {
    DISTRIBUTION_LABELS["complex_normal"]: ComplexNormal,
    DISTRIBUTION_LABELS["uniform_parts"]: UniformParts,
}
BY_KEY = {"complex_normal": ComplexNormal, "uniform_parts": UniformParts}


def family(distribution_label: str) -> type[ComplexNormal] | type[UniformParts] | type[Studentized]:
    """The sampling family of a strategy, from its declared distribution label."""
    return FAMILIES.get(distribution_label, Studentized)


def assert_second_moment(weight: torch.Tensor, expected: float, distribution: str = "complex_normal") -> None:
    """Sample E|w|² against ``expected`` (``distribution``: ``complex_normal`` or ``uniform_parts``)."""
    BY_KEY[distribution].check_second_moment(weight, expected)
