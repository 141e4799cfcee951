"""``WeightPlan``: one spectral weight as an adapter sees it — where it is, what it is, how to draw it.

Three ways a complex spectral weight is stored, one constructor each:

- ``dense_plan``: a complex parameter, written directly;
- ``real_view_plan``: a real parameter of shape (…, 2) holding real and imaginary
  parts (neuraloperator's legacy layers, PhysicsNeMo), written through
  ``torch.view_as_complex``, which shares its memory, so nothing is lost of the
  imaginary part;
- ``factorized_plan``: a tensorly-torch factorized tensor (dense, tucker, cp, tt),
  complex or stored as real views, whose factors are drawn so that every entry
  of the reconstructed weight has the strategy's E|w|².

Factorized weights. A factorized weight is a sum of ``T``-fold products of
independent tensors (tucker: core and one factor per mode; cp: one factor per
mode, with the cp weights λ set to 1; tt: one core per mode). Every entry of
the reconstructed dense weight is

    W[i] = Σ_{t ∈ terms} Π_{j=1..T} F_j[i, t]

where each term picks one entry from each tensor, and ``n_terms`` is the
number of terms: Π ranks for tucker (the core's size), the rank R for cp, and
Π of the inner ranks r_1…r_{d-1} for tt. Draw every F_j entry independently
from a circular complex normal with E|F_j|² = v. Two different terms differ in
at least one entry of some F_j, and those entries are independent with zero
mean, so the cross terms of |W[i]|² vanish in expectation:

    E|W[i]|² = Σ_terms Π_j E|F_j|² = n_terms · v^T

Choosing v = (target / n_terms)^(1/T) gives every reconstructed entry exactly
the strategy's E|w|² in expectation, for every shape and rank. (tltorch's own
``normal_`` divides a tt weight by the product of all ranks instead of taking
the T-th root of it, hence neuraloperator's tt init being far too small.) The
strategy's distribution is not kept for factorized weights, only its E|w|²:
the factors are always circular complex normal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..geometry import SpectralGeometry
from ..spectral_initializer import SpectralInitializer
from ..strategies.scaling import complex_normal_

__all__ = ["WeightPlan", "dense_plan", "factorized_plan", "real_view_plan"]

FACTORIZATIONS = ("dense", "tucker", "cp", "tt")


@dataclass
class WeightPlan:
    """One spectral weight of a model, as an adapter found it.

    ``targets`` are the complex tensors a draw writes (views share memory with
    ``owned``, the module parameters they live in); ``draw`` makes their new
    values without touching them; multiplying the ``scaled`` tensors by s
    multiplies the weight by s; ``dense()`` is the (reconstructed) complex weight.
    """

    name: str
    kind: str
    layout: str
    shape: tuple[int, ...]
    geometry: SpectralGeometry
    targets: list[torch.Tensor]
    owned: list[torch.Tensor]
    draw: Callable[[SpectralInitializer], list[torch.Tensor]]
    scaled: list[torch.Tensor]
    dense: Callable[[], torch.Tensor]
    adapter: str = ""  # set by discovery: the adapter that claimed it
    module: nn.Module | None = None  # set by discovery: the layer that holds it


def _complex_tensor_plan(name: str, kind: str, layout: str, tensor: torch.Tensor, owned: list[torch.Tensor],
                         geometry: SpectralGeometry) -> WeightPlan:
    """One complex tensor (a parameter, or a view sharing a parameter's memory) drawn by the strategy itself."""
    return WeightPlan(name, kind, layout, tuple(tensor.shape), geometry, [tensor], owned,
                      lambda init: [init.draft(tensor, geometry)], scaled=[tensor], dense=lambda: tensor.detach())


def dense_plan(name: str, kind: str, weight: torch.Tensor, geometry: SpectralGeometry) -> WeightPlan:
    """A complex parameter, written as it is."""
    return _complex_tensor_plan(name, kind, "dense complex", weight, [weight], geometry)


def real_view_plan(name: str, kind: str, weight: torch.Tensor, geometry: SpectralGeometry) -> WeightPlan:
    """A real parameter (…, 2) of real and imaginary parts, written through its complex view."""
    if weight.is_complex() or weight.ndim < 1 or weight.shape[-1] != 2:
        raise ValueError(f"{name}: a real view needs a real tensor whose last dimension is 2; "
                         f"got {weight.dtype} {tuple(weight.shape)}")
    return _complex_tensor_plan(name, kind, "real (…, 2) view", torch.view_as_complex(weight.detach()), [weight],
                                geometry)


def _factor_drafts(tensors: list[torch.Tensor], n_terms: int, target: float,
                   generator: torch.Generator | None) -> list[torch.Tensor]:
    """Circular normal drafts with E|F|² = (target / n_terms)^(1/T) each (derivation in the module docstring)."""
    per_tensor = (target / n_terms) ** (1.0 / len(tensors))
    return [complex_normal_(torch.empty(t.shape, dtype=t.dtype), per_tensor, generator) for t in tensors]


def factorization_of(weight: nn.Module) -> str:
    """``dense``, ``tucker``, ``cp`` or ``tt`` for a tensorly-torch factorized tensor (complex or not)."""
    return type(weight).__name__.removeprefix("Complex").removesuffix("Tensor").lower()


def factorized_plan(name: str, kind: str, weight: nn.Module, geometry: SpectralGeometry) -> WeightPlan:
    """A tensorly-torch factorized tensor: dense, tucker, cp or tt, complex or stored as real views.

    Its ``tensor``, ``core``, ``factors`` and ``weights`` are complex tensors (views of real
    parameters for tltorch's ``Complex*`` classes); drafts are written into those.
    """
    factorization = factorization_of(weight)
    owned = list(weight.parameters())
    real_views = bool(owned) and not owned[0].is_complex()
    layout = f"{factorization}{' (real (…, 2) views)' if real_views else ''}"
    if factorization == "dense":
        return _complex_tensor_plan(f"{name}.tensor", kind, layout, weight.tensor, owned, geometry)
    if factorization == "tucker":
        tensors, n_terms, fixed = [weight.core, *weight.factors], math.prod(weight.core.shape), []
    elif factorization == "cp":
        tensors, n_terms, fixed = list(weight.factors), int(weight.weights.numel()), [weight.weights]
    elif factorization == "tt":
        tensors = list(weight.factors)
        n_terms, fixed = math.prod(int(f.shape[0]) for f in tensors[1:]), []
    else:
        raise ValueError(f"{name}: factorized weight {type(weight).__name__} is not one of "
                         f"{', '.join(FACTORIZATIONS)}")

    def draw(init: SpectralInitializer) -> list[torch.Tensor]:
        drafts = _factor_drafts(tensors, n_terms, init.second_moment(geometry), init.generator)
        return drafts + [torch.ones(t.shape, dtype=t.dtype) for t in fixed]  # cp's λ = 1

    return WeightPlan(name, kind, layout, tuple(weight.shape), geometry, tensors + fixed, owned, draw,
                      scaled=tensors[:1], dense=lambda: weight.to_tensor().detach())
