"""The spectral layer of Li et al.'s original FNO code, copied into many repositories, and PhysicsNeMo's.

Recognized by its attributes and parameters, not its class: ``in_channels``, ``out_channels``,
``modes1`` … ``modes<d>`` (integers) and exactly the parameters ``weights1`` … ``weights<2^(d-1)>``,
each of shape (in, out, modes1, …, modes<d>) complex (Li et al.: ``scale * torch.rand(…,
dtype=torch.cfloat)``) or (in, out, modes1, …, modes<d>, 2) real (NVIDIA PhysicsNeMo's
``SpectralConv1d`` … ``SpectralConv4d``, read through ``torch.view_as_complex``). A module
with more ``weights<k>`` than its modes call for is left to the strict check: its layout is unknown.

Geometry: each ``weights<k>`` multiplies one corner of the kept frequencies (both signs on the first
d-1 axes, the non-negative half on the last), so the 2^(d-1) weights are disjoint blocks of one
operator, not summed branches: in and out channels, one branch, kept modes
(2·modes1, …, 2·modes<d-1>, modes<d>). Their own draw, 1/(in·out)·U[0,1) in real and imaginary
parts, is the ``fno-uniform`` strategy.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..geometry import SpectralGeometry, both_signs_but_last
from .plan import WeightPlan, dense_plan, real_view_plan
from .registry import register_layer_adapter

__all__: list[str] = []


def _mode_counts(module: nn.Module) -> list[int]:
    counts, d = [], 1
    while isinstance(value := getattr(module, f"modes{d}", None), int) and not isinstance(value, bool):
        counts.append(value)
        d += 1
    return counts


def _weights(module: nn.Module) -> list[tuple[str, torch.Tensor]] | None:
    """The ``weights<k>`` parameters in order when the module has the Li et al. layout, else None."""
    in_ch, out_ch = getattr(module, "in_channels", None), getattr(module, "out_channels", None)
    modes = _mode_counts(module)
    if not (isinstance(in_ch, int) and isinstance(out_ch, int) and modes):
        return None
    own = dict(module.named_parameters(recurse=False))
    expected = [f"weights{k}" for k in range(1, 2 ** (len(modes) - 1) + 1)]
    if any(n not in own for n in expected) or f"weights{len(expected) + 1}" in own:
        return None
    shape = (in_ch, out_ch, *modes)
    weights = [own[n] for n in expected]
    if all(p.is_complex() and tuple(p.shape) == shape for p in weights):
        return list(zip(expected, weights))
    if all(p.is_floating_point() and tuple(p.shape) == (*shape, 2) for p in weights):
        return list(zip(expected, weights))
    return None  # another shape, or complex and real weights mixed: an unknown layout


def _plan(name: str, module: nn.Module) -> list[WeightPlan]:
    weights = _weights(module)
    if weights is None:
        raise ValueError(f"{name or type(module).__name__}: not a Li et al. layer (in_channels, out_channels, "
                         "modes1…, weights1…)")
    modes = _mode_counts(module)
    geometry = SpectralGeometry(int(module.in_channels), int(module.out_channels), branches=1,
                                modes=both_signs_but_last(tuple(modes)), layer_modes=both_signs_but_last)
    prefix = f"{name}." if name else ""
    layout = "complex" if weights[0][1].is_complex() else "real (…, 2) view"
    kind = f"Li et al. {type(module).__name__} ({layout})"
    make = dense_plan if weights[0][1].is_complex() else real_view_plan
    return [make(prefix + n, kind, p, geometry) for n, p in weights]


register_layer_adapter(
    "li-fno", package="Li et al. FNO code and its copies; NVIDIA PhysicsNeMo", layout="complex, or real (…, 2) "
    "views; one weight per corner", matches=lambda m: _weights(m) is not None, plan=_plan,
    description="The original FNO layer SpectralConv1d/2d/3d(in_channels, out_channels, modes1, …) with weights1 "
    "… weights<2^(d-1)>, complex or as PhysicsNeMo's real (…, 2) views, in any dimension.",
)
