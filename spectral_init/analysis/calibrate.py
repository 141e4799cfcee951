"""``calibrate_(model, batch)``: rescale each spectral layer so its output has a target second moment.

Layer-sequential unit-variance calibration (LSUV, Mishkin & Matas 2016) for spectral layers: walk the
layers in the order the forward pass first calls them and multiply each one's weights by
s = √(target / E[y²]), E[y²] the mean square of its output on ``batch`` with every earlier layer already
calibrated. A spectral layer is linear in its weights, so one rescaling gives the target; one with a
bias (neuraloperator's) is rescaled again until within a relative 1e-5 (at most 20 times). A layer
shared by several blocks is calibrated once, at its first call. Works on every layer kind
a layer adapter recognizes (for a factorized neuraloperator weight one factor carries the scale).

``target``: a number (default 1, unit pre-activation second moment), or a function
``(layer, layer_input) -> float`` (e.g. a local branch's second moment on the same input, to balance
the two branches: ``ptycho_torch.diagnostics.local_branch_target``).

Before anything runs, the batch is checked (non-empty, finite); the model is run in eval mode with
gradients off and the global RNG state restored afterwards; on any failure (the model rejects the
batch, a layer outputs only zeros, a non-finite scale) every weight is restored and a ValueError says
what went wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..adapters.discovery import find_spectral_weights

__all__ = ["CalibratedLayer", "CalibrationReport", "calibrate_"]

Target = float | Callable[[nn.Module, torch.Tensor], float]

_RELATIVE_TOLERANCE = 1e-5
_MAX_STEPS = 20


@dataclass(frozen=True)
class CalibratedLayer:
    """One layer: its qualified name, kind, output second moment before, and the scale applied."""

    name: str
    kind: str
    second_moment_before: float
    target: float
    scale: float


@dataclass
class CalibrationReport:
    layers: list[CalibratedLayer] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"calibrated {len(self.layers)} spectral layers"]
        for layer in self.layers:
            lines.append(f"  {layer.name:<40} E[y²] {layer.second_moment_before:.4g} → {layer.target:.4g} "
                         f"(scale {layer.scale:.4g})")
        return "\n".join(lines)


class _FirstCall:
    """Forward hooks keeping each watched module's first input and output of one pass."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.order: list[int] = []
        self._handles = [m.register_forward_hook(self._keep) for m in modules]

    def _keep(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if id(module) not in self.seen:
            self.seen[id(module)] = (inputs[0].detach(), output.detach())
            self.order.append(id(module))

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def _check_batch(batch: torch.Tensor) -> None:
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"calibrate_ takes a tensor batch; got {type(batch).__name__}")
    if batch.numel() == 0:
        raise ValueError(f"calibrate_ needs a non-empty batch; got shape {tuple(batch.shape)}")
    if batch.is_floating_point() or batch.is_complex():
        if not bool(torch.isfinite(batch).all()):
            raise ValueError("calibrate_ needs a finite batch; it holds NaN or inf")


def _run(model: nn.Module, batch: torch.Tensor, modules: list[nn.Module]) -> _FirstCall:
    capture = _FirstCall(modules)
    try:
        model(batch)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model on the batch
        raise ValueError(f"calibrate_: the model rejected the batch of shape {tuple(batch.shape)}: "
                         f"{type(exc).__name__}: {exc}") from exc  # the traceback keeps where it failed
    finally:
        capture.close()
    return capture


