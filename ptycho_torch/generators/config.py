"""The generators' model config, with the spectral init as one of its fields."""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spectral_init.settings import SpectralInitSpec

from ..optics import FAR_FIELD, Propagator
from ..simulation.probe import disk_probe
from .blocks import InputTransformMode, OutputMode
from .diffraction_input import DiffractionInput, InputLayout, LaidOutGenerator, layout_channels
from .spectral_conv import SpectralBackend

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "GeneratorConfig",
    "build_generator",
]


Architecture = Literal["fno", "hybrid", "fno_vanilla", "ffno", "plain_fno"]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)


class GeneratorConfig(BaseModel):
    """Which generator to build and how; ``spectral_init`` reaches every spectral layer.

    ``spectral_init`` takes a strategy name, a mapping of ``SpectralInitSettings``
    fields, or settings; ``None`` means the defaults and ``SPECTRAL_INIT_*``
    environment read when the generator is built.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: Architecture = Field("fno", description="Which generator to build.")
    N: int = Field(64, gt=0, le=1024, description="Patch size in pixels (even).")
    C: int = Field(1, ge=1, le=64, description="Channels per sample: gridsize² (training simulates gridsize 1).")
    fno_width: int = Field(32, ge=1, le=1024, description="Channels inside the spectral blocks.")
    fno_modes: int = Field(12, ge=1, description="Retained modes per corner; at most N // 2.")
    fno_blocks: int = Field(4, ge=1, le=64, description="Spectral blocks (hybrid: encoder stages; plain_fno: depth).")
    fno_cnn_blocks: int = Field(2, ge=0, le=64, description="CNN refiner blocks after the spectral ones (fno, ffno).")
    input_layout: InputLayout = Field(
        "real_space",
        description="What the generator sees: real_space, the exit wave back-propagated (far field: with the "
        "probe's far-field phase; near field: with a flat phase) (2 channels); corner, the amplitudes with DC at "
        "pixel (0, 0) (far field); flat_field, each pattern over the training scan's mean pattern, minus 1; "
        "centred, as measured (the reference's input, and this project's before the scan-lattice fix).",
    )
    input_transform: InputTransformMode = Field(
        "none", description="Applied to the generator's input first (sqrt and log1p: amplitude layouts only).")
    output_mode: OutputMode = Field("real_imag", description="What the output head returns.")
    spectral_init: SpectralInitSpec | None = Field(
        None,
        description="Strategy name (see `spectral-init list`), or a table of SpectralInitSettings fields; "
        "unset: sqrt_in and the SPECTRAL_INIT_* environment.",
    )
    spectral_backend: SpectralBackend | None = Field(
        None,
        description="auto and fallback: this package's SpectralConv2d; neuralop: neuraloperator's SpectralConv. "
        "Unset: PTYCHO_SPECTRAL_BACKEND, then auto. The factorized layer of 'ffno' has one implementation.",
    )

    @model_validator(mode="after")
    def _consistent_sizes(self) -> GeneratorConfig:
        if self.N % 2:
            raise ValueError(f"N must be a positive even size; got {self.N}")
        if self.fno_modes > self.N // 2:
            raise ValueError(f"fno_modes must be <= N // 2 = {self.N // 2}; got {self.fno_modes}")
        if self.input_layout == "real_space" and self.input_transform in ("sqrt", "log1p"):
            raise ValueError(f"input_transform {self.input_transform!r} compresses amplitudes; the real_space "
                             "layout's input is a signed image: use none or instancenorm, or another input_layout")
        factor = 2 ** (self.fno_blocks - 1)
        if self.architecture == "hybrid" and self.N % factor:
            raise ValueError(
                f"architecture 'hybrid' with fno_blocks={self.fno_blocks} needs N divisible by {factor}; got {self.N}"
            )
        return self


def build_generator(config: GeneratorConfig, probe: torch.Tensor | None = None,
                    propagator: Propagator = FAR_FIELD, flat: torch.Tensor | None = None) -> nn.Module:
    """The generator ``config`` describes, its spectral layers drawn by ``config.spectral_init``.

    Its input is laid out by ``config.input_layout``: for ``centred`` the bare generator (the
    reference's classes, their state_dict keys unchanged), otherwise a ``LaidOutGenerator`` around it.
    ``real_space`` needs, in the far field, the scan's ``probe`` (N × N complex; without one it takes the
    simulation's default probe, ``disk_probe(N)``), in the near field the scan's ``propagator``;
    ``flat_field`` the training scan's mean amplitude ``flat`` (N × N; without it, a placeholder that a
    saved state_dict fills).
    """
    generator = _build_bare_generator(config, layout_channels(config.input_layout))
    if config.input_layout == "centred":
        return generator
    if config.input_layout == "real_space" and probe is None and propagator.kind == "far-field":
        probe = disk_probe(config.N)
    for name, given in (("probe", probe), ("mean pattern", flat)):
        if given is not None and tuple(given.shape) != (config.N, config.N):
            raise ValueError(f"the {name} is {tuple(given.shape)} px; the model's patches are "
                             f"{config.N} × {config.N}")
    return LaidOutGenerator(DiffractionInput(config.input_layout, probe, propagator, flat), generator)


def _build_bare_generator(config: GeneratorConfig, in_channels: int) -> nn.Module:
    from . import (
        CascadedFNOGenerator,
        FfnoGeneratorModule,
        FnoVanillaGeneratorModule,
        HybridUNOGenerator,
        PlainFNOGenerator,
    )

    common = dict(
        in_channels=in_channels,
        out_channels=2,
        hidden_channels=config.fno_width,
        modes=config.fno_modes,
        C=config.C,
        input_transform=config.input_transform,
        output_mode=config.output_mode,
        spectral_init=config.spectral_init,
        spectral_backend=config.spectral_backend,
    )
    if config.architecture == "hybrid":
        return HybridUNOGenerator(n_blocks=config.fno_blocks, **common)
    if config.architecture == "fno_vanilla":
        return FnoVanillaGeneratorModule(n_blocks=config.fno_blocks, **common)
    if config.architecture == "plain_fno":
        return PlainFNOGenerator(n_blocks=config.fno_blocks, **common)
    if config.architecture == "ffno":
        del common["spectral_backend"]
        return FfnoGeneratorModule(n_blocks=config.fno_blocks, cnn_blocks=config.fno_cnn_blocks, **common)
    return CascadedFNOGenerator(fno_blocks=config.fno_blocks, cnn_blocks=config.fno_cnn_blocks, **common)
