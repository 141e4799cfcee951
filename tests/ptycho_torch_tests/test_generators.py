"""Both generators: the selected strategy reaches every spectral layer, by argument, config or env."""

from __future__ import annotations

import pydantic
import pytest
import torch
from stats import assert_second_moment

import spectral_init as si
from ptycho_torch import GeneratorConfig, build_generator
from ptycho_torch.generators import (
    HAS_NEURALOPERATOR,
    CascadedFNOGenerator,
    HybridUNOGenerator,
    InputTransform,
    NeuralopSpectralConv2d,
    PtychoBlock,
    StablePtychoBlock,
    _FallbackSpectralConv2d,
)

SPECTRAL_LAYERS = (_FallbackSpectralConv2d, NeuralopSpectralConv2d)
BACKENDS = ["fallback", "neuralop"] if HAS_NEURALOPERATOR else ["fallback"]
SMALL = dict(N=32, C=1, fno_width=8, fno_modes=4, fno_blocks=3, fno_cnn_blocks=1)


def spectral_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, SPECTRAL_LAYERS)]
    assert layers, "model has no spectral layer"
    return layers


def assert_layers_follow(model: torch.nn.Module, strategy: str, gain: float = 1.0) -> None:
    expected = si.get_strategy(strategy)
    distribution = "uniform_parts" if strategy == "fno-uniform" else "complex_normal"
    for layer in spectral_layers(model):
        assert layer.spectral_init.strategy == strategy
        assert_second_moment(
            layer.weights.detach(), expected.second_moment(layer.in_channels, layer.out_channels, gain), distribution
        )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("architecture", ["fno", "hybrid"])
@pytest.mark.parametrize("strategy", ["legacy", "sqrt_in", "xavier-complex", "kaiming-complex", "fno-uniform"])
def test_config_field_reaches_every_spectral_layer(backend: str, architecture: str, strategy: str) -> None:
    config = GeneratorConfig(
        architecture=architecture, spectral_init=strategy.upper(), spectral_backend=backend, **SMALL
    )
    model = build_generator(config)
    assert_layers_follow(model, strategy)
    expected_cls = NeuralopSpectralConv2d if backend == "neuralop" else _FallbackSpectralConv2d
    assert all(isinstance(layer, expected_cls) for layer in spectral_layers(model))


@pytest.mark.parametrize("backend", BACKENDS)
def test_constructor_argument(backend: str) -> None:
    fno = CascadedFNOGenerator(
        hidden_channels=32, modes=12, C=4, spectral_init="xavier-complex", spectral_backend=backend
    )
    assert len(spectral_layers(fno)) == 4
    assert_layers_follow(fno, "xavier-complex")
    hybrid = HybridUNOGenerator(
        hidden_channels=8,
        n_blocks=3,
        modes=4,
        C=1,
        spectral_init={"strategy": "kaiming-complex", "gain": 0.5},
        spectral_backend=backend,
    )
    assert len(spectral_layers(hybrid)) == 4  # 3 encoder stages + bottleneck
    assert_layers_follow(hybrid, "kaiming-complex", gain=0.5)


def test_env_var_selects_strategy_when_nothing_is_passed(monkeypatch) -> None:
    monkeypatch.setenv("SPECTRAL_INIT_STRATEGY", "xavier_complex")
    monkeypatch.setenv("SPECTRAL_INIT_GAIN", "2")
    model = CascadedFNOGenerator(hidden_channels=32, modes=12, C=4, spectral_backend="fallback")
    assert_layers_follow(model, "xavier-complex", gain=2.0)
    # An explicit choice overrides the environment's strategy.
    model = build_generator(GeneratorConfig(spectral_init="legacy", **SMALL))
    assert_layers_follow(model, "legacy", gain=2.0)


def test_default_is_sqrt_in() -> None:
    assert_layers_follow(build_generator(GeneratorConfig(**SMALL)), "sqrt_in")


def test_env_var_forces_fallback_backend(monkeypatch) -> None:
    monkeypatch.setenv("PTYCHO_SPECTRAL_BACKEND", "fallback")
    assert all(
        isinstance(m, _FallbackSpectralConv2d) for m in spectral_layers(build_generator(GeneratorConfig(**SMALL)))
    )


