"""A run between its steps, as a checkpoint: everything needed to continue exactly (weights, optimizer,
RNG states, progress, config) and what a prediction must match (the training probe and intensity scale);
written while the next epoch trains (``CheckpointWriter``); and reading one back (``read_checkpoint``, older
configs completed with the fields they predate) to continue the same run (``check_resumable``)."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..simulation import PtychoDataset
from .config import TrainingConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "CheckpointWriter",
    "RESUMABLE_CHANGES",
    "TrainingProgress",
    "as_configured_then",
    "check_resumable",
    "make_checkpoint",
    "read_checkpoint",
    "restore",
]


CHECKPOINT_FORMAT = "ptycho_torch/training-checkpoint/2"


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
                    progress: TrainingProgress, train_set: PtychoDataset,
                    illumination: nn.Module | None = None) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, optimizer, RNG states, progress, config, the learned
    probe and position corrections (``illumination``); and what a prediction must match: the training probe
    (the model's input and loss assume it; a learned one as learned) and the intensity scale.

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
        **({} if illumination is None else {"illumination": illumination.state_dict()}),
    }


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _cuda_rng_state(model: nn.Module) -> list[torch.Tensor]:
    """The RNG state of the CUDA device the model is on, as a one-entry list ([] on the CPU): only that
    device's, so that a CPU run on a GPU host touches no GPU, and a rank none but its own."""
    device = _model_device(model)
    return [torch.cuda.get_rng_state(device)] if device.type == "cuda" else []


def restore(checkpoint: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainingProgress:
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


# fields added to the config after checkpoints were first written, and the value an older run had
FIELDS_ADDED = {("model", "input_layout"): "centred", ("data", "probe_defocus"): 0.0, ("loss_on",): "patches",
                ("lr_scaling",): "standard"}


class CheckpointError(ValueError):
    """A path that is not a training checkpoint: the message names it and says what it is instead."""


def as_configured_then(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the fields it predates filled in as its run had them (an older run fed
    the generator the measured, centred patterns), so that a resume compares like with like."""
    filled = {key: dict(value) if isinstance(value, dict) else value for key, value in saved.items()}
    for (*sections, name), value in FIELDS_ADDED.items():
        target: Any = filled
        for section in sections:
            target = target.get(section) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.setdefault(name, value)
    return filled


def _is_numpy_archive(path: Path) -> bool:
    """Whether ``path`` is a zip of .npy arrays (what np.savez writes; a torch checkpoint is a zip too,
    of other members)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """The checkpoint at ``path`` (on the CPU, weights only); a ``CheckpointError`` naming what the path is
    otherwise: missing, a directory (and the checkpoint.pt in it), a scan (an .npz), no zip at all (torch's
    own message would advise loading it unsafely), unreadable, or another format."""
    path = Path(path)
    if path.is_dir():
        inside = path / "checkpoint.pt"
        hint = f": give {str(inside)!r}" if inside.is_file() else " (a training run's checkpoint.pt is a file in it)"
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory{hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r}: no such file")
    if _is_numpy_archive(path):
        raise CheckpointError(f"checkpoint {str(path)!r} is a NumPy .npz archive (a scan?), not a checkpoint: the "
                              "checkpoint comes first, then the scan (python -m ptycho_torch.predict CHECKPOINT SCAN)")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            head = handle.read(12)
        raise CheckpointError(f"checkpoint {str(path)!r} is not a torch checkpoint (a zip archive); it starts with "
                              f"{head!r}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
        raise CheckpointError(f"checkpoint {str(path)!r} is not a readable torch checkpoint ({type(exc).__name__})"
                              ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a ptycho_torch.train checkpoint ({CHECKPOINT_FORMAT})")
    return checkpoint


# Fields a resumed run may change: more epochs continue the same run; testing does not change training.
RESUMABLE_CHANGES = frozenset({"nepochs", "test_each_epoch"})


def _config_differences(saved: dict[str, Any], given: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(given)):
        a, b, name = saved.get(key), given.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_differences(a, b, name + ".")
        elif a != b and name not in RESUMABLE_CHANGES:
            out.append(f"{name} (checkpoint {a!r}, now {b!r})")
    return out


def check_resumable(checkpoint: dict[str, Any], config: TrainingConfig, allow_config_change: bool = False) -> None:
    """Raise ``CheckpointError`` unless ``checkpoint`` can continue the run ``config`` describes: the same
    config but for ``RESUMABLE_CHANGES`` (any other difference too with ``allow_config_change``, except the
    learning-rate scaling, whose optimizer state has other parameter groups), and no more epochs done than
    ``config.nepochs``."""
    then = as_configured_then(checkpoint["config"])
    if then["lr_scaling"] != config.lr_scaling:  # Adam's saved state holds the other's parameter groups
        raise CheckpointError(f"its run used lr_scaling {then['lr_scaling']!r}, this one {config.lr_scaling!r}; the "
                              "optimizer's parameter groups differ, so even --allow-config-change cannot resume it")
    differences = _config_differences(then, config.model_dump(mode="json"))
    if differences and not allow_config_change:
        raise CheckpointError("its run was configured differently: " + "; ".join(differences)
                              + ". Pass --allow-config-change to resume anyway")
    if checkpoint["epoch"] > config.nepochs:
        raise CheckpointError(f"it has {checkpoint['epoch']} epochs done, more than --nepochs {config.nepochs}")


def _copy_tensors(obj: Any) -> Any:
    """``obj`` with every tensor cloned to the CPU: a snapshot the next optimizer step cannot change. A
    dict keeps its attributes too: ``state_dict()._metadata`` holds each module's version, which
    ``load_state_dict`` passes to modules that convert older layouts."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        copy = type(obj)((k, _copy_tensors(v)) for k, v in obj.items())
        if hasattr(obj, "__dict__"):
            copy.__dict__.update(obj.__dict__)
        return copy
    if isinstance(obj, (list, tuple)):
        return type(obj)(_copy_tensors(v) for v in obj)
    return obj


class CheckpointWriter:
    """Writes each epoch's checkpoint atomically in a background thread while the next epoch trains.

    ``save`` writes one checkpoint whole or not at all (the command's atomic write). ``submit`` snapshots
    the tensors (a memory copy) and waits only for the previous write; a process killed mid-write leaves
    the previous checkpoint in place, and a resume then repeats at most one epoch. ``written_epoch`` is
    the epoch of the checkpoint on disk (``resumed_epoch`` until this run writes one). The thread is not a
    daemon: ``close`` (or ``close_after_interrupt``) joins it on every exit path, so no write is still
    inside torch when the interpreter shuts down.
    """

    def __init__(self, save: Callable[[dict[str, Any]], None], resumed_epoch: int | None = None) -> None:
        self._save = save
        self.written_epoch = resumed_epoch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending: Future[None] | None = None

    def _write(self, checkpoint: dict[str, Any]) -> None:
        self._save(checkpoint)
        self.written_epoch = checkpoint["epoch"]

    def _wait(self) -> None:
        """The pending write's end; its error, if any, raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def submit(self, checkpoint: dict[str, Any]) -> None:
        self._wait()
        self._pending = self._executor.submit(self._write, _copy_tensors(checkpoint))

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self._executor.shutdown(wait=True)

    def close_after_interrupt(self) -> int | None:
        """Finish the pending write; the epoch now on disk. A failed write is reported, not raised."""
        try:
            self.close()
        except Exception as exc:  # noqa: BLE001 - the run is ending; the message says what was kept
            print(f"warning: the last checkpoint write failed ({exc}); the one before it is kept", file=sys.stderr)
        return self.written_epoch
