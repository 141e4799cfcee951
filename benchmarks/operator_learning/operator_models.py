"""The models and inits that ``benchmarks.operator_tasks`` compares: neuraloperator's FNO and its three
factorized TFNOs, and this package's plain FNO stack (8 layers, no skip) and FFNO stack, each as an
operator u ↦ G(u) from one input channel to one output channel; and the inits, each a way to set a
built model's spectral weights.

``--modes M`` keeps the same frequencies in every model: neuraloperator's ``n_modes`` M per axis (|k| < M/2
on the full axes), this package's layers M // 2 (k in [−M/2, M/2) on the full axis, [0, M/2) on the halved one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from spectral_init import get_strategy, initialize_
from spectral_init.registry import check_gain, required_params

from .machinery.common import CALIBRATED, strategy_spec

__all__ = [
    "DEFAULT_INIT",
    "MODELS",
    "ModelSpec",
    "OperatorNet",
    "apply_init",
    "build_model",
    "init_label",
    "parse_init",
]

DEFAULT_INIT = "default"  # the model as its constructor leaves it


@dataclass(frozen=True)
class ModelSpec:
    """A model family: what it is, the spatial ranks it runs on, its activation (for edge-of-chaos)
    and what ``default`` means for it."""

    description: str
    dims: tuple[int, ...]
    activation: str
    default: str


MODELS: dict[str, ModelSpec] = {
    "fno": ModelSpec("neuraloperator FNO, dense weights, 4 layers", (1, 2), "gelu", "neuraloperator's init_std='auto'"),
    "tfno-tucker": ModelSpec("neuraloperator FNO, Tucker weights (rank 0.5), 4 layers", (1, 2), "gelu",
                             "neuraloperator's init_std='auto'"),
    "tfno-cp": ModelSpec("neuraloperator FNO, CP weights (rank 0.5), 4 layers", (1, 2), "gelu",
                         "neuraloperator's init_std='auto'"),
    "tfno-tt": ModelSpec("neuraloperator FNO, tensor-train weights (rank 0.5), 4 layers", (1, 2), "gelu",
                         "neuraloperator's init_std='auto'"),
    "plain-fno-8": ModelSpec("PlainFNOStack: 8 layers relu(spectral(h)), no skip, 1×1 lift and projection", (2,),
                             "relu", "legacy (the reference's hard-coded draw)"),
    "ffno": ModelSpec("the reference's FFNO stack: 4 gated residual blocks sharing one factorized layer, "
                      "1×1 lift and projection", (2,), "gelu", "ffno-reference (the reference's draw)"),
}
_OWN_DEFAULT = {"plain-fno-8": "legacy", "ffno": "ffno-reference"}  # ours: the reference's line, spelled out


class OperatorNet(nn.Module):
    """lift (1×1 conv) → ``body`` → project (1×1 conv). ``forward(x, **_)`` ignores the other entries of
    a neuraloperator ``Trainer`` sample (its ``y``), as neuraloperator's models do."""

    def __init__(self, body: nn.Module, width: int) -> None:
        super().__init__()
        self.lift = nn.Conv2d(1, width, 1)
        self.body = body
        self.project = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor, **_: Any) -> torch.Tensor:
        return self.project(self.body(self.lift(x)))


def build_model(name: str, dims: int, width: int, modes: int) -> nn.Module:
    """Model ``name`` for inputs (n, 1, s…) of ``dims`` spatial dimensions; its own init (``default``),
    drawn from torch's global RNG."""
    if dims not in MODELS[name].dims:
        raise ValueError(f"{name} runs on {' and '.join(f'{d}-D' for d in MODELS[name].dims)} inputs; got {dims}-D")
    if name.startswith(("fno", "tfno")):
        from neuralop.models import FNO

        kind = None if name == "fno" else name.removeprefix("tfno-")
        return FNO(n_modes=(modes,) * dims, hidden_channels=width, in_channels=1, out_channels=1, n_layers=4,
                   factorization=kind, rank=0.5)
    spec = {"strategy": _OWN_DEFAULT[name]}
    if name == "plain-fno-8":
        from ptycho_torch.generators.plain_fno import PlainFNOStack

        return OperatorNet(PlainFNOStack(width, 8, modes // 2, "relu", spectral_init=spec), width)
    from ptycho_torch.generators.ffno_bottleneck import build_no_refiner_ffno_stack

    return OperatorNet(build_no_refiner_ffno_stack(width, n_blocks=4, modes=modes // 2, spectral_init=spec), width)


def parse_init(text: str) -> tuple[str, float]:
    """``default``, ``calibrated``, a strategy name, or ``STRATEGY@GAIN`` → (canonical name, gain);
    a ValueError that says what is allowed otherwise."""
    name, _, gain_text = text.partition("@")
    gain = 1.0
    if gain_text:
        try:
            gain = check_gain(float(gain_text))  # the registry's own rule for a gain
        except ValueError:
            raise ValueError(f"{text!r}: the gain after '@' must be a finite number > 0") from None
    if name in (DEFAULT_INIT, CALIBRATED):
        if gain_text:
            raise ValueError(f"{text!r}: '{name}' takes no gain; write STRATEGY@GAIN, e.g. sqrt_in@0.1")
        return name, gain
    strategy = get_strategy(name)  # an unknown name: the registry's error, with a suggestion
    if required_params(strategy):
        raise ValueError(f"{text!r}: {strategy.name} needs {', '.join(required_params(strategy))}, which this "
                         "benchmark does not set (benchmarks.lr_transfer compares mup)")
    return strategy.name, gain


def init_label(name: str, gain: float) -> str:
    """How an init is named in reports and on the command line: the name, with ``@gain`` unless 1."""
    return name if gain == 1.0 else f"{name}@{gain:g}"


def apply_init(model: nn.Module, init: str, gain: float, seed: int, resolution: int, activation: str,
               first_batch: Callable[[], torch.Tensor]) -> None:
    """Set ``model``'s spectral weights as ``init`` says; ``calibrated`` rescales them on ``first_batch()``."""
    if init == DEFAULT_INIT:
        return
    initialize_(model, strategy_spec(init, seed, resolution, activation, gain),
                calibration_batch=first_batch() if init == CALIBRATED else None)