@pytest.mark.parametrize("architecture", ["fno", "hybrid"])
def test_seed_reproducible_and_blocks_differ(architecture: str) -> None:
    config = GeneratorConfig(
        architecture=architecture,
        spectral_init={"strategy": "sqrt_in", "seed": 3},
        spectral_backend="fallback",
        **SMALL,
    )
    torch.manual_seed(0)
    first = [layer.weights.detach().clone() for layer in spectral_layers(build_generator(config))]
    torch.manual_seed(1)  # the spectral draws do not depend on the global RNG
    second = [layer.weights.detach().clone() for layer in spectral_layers(build_generator(config))]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    # One stream for the model: layers seeded alike would all start with the same
    # standard-normal draws, only scaled by their std; compare directions.
    heads = [w.flatten()[:8] / w.flatten()[:8].norm() for w in first]
    assert all(not torch.allclose(heads[0], h, atol=1e-3) for h in heads[1:])


@pytest.mark.parametrize("architecture", ["fno", "hybrid"])
def test_output_contract(architecture: str) -> None:
    x = torch.rand(2, 4, 32, 32)
    config = dict(SMALL, C=4)
    y = build_generator(GeneratorConfig(architecture=architecture, **config))(x)
    assert y.shape == (2, 32, 32, 4, 2)
    amp, phase = build_generator(GeneratorConfig(architecture=architecture, output_mode="amp_phase", **config))(x)
    assert amp.shape == phase.shape == (2, 4, 32, 32)
    assert amp.min() > 0 and amp.max() < 1 and phase.abs().max() < torch.pi


def test_real_imag_layout_matches_reference_reshape() -> None:
    """(B, 2·C, H, W) projection channels [real C…, imag C…] → (B, H, W, C, 2)."""
    model = CascadedFNOGenerator(
        hidden_channels=8, fno_blocks=1, cnn_blocks=0, modes=4, C=3, spectral_backend="fallback"
    )
    x = torch.rand(1, 3, 16, 16)
    captured = {}
    model.head.output_proj.register_forward_hook(lambda m, i, o: captured.setdefault("proj", o))
    y = model(x)
    proj = captured["proj"]
    torch.testing.assert_close(y[0, :, :, 2, 0], proj[0, 2])
    torch.testing.assert_close(y[0, :, :, 1, 1], proj[0, 3 + 1])


def test_blocks_carry_the_strategy_and_stable_block_starts_near_identity() -> None:
    block = StablePtychoBlock(8, modes=4, spectral_init="legacy", spectral_backend="fallback")
    assert block.spectral.spectral_init.strategy == "legacy"
    x = torch.randn(2, 8, 16, 16)
    assert (block(x) - x).abs().max() < 1e-2
    plain = PtychoBlock(8, modes=4, spectral_init="kaiming-complex", spectral_backend="fallback")
    assert plain.spectral.spectral_init.strategy == "kaiming-complex"


def test_input_transforms() -> None:
    x = torch.tensor([[[[-1.0, 0.0, 3.0, 8.0]]]])
    torch.testing.assert_close(InputTransform("sqrt")(x), torch.sqrt(torch.tensor([[[[0.0, 0.0, 3.0, 8.0]]]])))
    torch.testing.assert_close(InputTransform("log1p")(x), torch.log1p(torch.tensor([[[[0.0, 0.0, 3.0, 8.0]]]])))
    normed = InputTransform("instancenorm", channels=1)(torch.rand(2, 1, 8, 8) * 1e4)
    assert normed.mean().abs() < 1e-4 and abs(normed.std().item() - 1) < 0.1
    assert torch.equal(InputTransform("none")(x), x)
    with pytest.raises(ValueError, match="input_transform must be one of"):
        InputTransform("log")


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(N=63), "N must be a positive even size"),
        (dict(N=0), "N"),
        (dict(N=16, fno_modes=9), r"fno_modes must be <= N // 2 = 8"),
        (dict(architecture="hybrid", N=36, fno_blocks=4), "divisible by 8"),
        (dict(architecture="unet"), "architecture"),
        (dict(spectral_init="xavier"), "did you mean 'xavier-complex'"),
        (dict(spectral_init={"strategy": "legacy", "gain": -1}), "gain"),
        (dict(spectral_backend="gpu"), "spectral_backend"),
        (dict(input_transform="log"), "input_transform"),
        (dict(fno_width=0), "fno_width"),
        (dict(fno_modes=4, typo=1), "typo"),
    ],
)
def test_config_rejects_bad_input(kwargs: dict, pattern: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=pattern):
        GeneratorConfig(**kwargs)


