"""One process's place in a torchrun job: its rank, its device, its shard of each epoch, and what the
ranks agree on (a global mean, the replicas' largest difference)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = ["DistributedContext", "global_mean", "pick_device", "replica_max_abs_diff", "shard_indices"]


@dataclass
class DistributedContext:
    """This process's place in a torchrun job (world size 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> DistributedContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(choice: str, ctx: DistributedContext) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device("cuda", ctx.local_rank if ctx.active else 0)


def shard_indices(n: int, epoch: int, seed: int, ctx: DistributedContext) -> torch.Tensor:
    """This rank's share of one epoch's shuffled order; every rank gets the same count."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    per_rank = math.ceil(n / ctx.world_size)
    padded = order.repeat(math.ceil(per_rank * ctx.world_size / n))[: per_rank * ctx.world_size]
    return padded[ctx.rank :: ctx.world_size]


def global_mean(value: float, ctx: DistributedContext, device: torch.device) -> float:
    if not ctx.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / ctx.world_size


def replica_max_abs_diff(model: nn.Module, device: torch.device) -> float:
    """Largest difference of any parameter element between ranks (0 when replicas agree)."""
    flat = torch.cat([torch.view_as_real(p.detach()).flatten() if p.is_complex() else p.detach().flatten()
                      for p in model.parameters()]).double().to(device)
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return (high - low).max().item()
