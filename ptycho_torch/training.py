"""A short physics-informed training run on simulated ptychography, single-process or data-parallel."""

from __future__ import annotations

import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spectral_init import calibrate_, mup_param_groups
from spectral_init.settings import resolve_settings

from .data.measured import DataFiles, datasets_from_files
from .diagnostics import spectral_participation
from .evaluation import StitchedObject, evaluate_objects, reconstruction_metrics
from .generators.config import GeneratorConfig, build_generator
from .physics import LossName, physics_loss, reconstruction_errors, to_complex_object
from .scan import ScanOverlap, canvas_for, scan_tiles, tile_side
from .simulation import PtychoDataset, SimulationConfig, simulate_dataset

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_IMAGES",
    "DistributedContext",
    "DivergenceError",
    "LossScope",
    "TrainResult",
    "TrainingConfig",
    "TrainingProgress",
    "evaluate",
    "make_datasets",
    "predict",
    "make_checkpoint",
    "optimizer_groups",
    "pick_device",
    "resolved_spectral_init",
    "shard_indices",
    "train",
]

LossScope = Literal["stitched", "patches"]
MAX_IMAGES = 5000  # train and test images come from disjoint seed ranges of this width


class TrainingConfig(BaseModel):
    """Model, data and optimization of one run; the model's ``spectral_init`` field selects the init."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: GeneratorConfig = Field(default_factory=GeneratorConfig)
    data: SimulationConfig = Field(default_factory=SimulationConfig)
    files: DataFiles | None = Field(None, description="Measured scans to train and test on instead of simulating "
                                    "(data then gives only N, which the files set).")
    nepochs: int = Field(5, ge=1, le=100_000, description="Passes over the training patches.")
    batch_size: int = Field(16, ge=1, le=1_000_000, description="Patches per Adam step (per rank under torchrun).")
    infer_batch_size: int = Field(8, ge=1, le=1_000_000, description="Patches per forward pass when testing.")
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False, description="Adam learning rate.")
    lr_scaling: Literal["standard", "mup"] = Field(
        "standard",
        description="standard: lr for every parameter; mup: the spectral weights' lr × √(log N_b / log N) "
        "(spectral_init.mup_param_groups), with the base N_b from the mup strategy's base_modes, so that a "
        "learning rate tuned at the base carries over to more kept modes (needs model.spectral_init.strategy "
        "= mup).",
    )
    loss: LossName = Field("mae", description="Physics loss on the diffraction amplitudes.")
    loss_on: LossScope = Field(
        "stitched",
        description="What the physics loss compares with the patterns: stitched, the patches re-extracted "
        "from their stitched object (the scan's overlap constraint; a step takes whole objects, or tiles of "
        "neighbouring positions of a larger scan, about batch_size patterns); patches, each predicted patch "
        "alone (this project's loss before the scan-lattice fix, and the reference's at gridsize 1).",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds the data, the weights and the batch order.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available.")
    test_each_epoch: bool = Field(False, description="Also the test physics loss after every epoch (costs a "
                                  "forward pass over the test set each time).")

    @model_validator(mode="before")
    @classmethod
    def _sizes_given_once(cls, values: Any) -> Any:
        """N and C are one size each: the patch size N may be given in ``data`` or ``model`` (either is
        used for both) and the model's channels C follow from ``data.gridsize``. Given twice, they must
        agree (checked below)."""
        if not isinstance(values, dict):
            return values
        model, data = values.get("model", {}), values.get("data", {})
        files = values.get("files")
        if isinstance(files, dict):  # read (and checked) now: the files set N
            files = DataFiles.model_validate(files)
            values = {**values, "files": files}
        if isinstance(files, DataFiles) and isinstance(data, dict) and "N" not in data:
            data = {**data, "N": files.N}
        if isinstance(data, SimulationConfig):
            data_n, gridsize = data.N, data.gridsize
        elif isinstance(data, dict):
            data_n, gridsize = data.get("N"), data.get("gridsize", 1)
        else:
            return values  # not a config: pydantic reports it
        if not isinstance(model, dict):
            return values  # a GeneratorConfig already holds its N and C
        n = data_n if data_n is not None else model.get("N")
        model = dict(model)
        if n is not None:
            model.setdefault("N", n)
            if isinstance(data, dict) and data_n is None:
                data = {**data, "N": n}
        if isinstance(gridsize, int) and not isinstance(gridsize, bool):
            model.setdefault("C", gridsize**2)
        return {**values, "model": model, "data": data}

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        if self.model.N != self.data.N:
            raise ValueError(f"model.N ({self.model.N}) must equal data.N ({self.data.N})")
        if self.model.C != self.data.gridsize**2:
            raise ValueError(f"model.C ({self.model.C}) must equal data.gridsize² ({self.data.gridsize**2})")
        for name in ("nimgs_train", "nimgs_test"):
            if getattr(self.data, name) > MAX_IMAGES:
                raise ValueError(f"data.{name} must be <= {MAX_IMAGES}")
        if self.lr_scaling == "mup" and resolve_settings(self.model.spectral_init).strategy != "mup":
            raise ValueError("lr_scaling = 'mup' scales the learning rate from the mup strategy's base_modes: set "
                             "model.spectral_init to {strategy = 'mup', params = {base_modes = …}}, or lr_scaling "
                             "= 'standard'")
        if self.files is not None:
            if self.data.N != self.files.N:
                raise ValueError(f"data.N ({self.data.N}) must equal the files' pattern size ({self.files.N})")
            simulated = sorted(self.data.model_fields_set - {"N", "gridsize"})
            if simulated:  # a simulation setting beside measured data would look applied
                raise ValueError(f"data.{', data.'.join(simulated)}: simulation settings have no effect with files "
                                 "(the scan comes from them): drop them")
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
    def from_env(cls) -> DistributedContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class TrainResult:
    epoch_losses: list[float]
    epoch_test_losses: list[float | None]
    step_losses: list[float]
    test: dict[str, float | None]
    reconstruction: dict[str, float | None]  # the stitched test objects' metrics (evaluation.METRIC_NAMES)
    stitched: list[StitchedObject] = field(repr=False)
    test_predictions: torch.Tensor = field(repr=False)  # (n_test, N, N) complex: the predicted test patches
    test_set: PtychoDataset = field(repr=False)
    participation: dict[str, list[float]]
    timings: dict[str, float]
    intensity_scale: float
    train_set: PtychoDataset = field(repr=False)  # its probe, the model's, goes into the checkpoint
    pattern_dynamic_range: dict[str, float]  # of the training patterns (PtychoDataset.dynamic_range)
    n_train: int
    n_test: int
    ddp: dict[str, Any] | None
    model: nn.Module = field(repr=False)
    optimizer: torch.optim.Optimizer = field(repr=False)
    resumed_from_epoch: int | None
    calibration: list[dict[str, Any]] | None
    progress: TrainingProgress = field(repr=False)


def pick_device(choice: str, ctx: DistributedContext) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device("cuda", ctx.local_rank if ctx.active else 0)


def make_datasets(config: TrainingConfig) -> tuple[PtychoDataset, PtychoDataset]:
    """Training and test sets: read from ``config.files``, or simulated from different images; the test set
    uses the training scale."""
    if config.files is not None:
        return datasets_from_files(config.files)
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


def _replica_max_abs_diff(model: nn.Module, device: torch.device) -> float:
    """Largest difference of any parameter element between ranks (0 when replicas agree)."""
    flat = torch.cat([torch.view_as_real(p.detach()).flatten() if p.is_complex() else p.detach().flatten()
                      for p in model.parameters()]).double().to(device)
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return (high - low).max().item()


TEST_LOSS_SCOPE = "patches"  # predict's loss: each patch alone, comparable between runs of either loss_on


def loss_labels(config: TrainingConfig) -> tuple[str, str]:
    """How to name the train and test losses beside each other: with their scopes where they differ
    (``loss_on`` 'stitched' trains on the overlap-held patches, the test loss is each patch's own)."""
    if config.loss_on == TEST_LOSS_SCOPE:
        return "train loss", "test loss"
    return f"train loss ({config.loss_on})", "test loss (per patch)"


@torch.no_grad()
def predict(model: nn.Module, data: PtychoDataset, config: TrainingConfig,
            device: torch.device) -> tuple[torch.Tensor, float]:
    """The predicted object patches (on the CPU) and their mean physics loss, in eval mode; the model's
    mode is restored after."""
    was_training = model.training
    model.eval()
    probe = data.probe.to(device)
    preds, losses = [], []
    try:
        for start in range(0, len(data), config.infer_batch_size):
            sl = slice(start, start + config.infer_batch_size)
            obj = to_complex_object(model(data.amplitudes[sl].to(device)))
            losses.append(physics_loss(obj, probe, data.amplitudes[sl].to(device), data.counts[sl].to(device),
                                       data.intensity_scale, config.loss).item() * obj.shape[0])
            preds.append(obj.cpu())
    finally:
        model.train(was_training)
    return torch.cat(preds), sum(losses) / len(data)


def evaluate(model: nn.Module, data: PtychoDataset, config: TrainingConfig,
             device: torch.device) -> dict[str, float | None]:
    """Physics loss and per-patch reconstruction errors on ``data`` (``predict``)."""
    return _test_scores(*predict(model, data, config, device), data)


def _test_scores(preds: torch.Tensor, loss: float, data: PtychoDataset) -> dict[str, float | None]:
    """The physics loss, and the per-patch errors where the data carry the truth (else None)."""
    if data.objects is None:
        return {"physics_loss": loss, "amplitude_mae": None, "phase_mae": None}
    return {"physics_loss": loss, **reconstruction_errors(preds, data.objects, data.probe)}


CHECKPOINT_FORMAT = "ptycho_torch/training-checkpoint/2"


class DivergenceError(RuntimeError):
    """A non-finite loss or gradient: training stops before the step that would spread it."""

    def __init__(self, epoch: int, step: int, what: str) -> None:
        super().__init__(f"training diverged at epoch {epoch}, step {step}: {what}")
        self.epoch, self.step, self.what = epoch, step, what


@dataclass
class TrainingProgress:
    """What a run has done so far; with the model and optimizer states, all a checkpoint needs."""

    epoch: int = 0  # completed epochs
    step: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    epoch_test_losses: list[float | None] = field(default_factory=list)  # None: not evaluated that epoch
    participation_start: list[float] = field(default_factory=list)
    resumed_from_epoch: int | None = None


def make_checkpoint(config: TrainingConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                    progress: TrainingProgress, train_set: PtychoDataset) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, optimizer, RNG states, progress, config; and
    what a prediction must match: the training probe (the model's input and loss assume it) and the
    intensity scale.

    The data order needs no entry: each epoch's order is a function of (seed, epoch)
    (``shard_indices``), and the data are simulated from the seed again.
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config.model_dump(mode="json"),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "rng_state": torch.get_rng_state(),
        "cuda_rng_state": _cuda_rng_state(model),
        "epoch": progress.epoch,
        "step": progress.step,
        "epoch_losses": list(progress.epoch_losses),
        "step_losses": list(progress.step_losses),
        "epoch_seconds": list(progress.epoch_seconds),
        "epoch_test_losses": list(progress.epoch_test_losses),
        "participation_start": list(progress.participation_start),
        "complete": progress.epoch >= config.nepochs,
        "probe": train_set.probe.detach().cpu().clone(),
        "intensity_scale": train_set.intensity_scale,
    }


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _cuda_rng_state(model: nn.Module) -> list[torch.Tensor]:
    """The RNG state of the CUDA device the model is on, as a one-entry list ([] on the CPU): only that
    device's, so that a CPU run on a GPU host touches no GPU, and a rank none but its own."""
    device = _model_device(model)
    return [torch.cuda.get_rng_state(device)] if device.type == "cuda" else []


def _restore(checkpoint: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainingProgress:
    model.load_state_dict(checkpoint["model_state"])
    # Adam's load_state_dict brings back each group's saved rate: a rate changed on resume (allowed with
    # --allow-config-change) would be silently ignored. The moments are restored; the rates are this config's.
    rates = [group["lr"] for group in optimizer.param_groups]
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
    torch.set_rng_state(checkpoint["rng_state"])
    device = _model_device(model)
    if checkpoint["cuda_rng_state"] and device.type == "cuda":  # the state of the device it was saved from
        torch.cuda.set_rng_state(checkpoint["cuda_rng_state"][0], device)
    return TrainingProgress(
        epoch=checkpoint["epoch"], step=checkpoint["step"], epoch_losses=list(checkpoint["epoch_losses"]),
        step_losses=list(checkpoint["step_losses"]), epoch_seconds=list(checkpoint["epoch_seconds"]),
        epoch_test_losses=list(checkpoint.get("epoch_test_losses", [None] * checkpoint["epoch"])),
        participation_start=list(checkpoint["participation_start"]), resumed_from_epoch=checkpoint["epoch"],
    )


def _calibrate_on_first_batch(model: nn.Module, train_set: PtychoDataset, config: TrainingConfig,
                              device: torch.device) -> list[dict[str, Any]]:
    """``calibrate_`` on the first batch of the first epoch in the single-process order, so every rank
    of a torchrun job calibrates alike."""
    first = _step_batches(train_set, config, 0, DistributedContext())[0].indices
    report = calibrate_(model, train_set.amplitudes[first].to(device))
    return [asdict(layer) for layer in report.layers]


def _check_finite(value: float, model: nn.Module, epoch: int, step: int) -> None:
    """Stop on a non-finite loss or gradient (the same on every rank: loss and gradients are all-reduced).

    One host sync a step: the gradients' total norm is finite exactly when every gradient is (or it
    overflowed); only then are they looked at one by one, to name the first non-finite one."""
    if not math.isfinite(value):
        raise DivergenceError(epoch, step, f"the loss is {value}")
    grads = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    if not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm([g for _, g in grads]))):
        return
    for name, grad in grads:
        if not bool(torch.isfinite(grad).all()):
            raise DivergenceError(epoch, step, f"the gradient of {name} has non-finite values")
    raise DivergenceError(epoch, step, "the gradients' total norm overflows")


