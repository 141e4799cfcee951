"""``TrainingConfig``: model, data and optimization of one run, checked as a whole; the datasets it names
(simulated, or scan files), Adam's parameter groups and the init it resolves to."""

from __future__ import annotations

from typing import Any, Literal

import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spectral_init import mup_param_groups
from spectral_init.settings import resolve_settings

from ..data.measured import DataFiles, datasets_from_files
from ..generators.config import GeneratorConfig
from ..physics import LossName
from ..simulation import PtychoDataset, SimulationConfig, simulate_dataset

__all__ = ["LossScope", "MAX_IMAGES", "TrainingConfig", "make_datasets", "optimizer_groups", "resolved_spectral_init"]


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
    learn_probe: bool = Field(False, description="Learn the probe beside the generator, starting from the scan's "
                              "(or, for a file without one, a guess from its patterns), its power held so that "
                              "probe and object keep their scale.")
    refine_positions: bool = Field(False, description="Learn a sub-pixel correction of each training pattern's "
                                   "scan position (their mean held at 0).")
    learn_background: bool = Field(False, description="Learn a detector background b (N × N, incoherent with "
                                   "the wave: a pattern is √(|Ψ|² + b²)) beside the generator, as CDTools does.")
    probe_lr: float = Field(0.01, gt=0, allow_inf_nan=False, description="The learned probe's Adam rate, in units "
                            "of its mean amplitude (the background's, in units of the patterns' mean amplitude).")
    position_lr: float = Field(0.04, gt=0, allow_inf_nan=False, description="The position corrections' Adam "
                               "rate, in pixels.")

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
        if self.refine_positions and self.loss_on != "stitched":
            raise ValueError("refine_positions needs loss_on = 'stitched': a patch compared alone says nothing of "
                             "where it lies")
        if self.learn_probe and self.model.input_layout == "real_space" and (
                self.files is None or self.files.propagation == "far-field"):
            raise ValueError("learn_probe with input_layout 'real_space' in the far field: that input is made with "
                             "the probe, which would then change under it; take model.input_layout = 'flat_field' "
                             "or 'centred'")
        if self.files is not None:
            if self.files.probe_guessed and not self.learn_probe:
                raise ValueError(f"{self.files.train_path} holds no probe, only a guess from its patterns: set "
                                 "learn_probe = true (--learn-probe)")
            if self.files.propagation == "near-field" and self.model.input_layout == "corner":
                raise ValueError("model.input_layout 'corner' moves a far-field pattern's DC to pixel (0, 0); a "
                                 "near-field pattern has none: take real_space, flat_field or centred")
            if self.data.N != self.files.N:
                raise ValueError(f"data.N ({self.data.N}) must equal the files' pattern size ({self.files.N})")
            simulated = sorted(self.data.model_fields_set - {"N", "gridsize"})
            if simulated:  # a simulation setting beside measured data would look applied
                raise ValueError(f"data.{', data.'.join(simulated)}: simulation settings have no effect with files "
                                 "(the scan comes from them): drop them")
        return self


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


def optimizer_groups(config: TrainingConfig, model: nn.Module) -> list[dict[str, Any]]:
    """Adam's parameter groups: one at ``config.lr``, or μP's (``lr_scaling = 'mup'``)."""
    if config.lr_scaling == "mup":
        base = resolve_settings(config.model.spectral_init).params["base_modes"]
        return mup_param_groups(model, config.lr, base)
    return [{"params": list(model.parameters()), "lr": config.lr}]


def resolved_spectral_init(config: TrainingConfig) -> dict[str, Any]:
    """The init the run used, with defaults and environment applied."""
    return resolve_settings(config.model.spectral_init).model_dump(mode="json")