def _affine_scale(model: nn.Module, batch: torch.Tensor, layer: nn.Module, key: int, tensors: list[torch.Tensor],
                  goal: float, output: torch.Tensor) -> float:
    """The factor s on ``tensors`` that gives the layer output y(s) = s·u + b second moment ``goal``, with
    b the output with those tensors zeroed and u = y(1) − b: the root of E[u²]s² + 2E[ub]s + E[b²] = goal.

    Where the layer is linear (b = 0) this is √(goal / E[y²]). The ratio alone is not enough beside a
    bias: near the target each such step removes only the weights' share of the error, so a layer whose
    output is mostly bias would need hundreds of steps. Falls back to the ratio where no positive root
    exists (the bias alone exceeds the target in the weights' direction). ``output``: y(1), in float64."""
    kept = [t.detach().clone() for t in tensors]
    try:
        for t in tensors:
            t.zero_()
        bias = _run(model, batch, [layer]).seen[key][1].double()
    finally:
        for t, value in zip(tensors, kept):
            t.copy_(value)
    weights = output - bias
    a, c, b = weights.square().mean().item(), (weights * bias).mean().item(), bias.square().mean().item()
    discriminant = c * c - a * (b - goal)
    if a > 0 and discriminant >= 0:
        root = (-c + math.sqrt(discriminant)) / a
        if root > 0:
            return root
    return math.sqrt(goal / output.square().mean().item())


def calibrate_(model: nn.Module, batch: torch.Tensor, *, target: Target = 1.0) -> CalibrationReport:
    """Rescale every spectral layer of ``model``, in forward order, to output second moment ``target``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"calibrate_ takes a torch.nn.Module; got {type(model).__name__}")
    _check_batch(batch)
    if not callable(target) and not (isinstance(target, (int, float)) and not isinstance(target, bool)
                                     and math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a finite number > 0 or a function (layer, input) -> float; got {target!r}")
    planned, _ = find_spectral_weights(model)
    by_module: dict[int, list] = {}
    for item in planned:
        by_module.setdefault(id(item.module), []).append(item)
    if not by_module:
        raise ValueError("calibrate_: the model has no spectral layer this package knows")
    modules = {id(items[0].module): items[0].module for items in by_module.values()}
    names = {id(m): n for n, m in model.named_modules() if id(m) in modules}
    saved = [(t, t.detach().clone()) for items in by_module.values() for item in items for t in item.scaled]
    was_training = model.training
    report = CalibrationReport()
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            order = _run(model, batch, list(modules.values())).order
            for key in order:
                layer, items = modules[key], by_module[key]
                name = names[key] or type(layer).__name__
                layer_input, output = _run(model, batch, [layer]).seen[key]
                goal = float(target(layer, layer_input)) if callable(target) else float(target)
                if not (math.isfinite(goal) and goal > 0):
                    raise ValueError(f"calibrate_: the target for {name!r} is {goal}; it must be finite and > 0")
                output = output.double()
                before = current = output.square().mean().item()
                total = 1.0
                # one step is exact for a layer affine in its scaled tensors (a bias, as neuraloperator's,
                # included); further steps serve layers that are not (a factorization scaled in one factor is)
                for _ in range(_MAX_STEPS):
                    if not (math.isfinite(current) and current > 0):
                        raise ValueError(f"calibrate_: spectral layer {name!r} outputs "
                                         f"{'only zeros' if current == 0 else current} on this batch, so no scale "
                                         "can reach the target")
                    if abs(current / goal - 1) <= _RELATIVE_TOLERANCE:
                        break
                    scale = _affine_scale(model, batch, layer, key, [t for item in items for t in item.scaled],
                                          goal, output)
                    for item in items:
                        for tensor in item.scaled:
                            tensor.mul_(scale)
                    total *= scale
                    output = _run(model, batch, [layer]).seen[key][1].double()
                    current = output.square().mean().item()
                else:
                    raise ValueError(f"calibrate_: spectral layer {name!r} did not reach E[y²] = {goal:.4g} in "
                                     f"{_MAX_STEPS} rescalings (now {current:.4g}): its output hardly depends on "
                                     "its spectral weights")
                report.layers.append(CalibratedLayer(name, items[0].kind, before, goal, total))
    except BaseException:
        with torch.no_grad():
            for tensor, value in saved:
                tensor.copy_(value)
        raise
    finally:
        model.train(was_training)
    return report
