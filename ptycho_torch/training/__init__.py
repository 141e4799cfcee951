"""Training: ``config`` (``TrainingConfig``, the datasets it names), ``batching`` (how a batch is formed),
``loop`` (``train``), ``checkpoint`` (writing and reading a run between its steps), ``distributed`` (a rank's
place in a torchrun job and its process group), ``inference`` (the model on data without training) and
``record`` (what a finished run writes to ``metrics.json``). Every name below is
importable from ``ptycho_torch.training``; ``python -m ptycho_torch.train`` is the command over them."""

from .batching import StepBatch, scan_overlap, step_batches
from .checkpoint import (
    CHECKPOINT_FORMAT,
    RESUMABLE_CHANGES,
    CheckpointError,
    CheckpointWriter,
    TrainingProgress,
    as_configured_then,
    check_resumable,
    make_checkpoint,
    read_checkpoint,
    restore,
)
from .config import MAX_IMAGES, LossScope, TrainingConfig, make_datasets, optimizer_groups, resolved_spectral_init
from .distributed import (
    DistributedContext,
    global_mean,
    init_process_group,
    pick_device,
    process_group,
    replica_max_abs_diff,
    shard_indices,
)
from .inference import TEST_LOSS_SCOPE, evaluate, loss_labels, predict, predict_patches, test_scores
from .loop import (
    DivergenceError,
    TrainResult,
    calibrate_on_first_batch,
    check_finite,
    check_finite_predictions,
    train,
)
from .record import run_record

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "CheckpointWriter",
    "DistributedContext",
    "DivergenceError",
    "LossScope",
    "RESUMABLE_CHANGES",
    "MAX_IMAGES",
    "StepBatch",
    "TEST_LOSS_SCOPE",
    "TrainResult",
    "TrainingConfig",
    "TrainingProgress",
    "as_configured_then",
    "calibrate_on_first_batch",
    "check_finite",
    "check_resumable",
    "check_finite_predictions",
    "evaluate",
    "global_mean",
    "init_process_group",
    "loss_labels",
    "make_checkpoint",
    "make_datasets",
    "optimizer_groups",
    "pick_device",
    "process_group",
    "predict",
    "predict_patches",
    "read_checkpoint",
    "replica_max_abs_diff",
    "resolved_spectral_init",
    "restore",
    "run_record",
    "scan_overlap",
    "shard_indices",
    "step_batches",
    "test_scores",
    "train",
]
