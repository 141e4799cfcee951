"""The training loop: seed, data, model and optimizer (or a checkpoint) set up, the epochs run with the
finite checks before each step, the result evaluated on the test data."""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from spectral_init import calibrate_
from spectral_init.settings import resolve_settings

from ..diagnostics import spectral_participation
from ..evaluation import StitchedObject, evaluate_objects, reconstruction_metrics
from ..generators.config import build_generator
from ..optics import fourier_shift
from ..physics import physics_loss, to_complex_object
from ..scan import ScanOverlap
from ..simulation import PtychoDataset
from .batching import scan_overlap, step_batches
from .checkpoint import TrainingProgress, make_checkpoint, restore
from .config import TrainingConfig, make_datasets, optimizer_groups
from .distributed import DistributedContext, global_mean, pick_device, replica_max_abs_diff
from .illumination import Illumination
from .inference import predict, test_scores

__all__ = ["DivergenceError", "TrainResult", "calibrate_on_first_batch", "check_finite", "train"]


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
    illumination: Illumination = field(repr=False)  # the probe as trained, and the position corrections


class DivergenceError(RuntimeError):
    """A non-finite loss or gradient: training stops before the step that would spread it."""

    def __init__(self, epoch: int, step: int, what: str) -> None:
        super().__init__(f"training diverged at epoch {epoch}, step {step}: {what}")
        self.epoch, self.step, self.what = epoch, step, what


def calibrate_on_first_batch(model: nn.Module, train_set: PtychoDataset, config: TrainingConfig,
                              device: torch.device) -> list[dict[str, Any]]:
    """``calibrate_`` on the first batch of the first epoch in the single-process order, so every rank
    of a torchrun job calibrates alike."""
    first = step_batches(train_set, config, 0, DistributedContext())[0].indices
    report = calibrate_(model, train_set.amplitudes[first].to(device))
    return [asdict(layer) for layer in report.layers]


def check_finite(value: float, model: nn.Module, epoch: int, step: int) -> None:
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


def check_finite_predictions(predictions: torch.Tensor, epoch: int, step: int) -> None:
    """Stop where every loss and weight stayed finite but the outputs did not (a huge learning rate:
    finite weights that overflow the generator's output), so that no non-finite score is reported."""
    if not bool(torch.isfinite(torch.view_as_real(predictions) if predictions.is_complex() else predictions).all()):
        raise DivergenceError(epoch, step, "non-finite predictions on the test patterns")


def _train_epoch(net: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer, train_set: PtychoDataset,
                 config: TrainingConfig, ctx: DistributedContext, device: torch.device, progress: TrainingProgress,
                 total_steps: int, on_step: Callable[[int, int, int, float], None] | None,
                 illumination: Illumination) -> None:
    """One pass over this rank's shard of the epoch (``step_batches``)."""
    epoch = progress.epoch
    overlaps: dict[tuple[tuple[int, int], ...], ScanOverlap] = {}  # one per tile shape
    total, count = 0.0, 0
    for step in step_batches(train_set, config, epoch, ctx):
        batch = step.indices
        probe = illumination.probe
        amplitudes = train_set.amplitudes[batch].to(device)
        obj = to_complex_object(net(amplitudes))
        shifts = illumination.shifts_of(batch)
        if step.positions is not None and shifts is not None:
            # a patch shows the object where the pattern was taken, its scan position plus its correction:
            # moved onto its nominal position for the stitch (and back under the probe, ``physics_loss``)
            obj = fourier_shift(obj, shifts)
        if step.positions is not None:  # each group's patches → their stitched object → the patches again
            if step.positions not in overlaps:  # weighted by the probe as it was when the tile was first seen
                overlaps[step.positions] = scan_overlap(step.positions, probe.detach())
            overlap = overlaps[step.positions]
            obj = overlap(obj.unflatten(0, (-1, overlap.positions))).flatten(0, 1)
        loss = physics_loss(obj, probe, amplitudes, train_set.counts[batch].to(device),
                            train_set.intensity_scale, config.loss, propagator=train_set.propagator,
                            good_pixels=train_set.good_pixels,
                            shifts=shifts if step.positions is not None else None,
                            background=illumination.background)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = global_mean(loss.item(), ctx, device)
        check_finite(value, model, epoch + 1, progress.step + 1)
        optimizer.step()
        illumination.hold_()
        progress.step_losses.append(value)
        total, count = total + value * len(batch), count + len(batch)
        progress.step += 1
        if on_step is not None:
            on_step(epoch, progress.step, total_steps, value)
    progress.epoch_losses.append(total / count)


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
    illumination: Illumination  # the probe (fixed or learned) and the position corrections
    progress: TrainingProgress
    calibration: list[dict[str, Any]] | None
    per_rank: list[int]  # this rank's samples in each epoch (the stitched loss's tiles move every epoch)
    total_steps: int  # over every epoch of the run, each epoch counted with its own tiling


