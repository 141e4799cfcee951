"""How much each block's spectral branch carries next to the local branch it is added to.

A ``PtychoBlock`` adds spectral(x) to a 3×3 conv of x. An FFNO block adds
spectral(x) to its optional ``local_conv``(x); without one, its spectral
update is compared with the residual stream x it is added to, and its "local
weight" is the 1×1 ``expand`` that every update passes through. The branch
outputs are recomputed from each block's captured input, so a spectral layer
shared by several blocks is seen once per block.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from .generators.blocks import PtychoBlock
from .generators.ffno_bottleneck import FactorizedFfnoBlock
from .physics import probe_support, to_complex_object

__all__ = ["BranchCapture", "centre_disc", "dc_centre_concentration", "dc_response", "local_branch_target",
           "local_weight", "spectral_blocks", "spectral_participation", "spectral_weights_of"]

SpectralBlock = PtychoBlock | FactorizedFfnoBlock


def spectral_blocks(model: nn.Module) -> list[SpectralBlock]:
    """The model's PtychoBlocks and FFNO blocks in forward order (DDP wrappers included)."""
    return [m for m in model.modules() if isinstance(m, (PtychoBlock, FactorizedFfnoBlock))]


def _branches(block: SpectralBlock) -> tuple[nn.Module, nn.Module]:
    if isinstance(block, PtychoBlock):
        return block.spectral, block.local_conv
    return block.shared_spectral, block.local_conv if block.local_conv is not None else nn.Identity()


def local_weight(block: SpectralBlock) -> torch.Tensor:
    """The local weight whose gradient is compared with the spectral ones'."""
    if isinstance(block, PtychoBlock):
        return block.local_conv.weight
    return (block.local_conv if block.local_conv is not None else block.expand).weight


def spectral_weights_of(block: SpectralBlock) -> list[torch.Tensor]:
    """The complex weights of the block's spectral branch."""
    spectral, _ = _branches(block)
    return [p for p in spectral.parameters() if p.is_complex()]


def local_branch_target(model: nn.Module) -> Callable[[nn.Module, torch.Tensor], float]:
    """A ``calibrate_`` target that balances each block's spectral branch with its local branch.

    For a spectral layer inside a PtychoBlock (or an FFNO block), the target is the second moment
    of the branch it is added to — the 3×3 conv (or ``local_conv``, else the residual input) — on
    the same input, so both branches start at one scale.
    """
    local_of = {}
    for block in spectral_blocks(model):
        spectral, local = _branches(block)
        local_of.setdefault(id(spectral), local)

    def target(layer: nn.Module, layer_input: torch.Tensor) -> float:
        if id(layer) not in local_of:
            raise ValueError(f"{type(layer).__name__} is in no block with a local branch to balance against")
        return local_of[id(layer)](layer_input).double().square().mean().item()

    return target


class BranchCapture:
    """Forward hooks that keep, per block, its input and output; branch outputs recomputed on demand."""

    def __init__(self, blocks: list[SpectralBlock]) -> None:
        self.blocks = blocks
        self.inputs: dict[int, torch.Tensor] = {}
        self.outputs: dict[int, torch.Tensor] = {}
        self._handles = [block.register_forward_hook(self._keeper(i)) for i, block in enumerate(blocks)]
        self.n_blocks = len(blocks)

    def _keeper(self, index: int):
        def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self.inputs[index], self.outputs[index] = inputs[0].detach(), output.detach()
        return keep

    def __enter__(self) -> BranchCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    @torch.no_grad()
    def branch(self, block: int, part: str) -> torch.Tensor:
        """``spectral`` or ``local`` branch output of one block, or its ``out``put."""
        if part == "out":
            return self.outputs[block]
        spectral, local = _branches(self.blocks[block])
        return (spectral if part == "spectral" else local)(self.inputs[block])

    def std(self, block: int, part: str) -> float:
        return self.branch(block, part).double().std().item()

    def norm_ratio(self, block: int) -> float:
        """‖spectral(x)‖ / ‖local(x)‖ for one block."""
        return (self.branch(block, "spectral").double().norm() / self.branch(block, "local").double().norm()).item()


@torch.no_grad()
def spectral_participation(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Per block, ‖spectral branch‖ / ‖local branch‖ on the batch ``x``."""
    was_training = model.training
    model.eval()
    try:
        with BranchCapture(spectral_blocks(model)) as capture:
            model(x)
        return [capture.norm_ratio(i) for i in range(capture.n_blocks)]
    finally:
        model.train(was_training)


@torch.no_grad()
def dc_response(model: nn.Module, amplitudes: torch.Tensor, factor: float = 1.1) -> torch.Tensor:
    """Where the predicted object moves when only the DC pixel of each measured pattern changes: the mean
    over the batch of |Δ object|² per pixel (N × N) after the DC amplitude, at (N/2, N/2) in the measured
    (centred) layout, is multiplied by ``factor``. The model runs in eval mode; its mode is restored."""
    n = amplitudes.shape[-1]
    nudged = amplitudes.clone()
    nudged[..., n // 2, n // 2] *= factor
    was_training = model.training
    model.eval()
    try:
        change = to_complex_object(model(nudged)) - to_complex_object(model(amplitudes))
    finally:
        model.train(was_training)
    return change.abs().square().mean(dim=0)


def centre_disc(n: int, radius: float) -> torch.Tensor:
    """The pixels of an n × n patch within ``radius`` px of its centre (n/2, n/2), where a DC-centred
    pattern's peak lies."""
    rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return (rows - n // 2) ** 2 + (cols - n // 2) ** 2 <= radius**2


def dc_centre_concentration(response: torch.Tensor, probe: torch.Tensor, radius: float = 3.0) -> float:
    """How much of a ``dc_response`` lands within ``radius`` px of the patch centre, relative to that
    disc's share of the probe's support (|probe| > 10% of its maximum, where stitching weighs the output):
    1 = spread evenly over the illuminated area, ≫ 1 = printed at the centre (where the DC peak lies)."""
    near, support = centre_disc(response.shape[-1], radius), probe_support(probe)
    total = response[support].sum()
    if total == 0:
        return 0.0
    share = response[near & support].sum() / total
    return (share / ((near & support).sum() / support.sum())).item()