def test_config_json_round_trip() -> None:
    config = GeneratorConfig(architecture="hybrid", spectral_init={"strategy": "fno_uniform", "seed": 2}, **SMALL)
    again = GeneratorConfig.model_validate_json(config.model_dump_json())
    assert again == config and again.spectral_init.strategy == "fno-uniform"


def test_hybrid_rejects_indivisible_input() -> None:
    model = HybridUNOGenerator(hidden_channels=4, n_blocks=3, modes=2, C=1, spectral_backend="fallback")
    with pytest.raises(ValueError, match="divisible by 4"):
        model(torch.rand(1, 1, 30, 32))


def test_the_real_space_input_of_a_flat_object_is_the_probe() -> None:
    from ptycho_torch.generators.diffraction_input import DiffractionInput
    from ptycho_torch.simulation import diffraction_amplitude, disk_probe

    probe = disk_probe(32, defocus=4.0)
    amplitudes = diffraction_amplitude(torch.ones(1, 32, 32, dtype=torch.complex64), probe).unsqueeze(1)
    laid_out = DiffractionInput("real_space", probe)(amplitudes)
    assert laid_out.shape == (1, 2, 32, 32)
    torch.testing.assert_close(torch.complex(laid_out[0, 0], laid_out[0, 1]), probe, atol=1e-5, rtol=1e-5)
    corner = DiffractionInput("corner")(amplitudes)
    assert corner[0, 0, 0, 0] == amplitudes[0, 0, 16, 16] == amplitudes.max()  # DC moved to pixel (0, 0)
    with pytest.raises(ValueError, match="needs the probe"):
        DiffractionInput("real_space")


def test_the_centred_layout_keeps_the_reference_classes_and_the_others_wrap_them() -> None:
    from ptycho_torch.generators import FfnoGeneratorModule
    from ptycho_torch.generators.diffraction_input import LaidOutGenerator

    config = dict(architecture="ffno", N=16, C=1, fno_width=4, fno_modes=2, fno_blocks=1)
    centred = build_generator(GeneratorConfig(input_layout="centred", **config))
    assert type(centred) is FfnoGeneratorModule and "lifter.conv1.weight" in centred.state_dict()
    assert centred.lifter.conv1.in_channels == 1
    wrapped = build_generator(GeneratorConfig(input_layout="real_space", **config))
    assert isinstance(wrapped, LaidOutGenerator) and wrapped.generator.lifter.conv1.in_channels == 2
    # the probe belongs to the data, not to the weights: the state_dict is the generator's, prefixed
    assert set(wrapped.state_dict()) == {f"generator.{k}" for k in centred.state_dict()}
    assert GeneratorConfig(**config).input_layout == "real_space"  # the pipeline's default
    with pytest.raises(ValueError, match="the probe is"):
        build_generator(GeneratorConfig(input_layout="real_space", **config), probe=torch.ones(8, 8))
    with pytest.raises(ValueError, match="input_transform 'log1p' compresses amplitudes"):
        GeneratorConfig(input_layout="real_space", input_transform="log1p", **config)


@pytest.mark.parametrize("architecture", ["fno", "hybrid", "fno_vanilla", "ffno"])
def test_the_dc_peak_prints_at_the_patch_centre_unless_the_input_is_in_real_space(architecture: str) -> None:
    """The root cause of the scan-lattice artifact, at init: with the measured (centred) layout a change of
    the DC pixel alone moves the output most near the patch centre (the lifter's 3×3 convolutions keep it
    there, the skips and local paths carry it to the head); back-propagated to real space it does not.
    Deterministic (seeded weights and data); measured 7.3–9.9 centred, 0.35–1.4 real_space."""
    from ptycho_torch.diagnostics import dc_centre_concentration, dc_response
    from ptycho_torch.simulation import SimulationConfig, simulate_dataset

    data = simulate_dataset(SimulationConfig(N=32), 1, seed=0)
    concentration = {}
    for layout in ("centred", "real_space"):
        torch.manual_seed(0)
        model = build_generator(GeneratorConfig(architecture=architecture, N=32, C=1, input_layout=layout),
                                probe=data.probe)
        concentration[layout] = dc_centre_concentration(dc_response(model, data.amplitudes[:8]), data.probe)
    assert concentration["centred"] > 4 and concentration["real_space"] < 2, concentration
