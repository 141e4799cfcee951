"""Means with 95% confidence intervals over seeds, and paired-by-seed differences."""

from __future__ import annotations

import math
from collections.abc import Sequence


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (scipy.stats.t.ppf)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1; got {df}")
    from scipy.stats import t  # scipy is in the bench extra; imported here, where a CI is drawn (0.3 s)

    return float(t.ppf(0.975, df))


def mean_ci(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, sample std and the half-width of the t-based 95% CI (None for one value)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return {"n": n, "mean": mean, "std": std, "ci95": t_quantile_975(n - 1) * std / math.sqrt(n)}


def paired_difference(values: Sequence[float], baseline: Sequence[float]) -> dict[str, float | int | None]:
    """mean_ci of values[i] - baseline[i], the same seed i on both sides."""
    if len(values) != len(baseline):
        raise ValueError(f"paired samples differ in length: {len(values)} vs {len(baseline)}")
    return mean_ci([v - b for v, b in zip(values, baseline)])


def compare_strategies(
    per_seed: dict[str, dict[int, dict[str, float]]], metrics: Sequence[str], baseline: str
) -> dict[str, dict[str, dict[str, dict[str, float | int | None]] | None]]:
    """Per strategy: ``metrics`` as mean_ci over seeds, and paired differences to ``baseline``.

    ``per_seed[strategy][seed][metric]`` holds one run's value; differences pair
    the seeds both strategies ran (``vs_baseline`` is None for the baseline
    itself, or when it did not run).
    """
    out: dict[str, dict[str, dict[str, dict[str, float | int | None]] | None]] = {}
    base = per_seed.get(baseline)
    for strategy, by_seed in per_seed.items():
        seeds = sorted(by_seed)
        stats = {m: mean_ci([by_seed[s][m] for s in seeds]) for m in metrics}
        vs = None
        shared = [s for s in seeds if base is not None and s in base]
        if shared and strategy != baseline:  # no shared seed (runs that diverged): nothing to pair
            vs = {m: paired_difference([by_seed[s][m] for s in shared], [base[s][m] for s in shared]) for m in metrics}
        out[strategy] = {"metrics": stats, "vs_baseline": vs}
    return out
