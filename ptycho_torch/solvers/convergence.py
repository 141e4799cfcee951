"""An iterative reconstruction run until its object stops improving: the anchor a learned reconstruction is
measured against is only an anchor when converged.

Each object is solved by rPIE (``solvers.pie``), scored against the truth (``evaluation``: the stitched
object, phase offset and plane removed, SSIM of amplitude and phase) after each of ``checkpoints``
iterations, and stopped at the first checkpoint where neither SSIM changed by more than ``tolerance``
since the previous one. The scoring is not timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.dataset import PtychoDataset
from ..evaluation import StitchedObject, evaluate_objects, reconstruction_metrics
from ..scan.placement import PatchPlacement
from .pie import DEFAULT_ALPHA, rpie_object

__all__ = ["CHECKPOINTS", "TOLERANCE", "ConvergedSolve", "converge", "has_converged", "object_ssim",
           "solve_to_convergence", "stitched_ssim"]

CHECKPOINTS = (25, 50, 100, 200, 400, 800, 1000)
TOLERANCE = 0.002  # SSIM: below this change between checkpoints the object counts as converged


@dataclass
class ConvergedSolve:
    """The solver's object windows at the data's positions (as a generator's patches, for the same
    scoring), the iterations it took, its time per object, and its SSIM at every checkpoint."""

    patches: torch.Tensor  # (n, N, N) complex64
    iterations: int
    converged: bool  # False: the last checkpoint was reached still changing
    seconds_per_object: float
    history: list[dict[str, Any]] = field(default_factory=list)  # iterations, ssim_amp, ssim_phase, seconds


def object_ssim(patches: torch.Tensor, data: PtychoDataset) -> dict[str, float | None]:
    """The SSIM of amplitude and phase of the objects stitched from ``patches`` against ``data``'s truth
    (``evaluation``: offset and plane removed; the mean over objects), as ``ssim_amp`` and ``ssim_phase``."""
    return stitched_ssim(evaluate_objects(patches, data))


def stitched_ssim(objects: Sequence[StitchedObject]) -> dict[str, float | None]:
    """``object_ssim`` of objects already stitched and scored (``evaluation.evaluate_objects``)."""
    scores = reconstruction_metrics(objects)
    return {"ssim_amp": scores["ssim_amp"], "ssim_phase": scores["ssim_phase"]}


def has_converged(history: Sequence[dict[str, Any]], tolerance: float = TOLERANCE) -> bool:
    """Whether neither SSIM (``ssim_amp``, ``ssim_phase``) changed by ``tolerance`` or more between the
    last two checkpoints of ``history``."""
    return len(history) > 1 and all(abs(history[-1][key] - history[-2][key]) < tolerance
                                    for key in ("ssim_amp", "ssim_phase"))


def _windows(objects: list[torch.Tensor], data: PtychoDataset) -> torch.Tensor:
    n = data.probe.shape[-1]
    patches = torch.empty(len(data), n, n, dtype=torch.complex64)
    for k, obj in enumerate(objects):
        indices = torch.nonzero(data.object_ids == k).flatten()
        placement = PatchPlacement(data.positions_of(indices), data.canvas, n)
        patches[indices] = placement.extract(obj).to(torch.complex64)
    return patches


def converge(data: PtychoDataset, advance: Callable[[int], list[torch.Tensor]],
             checkpoints: Sequence[int] = CHECKPOINTS, tolerance: float = TOLERANCE) -> ConvergedSolve:
    """Any solver to convergence: ``advance(k)`` runs it ``k`` iterations further and returns its objects
    (one canvas per object of ``data``, which must carry the truth); they are scored after each of
    ``checkpoints`` iterations, and the solve stops where neither SSIM changed by ``tolerance``. Only
    ``advance`` is timed."""
    if data.objects is None:
        raise ValueError("convergence is judged by SSIM against the truth: the data carry none")
    if not checkpoints or list(checkpoints) != sorted(set(checkpoints)) or checkpoints[0] < 1:
        raise ValueError(f"checkpoints must be increasing iteration counts >= 1; got {list(checkpoints)}")
    count = int(data.object_ids.max()) + 1
    done, seconds, history = 0, 0.0, []
    for at in checkpoints:
        start = time.perf_counter()
        objects = advance(at - done)
        seconds += time.perf_counter() - start
        done = at
        patches = _windows(objects, data)
        scores = object_ssim(patches, data)
        if scores["ssim_amp"] is None or scores["ssim_phase"] is None:
            raise ValueError("the solved objects cannot be scored (no SSIM box inside the probe's support)")
        history.append({"iterations": at, **scores, "seconds_per_object": seconds / count})
        if has_converged(history, tolerance):
            return ConvergedSolve(patches, at, True, seconds / count, history)
    return ConvergedSolve(patches, done, False, seconds / count, history)


def checked_starts(data: PtychoDataset, starts: Sequence[torch.Tensor] | None) -> int:
    """The number of objects in ``data``, once ``starts`` (None, or one canvas per object) is checked to fit
    them; else ValueError naming the count and canvas a solver's starts must have."""
    count = int(data.object_ids.max()) + 1
    if starts is not None and (len(starts) != count or any(tuple(o.shape) != tuple(data.canvas) for o in starts)):
        raise ValueError(f"starts must be {count} objects of {data.canvas[0]} × {data.canvas[1]} px")
    return count


def solve_to_convergence(data: PtychoDataset, checkpoints: Sequence[int] = CHECKPOINTS,
                         tolerance: float = TOLERANCE, alpha: float = DEFAULT_ALPHA, seed: int = 0,
                         starts: Sequence[torch.Tensor] | None = None) -> ConvergedSolve:
    """Every object of ``data`` (which must carry the truth) by rPIE to convergence (``converge``), from
    ``starts`` (one canvas per object, e.g. a generator's stitched objects) or a flat start (1 everywhere)."""
    count = checked_starts(data, starts)
    objects = ([torch.ones(data.canvas, dtype=torch.complex64) for _ in range(count)] if starts is None
               else [o.to(torch.complex64).clone() for o in starts])
    done = 0

    def advance(iterations: int) -> list[torch.Tensor]:
        nonlocal objects, done
        done += iterations
        # the seed of a stretch: its object and where it ends, so that a solve is reproducible stretch by stretch
        objects = [rpie_object(data, k, iterations, alpha=alpha, start=obj, seed=seed + 7919 * done + k)
                   for k, obj in enumerate(objects)]
        return objects

    return converge(data, advance, checkpoints, tolerance)