@dataclass(frozen=True)
class StepBatch:
    """One optimizer step's patterns: ``indices`` into the dataset; with the stitched loss, consecutive
    groups of len(``positions``) patterns are stitched together, ``positions`` their top-left corners."""

    indices: torch.Tensor
    positions: tuple[tuple[float, float], ...] | None = None


def _step_batches(train_set: PtychoDataset, config: TrainingConfig, epoch: int,
                  ctx: DistributedContext) -> list[StepBatch]:
    """This rank's batches for each step of one epoch, in (seed, epoch) order. ``loss_on`` 'patches':
    shuffled patches, ``batch_size`` a step. 'stitched': a scan grid narrower than two tiles of
    ⌊√batch_size⌋ positions (``overlap.tile_side``) goes whole, round(batch_size / patterns per object)
    objects a step (at least one); a wider one in such square tiles of neighbouring positions
    (``overlap.scan_tiles``), one a step, the tile edges shifted every epoch, every object's tiles
    shuffled together."""
    if config.loss_on == "patches":
        return [StepBatch(b) for b in shard_indices(len(train_set), epoch, config.seed, ctx).split(config.batch_size)]
    objects = train_set.object_patterns()
    scans = [tuple(train_set.positions_of(index)) for index in objects]
    tiles = [tile_side(config.batch_size, math.isqrt(len(index))) for index in objects]
    if all(tile is None for tile in tiles):
        order = shard_indices(len(objects), epoch, config.seed, ctx)
        # several objects a step only where they share one scan (their patches stitch alike)
        per_step = max(1, round(config.batch_size / len(objects[0]))) if len(set(scans)) == 1 else 1
        return [StepBatch(torch.cat([objects[int(k)] for k in chunk]), scans[int(chunk[0])])
                for chunk in order.split(per_step)]
    offset_draw = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    offset = {tile: int(torch.randint(tile, (), generator=offset_draw)) for tile in dict.fromkeys(tiles)
              if tile is not None}
    units: list[tuple[torch.Tensor, tuple[tuple[float, float], ...]]] = []  # (indices, positions) per tile
    tilings: dict[tuple[tuple[tuple[float, float], ...], int | None], list[list[int]]] = {}  # one per scan
    for index, scan, tile in zip(objects, scans, tiles):
        if (scan, tile) not in tilings:
            tilings[scan, tile] = ([list(range(len(index)))] if tile is None
                                   else scan_tiles(scan, train_set.step, tile, offset[tile]))
        units += [(index[torch.tensor(group)], tuple(scan[p] for p in group)) for group in tilings[scan, tile]]
    return [StepBatch(*units[int(i)]) for i in shard_indices(len(units), epoch, config.seed, ctx)]


