"""Sampling-distribution tolerances for sample means of |w|².

For n i.i.d. elements with E|w|² = m and Var|w|² = v, the sample mean of |w|²
has standard deviation √(v/n). With z = 6 standard deviations, the CLT gives a
two-sided false-failure probability of about 2·10⁻⁹ per check.

- circular complex normal: |w|²/m ~ Exp(1), so v = m² and the relative std is 1/√n.
- ``uniform_parts`` (Re, Im each a·U[0,1), m = 2a²/3): Var(U²) = 1/5 - 1/9 = 4/45,
  so v = 8a⁴/45 = (2/5)·m² and the relative std is √(2/5)/√n.
"""

from __future__ import annotations

import math

import torch

Z = 6.0
RELATIVE_VARIANCE = {"complex_normal": 1.0, "uniform_parts": 0.4}


def assert_second_moment(weight: torch.Tensor, expected: float, distribution: str = "complex_normal") -> None:
    n = weight.numel()
    sample = (weight.abs().double() ** 2).mean().item()
    tol = Z * math.sqrt(RELATIVE_VARIANCE[distribution] / n)
    assert abs(sample / expected - 1) <= tol, (
        f"sample E|w|² {sample:.6g} vs expected {expected:.6g}: relative error "
        f"{sample / expected - 1:+.4f} beyond {tol:.4f} (n={n})"
    )
