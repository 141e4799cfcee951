"""Which adapter claims which weight of a model, and which parameters look spectral but are unclaimed.

Modules are visited in ``named_modules()`` order; each is offered to the adapters in
registration order and the first that matches plans its weights. A weight whose
parameters were all claimed already (a shared layer under a second name, or a
neuraloperator layer inside a wrapper that lists it) is not planned twice.

A parameter is *unclaimed spectral-looking* when no plan owns it and it is

- complex, anywhere in the model; or
- real, of rank ≥ 3 with a last dimension of 2 (real and imaginary parts), held by a
  module that is not one of torch.nn's own (a Conv2d kernel of width 2 is not spectral),
  on a path from the model down to it that passes a module whose class name contains
  "Spectral" or "Fourier" (any case).

``initialize_`` refuses such parameters under ``strict`` (and a model with no spectral
weight at all) before anything changes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .plan import WeightPlan
from .registry import ADAPTERS

__all__ = ["find_spectral_weights", "looks_spectral"]

_SPECTRAL_WORDS = ("spectral", "fourier")


def _is_torch_nn_module(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.")


def looks_spectral(param: torch.Tensor, owner: nn.Module, path: list[nn.Module]) -> bool:
    """Whether an unclaimed ``param`` held by ``owner`` (``path``: the modules from the model down) looks spectral."""
    if param.is_complex():
        return True
    if param.ndim < 3 or param.shape[-1] != 2 or not param.is_floating_point() or _is_torch_nn_module(owner):
        return False
    return any(word in type(m).__name__.lower() for m in path for word in _SPECTRAL_WORDS)


def find_spectral_weights(model: nn.Module) -> tuple[list[WeightPlan], list[tuple[str, torch.Tensor]]]:
    """Every claimed spectral weight once, in module order, and the unclaimed spectral-looking parameters."""
    adapters = ADAPTERS.items()
    plans: list[WeightPlan] = []
    covered: set[int] = set()
    modules = dict(model.named_modules())
    for mod_name, mod in modules.items():
        adapter = next((a for a in adapters if a.matches(mod)), None)
        if adapter is None:
            continue
        for plan in adapter.plan(mod_name, mod):
            if all(id(p) in covered for p in plan.owned):
                continue
            covered.update(id(p) for p in plan.owned)
            plan.adapter, plan.module = adapter.name, mod
            plans.append(plan)
    unclaimed, seen = [], set(covered)
    for mod_name, mod in modules.items():
        parts = mod_name.split(".") if mod_name else []
        path = [modules[".".join(parts[:i])] for i in range(len(parts) + 1)]
        for rel, param in mod.named_parameters(recurse=False):
            if id(param) not in seen and looks_spectral(param, mod, path):
                unclaimed.append((f"{mod_name}.{rel}" if mod_name else rel, param))
            seen.add(id(param))
    return plans, unclaimed