def _start(config: TrainingConfig, ctx: DistributedContext, resume: dict[str, Any] | None) -> _Run:
    """Seed, simulate the data, build the model and optimizer; then calibrate, or restore a checkpoint."""
    device = pick_device(config.device, ctx)
    torch.manual_seed(config.seed)
    if ctx.active and (config.learn_probe or config.refine_positions):
        raise ValueError("learn_probe and refine_positions train in one process: under torchrun each rank would "
                         "learn its own probe")
    train_set, test_set = make_datasets(config)
    flat = None
    if config.model.input_layout == "flat_field":  # the training scan's mean pattern, kept with the weights
        flat = train_set.amplitudes[:, 0].double().square().mean(dim=0).sqrt().float()
    model = build_generator(config.model, probe=train_set.probe, propagator=train_set.propagator,
                            flat=flat).to(device)
    mean_amplitude = train_set.amplitudes.mean().item() if config.learn_background else None
    illumination = Illumination(train_set.probe, len(train_set), config.learn_probe, config.refine_positions,
                                background_scale=mean_amplitude)
    illumination = illumination.to(device)
    probe_batch = train_set.amplitudes[: min(8, len(train_set))].to(device)
    optimizer = torch.optim.Adam(optimizer_groups(config, model) + illumination.param_groups(config))
    calibration = None
    if resume is None:
        if resolve_settings(config.model.spectral_init).calibrate:
            calibration = calibrate_on_first_batch(model, train_set, config, device)
        progress = TrainingProgress(participation_start=spectral_participation(model, probe_batch))
    else:
        progress = restore(resume, model, optimizer)
        if "illumination" in resume:
            illumination.load_state_dict(resume["illumination"])
        _use_learned(illumination, train_set, test_set)
    net: nn.Module = model
    if ctx.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    # every epoch's own schedule: the stitched loss's tiles, and so the steps, change with each epoch's offset
    schedules = [step_batches(train_set, config, epoch, ctx) for epoch in range(config.nepochs)]
    return _Run(config, ctx, device, train_set, test_set, model, net, optimizer, probe_batch, illumination,
                progress, calibration,
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
                     run.total_steps, on_step, run.illumination)
        _use_learned(run.illumination, run.train_set, run.test_set)
        progress.epoch += 1
        progress.epoch_seconds.append(time.perf_counter() - t_epoch)
        progress.epoch_test_losses.append(
            predict(run.model, run.test_set, run.config, run.device)[1]
            if run.config.test_each_epoch else None
        )
        if on_epoch is not None and run.ctx.is_main:  # the checkpoint is rank 0's to write
            t_checkpoint = time.perf_counter()
            on_epoch(make_checkpoint(run.config, run.model, run.optimizer, progress, run.train_set,
                                     run.illumination))
            checkpoint_seconds.append(time.perf_counter() - t_checkpoint)
    timings = {"train_seconds": time.perf_counter() - t_train}
    if progress.epoch_seconds:
        timings["epoch_seconds_median"] = statistics.median(progress.epoch_seconds)
    if checkpoint_seconds:
        timings["checkpoint_seconds_median"] = statistics.median(checkpoint_seconds)
    return timings


def _use_learned(illumination: Illumination, train_set: PtychoDataset, test_set: PtychoDataset) -> None:
    """A learned probe and background become the data's, for testing, stitching and the checkpoint: the
    test scan was measured with the same probe and detector (the background in the test set's unit)."""
    if illumination.learn_probe:
        train_set.probe = test_set.probe = illumination.probe.detach().cpu().clone()
    if illumination.background is not None:
        background = illumination.background.detach().cpu().clone()
        train_set.background = background
        test_set.background = background * (train_set.intensity_scale / test_set.intensity_scale)


def _finish(run: _Run, timings: dict[str, float], t_start: float) -> TrainResult:
    """Participation at the end, the test evaluation, (under torchrun) the replicas' agreement; the
    result, its total time counted from ``t_start``."""
    participation_end = spectral_participation(run.model, run.probe_batch)
    t_infer = time.perf_counter()
    preds, test_loss = predict(run.model, run.test_set, run.config, run.device)
    if run.illumination.shifts is not None and run.test_set is run.train_set:
        # tested on the training scan: each patch moved from where its pattern was taken to its nominal place
        preds = fourier_shift(preds, run.illumination.shifts.detach().cpu())
    # the generator's side of the speed/quality trade against an iterative solver (forward passes and loss)
    timings["inference_seconds_per_object"] = (time.perf_counter() - t_infer) / len(run.test_set.object_patterns())
    test = test_scores(preds, test_loss, run.test_set)  # the predictions serve the stitched object too
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
            "replica_max_abs_diff": replica_max_abs_diff(run.model, run.device),
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
        illumination=run.illumination,
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