def _train_epoch(net: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer, train_set: PtychoDataset,
                 config: TrainingConfig, ctx: DistributedContext, device: torch.device, progress: TrainingProgress,
                 total_steps: int, on_step: Callable[[int, int, int, float], None] | None) -> None:
    """One pass over this rank's shard of the epoch (``_step_batches``)."""
    epoch = progress.epoch
    probe = train_set.probe.to(device)
    overlaps: dict[tuple[tuple[int, int], ...], ScanOverlap] = {}  # one per tile shape
    total, count = 0.0, 0
    for step in _step_batches(train_set, config, epoch, ctx):
        batch = step.indices
        amplitudes = train_set.amplitudes[batch].to(device)
        obj = to_complex_object(net(amplitudes))
        if step.positions is not None:  # each group's patches → their stitched object → the patches again
            if step.positions not in overlaps:
                overlaps[step.positions] = _overlap(step.positions, probe)
            overlap = overlaps[step.positions]
            obj = overlap(obj.unflatten(0, (-1, overlap.positions))).flatten(0, 1)
        loss = physics_loss(obj, probe, amplitudes, train_set.counts[batch].to(device),
                            train_set.intensity_scale, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = _global_mean(loss.item(), ctx, device)
        _check_finite(value, model, epoch + 1, progress.step + 1)
        optimizer.step()
        progress.step_losses.append(value)
        total, count = total + value * len(batch), count + len(batch)
        progress.step += 1
        if on_step is not None:
            on_step(epoch, progress.step, total_steps, value)
    progress.epoch_losses.append(total / count)


def _overlap(positions: tuple[tuple[float, float], ...], probe: torch.Tensor) -> ScanOverlap:
    """The overlap map of a group of scan positions, moved by whole pixels to a canvas just large enough
    for them (their sub-pixel parts, and so the bilinear weights, unchanged)."""
    top, left = math.floor(min(r for r, _ in positions)), math.floor(min(c for _, c in positions))
    shifted = [(r - top, c - left) for r, c in positions]
    return ScanOverlap(shifted, canvas_for(shifted, probe.shape[-1]), probe)


@dataclass
class _Run:
    """One run between its steps: data, model, optimizer and progress, on this rank."""

    config: TrainingConfig
    ctx: DistributedContext
    device: torch.device
    train_set: PtychoDataset
    test_set: PtychoDataset
    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper under torchrun
    optimizer: torch.optim.Optimizer
    probe_batch: torch.Tensor  # the fixed batch on which spectral participation is measured
    progress: TrainingProgress
    calibration: list[dict[str, Any]] | None
    per_rank: list[int]  # this rank's samples in each epoch (the stitched loss's tiles move every epoch)
    total_steps: int  # over every epoch of the run, each epoch counted with its own tiling


def optimizer_groups(config: TrainingConfig, model: nn.Module) -> list[dict[str, Any]]:
    """Adam's parameter groups: one at ``config.lr``, or μP's (``lr_scaling = 'mup'``)."""
    if config.lr_scaling == "mup":
        base = resolve_settings(config.model.spectral_init).params["base_modes"]
        return mup_param_groups(model, config.lr, base)
    return [{"params": list(model.parameters()), "lr": config.lr}]


def _start(config: TrainingConfig, ctx: DistributedContext, resume: dict[str, Any] | None) -> _Run:
    """Seed, simulate the data, build the model and optimizer; then calibrate, or restore a checkpoint."""
    device = pick_device(config.device, ctx)
    torch.manual_seed(config.seed)
    train_set, test_set = make_datasets(config)
    model = build_generator(config.model, probe=train_set.probe).to(device)
    probe_batch = train_set.amplitudes[: min(8, len(train_set))].to(device)
    optimizer = torch.optim.Adam(optimizer_groups(config, model))
    calibration = None
    if resume is None:
        if resolve_settings(config.model.spectral_init).calibrate:
            calibration = _calibrate_on_first_batch(model, train_set, config, device)
        progress = TrainingProgress(participation_start=spectral_participation(model, probe_batch))
    else:
        progress = _restore(resume, model, optimizer)
    net: nn.Module = model
    if ctx.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    # every epoch's own schedule: the stitched loss's tiles, and so the steps, change with each epoch's offset
    schedules = [_step_batches(train_set, config, epoch, ctx) for epoch in range(config.nepochs)]
    return _Run(config, ctx, device, train_set, test_set, model, net, optimizer, probe_batch, progress, calibration,
                per_rank=[sum(len(b.indices) for b in batches) for batches in schedules],
                total_steps=sum(len(batches) for batches in schedules))


def _train_epochs(run: _Run, on_step: Callable[[int, int, int, float], None] | None,
                  on_epoch: Callable[[dict[str, Any]], None] | None) -> dict[str, float]:
    """The remaining epochs, a checkpoint handed to ``on_epoch`` after each; their timings."""
    progress = run.progress
    t_train = time.perf_counter()
    checkpoint_seconds = []
    while progress.epoch < run.config.nepochs:
        t_epoch = time.perf_counter()
        _train_epoch(run.net, run.model, run.optimizer, run.train_set, run.config, run.ctx, run.device, progress,
                     run.total_steps, on_step)
        progress.epoch += 1
        progress.epoch_seconds.append(time.perf_counter() - t_epoch)
        progress.epoch_test_losses.append(
            predict(run.model, run.test_set, run.config, run.device)[1]
            if run.config.test_each_epoch else None
        )
        if on_epoch is not None and run.ctx.is_main:  # the checkpoint is rank 0's to write
            t_checkpoint = time.perf_counter()
            on_epoch(make_checkpoint(run.config, run.model, run.optimizer, progress, run.train_set))
            checkpoint_seconds.append(time.perf_counter() - t_checkpoint)
    timings = {"train_seconds": time.perf_counter() - t_train}
    if progress.epoch_seconds:
        timings["epoch_seconds_median"] = statistics.median(progress.epoch_seconds)
    if checkpoint_seconds:
        timings["checkpoint_seconds_median"] = statistics.median(checkpoint_seconds)
    return timings


def _finish(run: _Run, timings: dict[str, float], t_start: float) -> TrainResult:
    """Participation at the end, the test evaluation, (under torchrun) the replicas' agreement; the
    result, its total time counted from ``t_start``."""
    participation_end = spectral_participation(run.model, run.probe_batch)
    t_infer = time.perf_counter()
    preds, test_loss = predict(run.model, run.test_set, run.config, run.device)
    # the generator's side of the speed/quality trade against an iterative solver (forward passes and loss)
    timings["inference_seconds_per_object"] = (time.perf_counter() - t_infer) / len(run.test_set.object_patterns())
    test = _test_scores(preds, test_loss, run.test_set)  # the predictions serve the stitched object too
    try:
        stitched = evaluate_objects(preds, run.test_set)
    except ValueError as exc:  # a probe whose support covers no box of the object: the run's results still count
        warnings.warn(f"the stitched test object cannot be scored ({exc}); its metrics are null", stacklevel=2)
        stitched = []
    ddp = None
    if run.ctx.active:
        ddp = {
            "world_size": run.ctx.world_size,
            "backend": dist.get_backend(),
            "samples_per_rank_per_epoch": run.per_rank,
            "replica_max_abs_diff": _replica_max_abs_diff(run.model, run.device),
        }
    progress = run.progress
    return TrainResult(
        epoch_losses=progress.epoch_losses,
        epoch_test_losses=progress.epoch_test_losses,
        step_losses=progress.step_losses,
        test=test,
        reconstruction=reconstruction_metrics(stitched),
        stitched=stitched,
        test_predictions=preds,
        test_set=run.test_set,
        participation={"start": progress.participation_start, "end": participation_end},
        timings={"total_seconds": time.perf_counter() - t_start, **timings},
        intensity_scale=run.train_set.intensity_scale,
        train_set=run.train_set,
        pattern_dynamic_range=run.train_set.dynamic_range(),
        n_train=len(run.train_set),
        n_test=len(run.test_set),
        ddp=ddp,
        model=run.model,
        optimizer=run.optimizer,
        resumed_from_epoch=progress.resumed_from_epoch,
        calibration=run.calibration,
        progress=progress,
    )


def train(
    config: TrainingConfig,
    ctx: DistributedContext | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``config.model`` with Adam on the physics loss; evaluate on the test images.

    Seeds the global RNG with ``config.seed`` first, so a run is reproducible
    on the CPU (the data come from their own seeded generators).

    ``on_step(epoch, step, total_steps, loss)`` is called after every optimizer
    step (for a progress bar); ``on_epoch(checkpoint)`` after every epoch with a
    ``make_checkpoint`` dict (to write it), under torchrun on rank 0 only. ``resume``, such a dict, continues
    that run: the result equals an uninterrupted run's bit for bit on the CPU.
    A non-finite loss or gradient raises ``DivergenceError`` before the step.
    Under torchrun (``ctx.active``) each rank trains on its shard with
    DistributedDataParallel; the test evaluation runs on every rank alike.
    """
    t_start = time.perf_counter()
    run = _start(config, ctx or DistributedContext(), resume)
    timings = _train_epochs(run, on_step, on_epoch)
    return _finish(run, timings, t_start)


def resolved_spectral_init(config: TrainingConfig) -> dict[str, Any]:
    """The init the run used, with defaults and environment applied."""
    return resolve_settings(config.model.spectral_init).model_dump(mode="json")
