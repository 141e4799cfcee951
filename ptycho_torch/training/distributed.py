"""One process's place in a torchrun job: its rank, its device, its shard of each epoch, what the
ranks agree on (a global mean, the replicas' largest difference), and the process group they form."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = ["DistributedContext", "global_mean", "init_process_group", "pick_device", "process_group",
           "replica_max_abs_diff", "shard_indices"]


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


def init_process_group(ctx: DistributedContext, device: torch.device) -> None:
    """The process group, on the rendezvous store under a prefix unique to this restart; a CUDA rank
    bound to its own device (LOCAL_RANK) first, so that its collectives and RNG state are that
    device's, not cuda:0's.

    torchrun's agent keeps one store across elastic restarts. Without a prefix, workers of a
    restarted group find the keys the previous attempt wrote (its peers' addresses) and connect to
    processes that are gone: with torch 2.13's plain ``env://`` rendezvous the restart of
    ``test_torchrun_survives_a_killed_worker`` failed in 2 of 2 tries ("Gloo connectFullMesh failed …
    Connection refused"). Keyed by TORCHELASTIC_RESTART_COUNT, every attempt rendezvouses in a
    namespace of its own.
    """
    if device.type == "cuda":
        torch.cuda.set_device(device)
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        ctx.world_size,
        is_master=ctx.rank == 0 and not agent_store,
        timeout=timedelta(minutes=5),
    )
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        store=dist.PrefixStore(f"ptycho_torch/attempt-{attempt}", store),
        rank=ctx.rank,
        world_size=ctx.world_size,
        device_id=device if device.type == "cuda" else None,
    )


@contextmanager
def process_group(ctx: DistributedContext, device: torch.device) -> Iterator[None]:
    """Under torchrun, the process group for the block, destroyed on every way out of it (a rank that
    raised, diverged or was interrupted included), so that no group is left to the destructors at
    interpreter exit.

    ``torch._dynamo`` is imported before the group forms. The first optimizer (or DDP wrapper) imports
    it lazily, and with it ``torch.distributed`` modules that, imported while a default group exists,
    keep a reference to it: ``destroy_process_group`` then leaves the gloo group and its worker threads
    alive, the interpreter destroys it while shutting down, and now and then that aborts the rank
    (SIGABRT, "terminate called without an active exception": 1 of 20 torchrun runs beside two busy
    processes; ``tests/ptycho_torch_tests/test_teardown.py`` checks that no gloo thread outlives the group)."""
    if not ctx.active:
        yield
        return
    import torch._dynamo  # noqa: F401 - before the group, see above

    init_process_group(ctx, device)
    try:
        yield
    finally:
        dist.destroy_process_group()
