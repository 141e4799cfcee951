"""How much each PtychoBlock's spectral branch carries next to its local 3×3 branch."""

from __future__ import annotations

import torch
import torch.nn as nn

from .generators.blocks import PtychoBlock


def ptycho_blocks(model: nn.Module) -> list[PtychoBlock]:
    """The model's PtychoBlocks in forward order (DDP wrappers included)."""
    return [m for m in model.modules() if isinstance(m, PtychoBlock)]


class BranchCapture:
    """Forward hooks that keep, per block, the spectral and local branch outputs and the block output."""

    def __init__(self, blocks: list[PtychoBlock]) -> None:
        self.outputs: dict[tuple[int, str], torch.Tensor] = {}
        self._handles = []
        for i, block in enumerate(blocks):
            for part, module in (("spectral", block.spectral), ("local", block.local_conv), ("out", block)):
                self._handles.append(module.register_forward_hook(self._keeper((i, part))))
        self.n_blocks = len(blocks)

    def _keeper(self, key: tuple[int, str]):
        def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self.outputs[key] = output.detach()
        return keep

    def __enter__(self) -> "BranchCapture":
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    def std(self, block: int, part: str) -> float:
        return self.outputs[(block, part)].double().std().item()

    def norm_ratio(self, block: int) -> float:
        """‖spectral(x)‖ / ‖local(x)‖ for one block."""
        spectral = self.outputs[(block, "spectral")].double().norm()
        local = self.outputs[(block, "local")].double().norm()
        return (spectral / local).item()


@torch.no_grad()
def spectral_participation(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Per block, ‖spectral branch‖ / ‖local branch‖ on the batch ``x``."""
    was_training = model.training
    model.eval()
    try:
        with BranchCapture(ptycho_blocks(model)) as capture:
            model(x)
        return [capture.norm_ratio(i) for i in range(capture.n_blocks)]
    finally:
        model.train(was_training)
