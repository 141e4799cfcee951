"""A short physics-informed training run on simulated ptychography, single-process or data-parallel."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch
import torch.distributed as dist
import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spectral_init import resolve_settings

from .config import GeneratorConfig, build_generator
from .diagnostics import spectral_participation
from .physics import LossName, physics_loss, reconstruction_errors, to_complex_object
from .simulation import PtychoDataset, SimulationConfig, simulate_dataset

MAX_IMAGES = 5000  # train and test images come from disjoint seed ranges of this width


class TrainingConfig(BaseModel):
    """Model, data and optimization of one run; the model's ``spectral_init`` field selects the init."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: GeneratorConfig = Field(default_factory=lambda: GeneratorConfig(C=1))
    data: SimulationConfig = Field(default_factory=SimulationConfig)
    nepochs: int = Field(5, ge=1)
    batch_size: int = Field(16, ge=1)
    infer_batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    loss: LossName = "mae"
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingConfig":
        if self.model.N != self.data.N:
            raise ValueError(f"model.N ({self.model.N}) must equal data.N ({self.data.N})")
        if self.model.C != self.data.gridsize**2:
            raise ValueError(f"model.C ({self.model.C}) must equal data.gridsize² ({self.data.gridsize**2})")
        for name in ("nimgs_train", "nimgs_test"):
            if getattr(self.data, name) > MAX_IMAGES:
                raise ValueError(f"data.{name} must be <= {MAX_IMAGES}")
        return self


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
    def from_env(cls) -> "DistributedContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class TrainResult:
    epoch_losses: list[float]
    step_losses: list[float]
    test: dict[str, float]
    participation: dict[str, list[float]]
    timings: dict[str, float]
    intensity_scale: float
    n_train: int
    n_test: int
    ddp: dict[str, Any] | None
    model: nn.Module = field(repr=False)


def pick_device(choice: str, ctx: DistributedContext) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device("cuda", ctx.local_rank if ctx.active else 0)


def make_datasets(config: TrainingConfig) -> tuple[PtychoDataset, PtychoDataset]:
    """Training and test sets from different images; the test set uses the training scale."""
    base = config.seed * 2 * MAX_IMAGES
    train = simulate_dataset(config.data, config.data.nimgs_train, seed=base)
    test = simulate_dataset(config.data, config.data.nimgs_test, seed=base + MAX_IMAGES,
                            intensity_scale=train.intensity_scale)
    return train, test


def shard_indices(n: int, epoch: int, seed: int, ctx: DistributedContext) -> torch.Tensor:
    """This rank's share of one epoch's shuffled order; every rank gets the same count."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    per_rank = math.ceil(n / ctx.world_size)
    padded = order.repeat(math.ceil(per_rank * ctx.world_size / n))[: per_rank * ctx.world_size]
    return padded[ctx.rank :: ctx.world_size]


def _global_mean(value: float, ctx: DistributedContext, device: torch.device) -> float:
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


@torch.no_grad()
def evaluate(model: nn.Module, data: PtychoDataset, config: TrainingConfig, device: torch.device) -> dict[str, float]:
    model.eval()
    probe = data.probe.to(device)
    preds, losses = [], []
    for start in range(0, len(data), config.infer_batch_size):
        sl = slice(start, start + config.infer_batch_size)
        obj = to_complex_object(model(data.amplitudes[sl].to(device)))
        losses.append(physics_loss(obj, probe, data.amplitudes[sl].to(device), data.counts[sl].to(device),
                                   data.intensity_scale, config.loss).item() * obj.shape[0])
        preds.append(obj.cpu())
    model.train()
    errors = reconstruction_errors(torch.cat(preds), data.objects, data.probe)
    return {"physics_loss": sum(losses) / len(data), **errors}


def train(
    config: TrainingConfig,
    ctx: DistributedContext | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
) -> TrainResult:
    """Train ``config.model`` with Adam on the physics loss; evaluate on the test images.

    Seeds the global RNG with ``config.seed`` first, so a run is reproducible
    on the CPU (the data come from their own seeded generators).

    ``on_step(epoch, step, total_steps, loss)`` is called after every optimizer
    step (for a progress bar). Under torchrun (``ctx.active``) each rank trains on its shard
    with DistributedDataParallel; the test evaluation runs on every rank alike.
    """
    ctx = ctx or DistributedContext()
    device = pick_device(config.device, ctx)
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    train_set, test_set = make_datasets(config)
    model = build_generator(config.model).to(device)
    probe_batch = train_set.amplitudes[: min(8, len(train_set))].to(device)
    participation_start = spectral_participation(model, probe_batch)
    net: nn.Module = model
    if ctx.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    probe = train_set.probe.to(device)
    step_losses, epoch_losses, epoch_seconds = [], [], []
    step = 0
    per_rank = len(shard_indices(len(train_set), 0, config.seed, ctx))
    total_steps = config.nepochs * math.ceil(per_rank / config.batch_size)
    t_train = time.perf_counter()
    for epoch in range(config.nepochs):
        t_epoch = time.perf_counter()
        indices = shard_indices(len(train_set), epoch, config.seed, ctx)
        total, count = 0.0, 0
        for start in range(0, len(indices), config.batch_size):
            batch = indices[start : start + config.batch_size]
            amplitudes = train_set.amplitudes[batch].to(device)
            obj = to_complex_object(net(amplitudes))
            loss = physics_loss(obj, probe, amplitudes, train_set.counts[batch].to(device),
                                train_set.intensity_scale, config.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = _global_mean(loss.item(), ctx, device)
            step_losses.append(value)
            total, count = total + value * len(batch), count + len(batch)
            step += 1
            if on_step is not None:
                on_step(epoch, step, total_steps, value)
        epoch_losses.append(total / count)
        epoch_seconds.append(time.perf_counter() - t_epoch)
    train_seconds = time.perf_counter() - t_train
    participation_end = spectral_participation(model, probe_batch)
    test = evaluate(model, test_set, config, device)
    ddp = None
    if ctx.active:
        ddp = {
            "world_size": ctx.world_size,
            "backend": dist.get_backend(),
            "samples_per_rank_per_epoch": per_rank,
            "replica_max_abs_diff": replica_max_abs_diff(model, device),
        }
    return TrainResult(
        epoch_losses=epoch_losses,
        step_losses=step_losses,
        test=test,
        participation={"start": participation_start, "end": participation_end},
        timings={"total_seconds": time.perf_counter() - t_start, "train_seconds": train_seconds,
                 "epoch_seconds_median": sorted(epoch_seconds)[len(epoch_seconds) // 2]},
        intensity_scale=train_set.intensity_scale,
        n_train=len(train_set),
        n_test=len(test_set),
        ddp=ddp,
        model=model,
    )


def resolved_spectral_init(config: TrainingConfig) -> dict[str, Any]:
    """The init the run used, with defaults and environment applied."""
    return resolve_settings(config.model.spectral_init).model_dump(mode="json")
