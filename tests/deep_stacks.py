"""Depth-32 plain ReLU stacks of neuraloperator's layers, drawn and measured as benchmarks.signal_propagation
does, many seeds at a time; and the interval for the mean of such a ratio.

A stack's forward ratio is a product of 30 per-layer gains, so over draws it is close to log-normal (the
standard deviation of log at width 32: 0.88 forward, 0.77 for the backward second moment, over 1920 seeds).
The mean of a log-normal is exp(m + s²/2); Cox's method estimates log of it as m̂ + ŝ²/2 with standard error
√(ŝ²/n + ŝ⁴/(2(n-1))). Over 20 groups of 96 seeds (1920 in all) its studentized error had a standard
deviation of 1.0 for both ratios (mean -0.3 forward, -1.3 backward: the finite-width offset that callers
allow for); the plain t of the sample mean had 1.2, with tails to -4.1, since a sample without the rare
large draws has both a low mean and a low spread.
"""

from __future__ import annotations

import functools
import math
import statistics

import torch

# the benchmark's 1-D case: width 32, 128 points, n_modes 12 (7 kept frequencies), batch 2
CFG_1D = {"width": 32, "modes": 12, "size": 64, "batch": 2, "size_1d": 128, "modes_1d": 12}


@functools.lru_cache(maxsize=8)
def draws(model: str, strategy: str, seeds: int, cfg_items: tuple = tuple(CFG_1D.items())) -> tuple[tuple[float, ...],
                                                                                                     tuple[float, ...]]:
    """Per seed 0…seeds-1: the depth-32 stack's forward ratio E[z_L²]/E[z_2²] and backward ratio
    ‖∂L/∂h_2‖/‖∂L/∂h_L‖ (a ratio of norms, as the benchmark reports it)."""
    from benchmarks.signal_propagation import build, input_shape, measure, ratios

    cfg = dict(cfg_items)
    forward, backward = [], []
    for seed in range(seeds):
        net, layers = build(model, strategy, 32, seed, cfg)
        x = torch.randn(input_shape(model, cfg), generator=torch.Generator().manual_seed(10_007 + seed))
        f, b = ratios(measure(net, layers, x, seed))
        forward.append(f)
        backward.append(b)
    return tuple(forward), tuple(backward)


def log_mean_interval(values: list[float] | tuple[float, ...], z: float) -> tuple[float, float]:
    """Cox's interval (module docstring) for log E[X] from a sample of a log-normal X: (low, high)."""
    logs = [math.log(v) for v in values]
    n, m, s2 = len(logs), statistics.mean(logs), statistics.variance(logs)
    se = math.sqrt(s2 / n + s2 * s2 / (2 * (n - 1)))
    return m + s2 / 2 - z * se, m + s2 / 2 + z * se
