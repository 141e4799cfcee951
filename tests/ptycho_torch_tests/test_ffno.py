"""The reference's FFNO layer, blocks, stacks and generators, and the vanilla FNO generator: the contract."""

from __future__ import annotations

import math

import pytest
import torch
from stats import assert_second_moment

from ptycho_torch import GeneratorConfig, build_generator
from ptycho_torch.generators import (
    FactorizedFfnoBlock,
    FactorizedSpectralConv2d,
    FfnoBottleneckGeneratorModule,
    FfnoGeneratorModule,
    FnoVanillaGeneratorModule,
    SharedFactorizedFfnoBottleneck,
    build_no_refiner_ffno_stack,
    factorized_spectral_conv2d,
    factorized_spectral_conv2d_fft,
)

SHAPES = [  # (batch, channels, H, W, modes): odd, non-square, capped, tiny
    (2, 3, 16, 16, 4), (2, 3, 17, 9, 12), (1, 2, 1, 2, 3), (2, 4, 8, 7, 5), (1, 1, 2, 1, 1), (3, 5, 33, 64, 12),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_fast_formulation_equals_the_fft_one(shape, dtype, tolerance) -> None:
    batch, channels, height, width, modes = shape
    g = torch.Generator().manual_seed(0)
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    x = torch.randn(batch, channels, height, width, dtype=dtype, generator=g).requires_grad_()
    wx, wy = (torch.randn(channels, channels, modes, dtype=cdtype, generator=g).requires_grad_() for _ in range(2))
    y, y_ref = factorized_spectral_conv2d(x, wx, wy), factorized_spectral_conv2d_fft(x, wx, wy)
    grad_out = torch.randn(y.shape, dtype=dtype, generator=g)
    for a, b in zip((y, *torch.autograd.grad(y, (x, wx, wy), grad_out)),
                    (y_ref, *torch.autograd.grad(y_ref, (x, wx, wy), grad_out))):
        assert (a - b).abs().max().item() <= tolerance * b.abs().max().item()


def test_operands_are_checked_with_clear_errors() -> None:
    w = torch.zeros(2, 2, 3, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"x must be float32 or float64 of shape \(batch, 2, H, W\)"):
        factorized_spectral_conv2d(torch.zeros(1, 3, 4, 4), w, w)
    with pytest.raises(ValueError, match="needs torch.complex128 weights"):
        factorized_spectral_conv2d(torch.zeros(1, 2, 4, 4, dtype=torch.float64), w, w)
    with pytest.raises(ValueError, match="weights_y must be complex"):
        factorized_spectral_conv2d(torch.zeros(1, 2, 4, 4), w, torch.zeros(2, 2, 3))


def test_layer_has_the_reference_parameters_and_loads_a_reference_state_dict() -> None:
    """A state_dict in the reference's format (weights_x, weights_y: (C, C, modes)) gives the same outputs."""
    channels, modes = 4, 5
    g = torch.Generator().manual_seed(1)
    reference_state = {
        "weights_x": torch.randn(channels, channels, modes, dtype=torch.cfloat, generator=g) / math.sqrt(channels),
        "weights_y": torch.randn(channels, channels, modes, dtype=torch.cfloat, generator=g) / math.sqrt(channels),
    }
    layer = FactorizedSpectralConv2d(channels, modes)
    assert {k: tuple(v.shape) for k, v in layer.state_dict().items()} == {
        "weights_x": (channels, channels, modes), "weights_y": (channels, channels, modes)}
    layer.load_state_dict(reference_state)
    x = torch.randn(2, channels, 12, 9, generator=g)
    expected = factorized_spectral_conv2d_fft(x, reference_state["weights_x"], reference_state["weights_y"])
    assert torch.allclose(layer(x), expected, rtol=0, atol=1e-5 * expected.abs().max().item())
    # and back: our state_dict is the reference's format
    assert torch.equal(layer.state_dict()["weights_x"], reference_state["weights_x"])


def test_the_reference_draw_is_reproduced_by_ffno_reference() -> None:
    """The reference draws weights_x then weights_y as randn(C, C, m, cfloat)/√C from the global RNG."""
    channels, modes = 6, 7
    torch.manual_seed(123)
    wx = torch.randn(channels, channels, modes, dtype=torch.cfloat) / math.sqrt(channels)
    wy = torch.randn(channels, channels, modes, dtype=torch.cfloat) / math.sqrt(channels)
    torch.manual_seed(123)
    layer = FactorizedSpectralConv2d(channels, modes, spectral_init="ffno-reference")
    assert torch.allclose(layer.weights_x, wx, rtol=1e-6, atol=0)
    assert torch.allclose(layer.weights_y, wy, rtol=1e-6, atol=0)


def test_sqrt_in_counts_both_branches() -> None:
    layer = FactorizedSpectralConv2d(64, 12, {"strategy": "sqrt_in", "seed": 0})
    for w in (layer.weights_x, layer.weights_y):
        assert_second_moment(w.detach(), 1 / (2 * 64))
    reference = FactorizedSpectralConv2d(64, 12, {"strategy": "ffno-reference", "seed": 0})
    assert_second_moment(reference.weights_x.detach(), 1 / 64)


def stack_keys(n_blocks: int) -> set[str]:
    """The reference stack's state_dict keys (instance norm, shared spectral layer and gate)."""
    keys = {"shared_gate", "shared_spectral.weights_x", "shared_spectral.weights_y"}
    for i in range(n_blocks):
        keys |= {f"blocks.{i}.shared_spectral.weights_x", f"blocks.{i}.shared_spectral.weights_y"}
        keys |= {f"blocks.{i}.{m}.{p}" for m in ("norm", "expand", "project") for p in ("weight", "bias")}
    return keys


def test_shared_stack_holds_one_operator_and_one_gate_with_the_reference_keys() -> None:
    stack = SharedFactorizedFfnoBottleneck(8, n_blocks=3, modes=4, spectral_init={"strategy": "sqrt_in", "seed": 5})
    assert all(b.shared_spectral is stack.shared_spectral for b in stack.blocks)
    assert all(b.effective_gate is stack.shared_gate for b in stack.blocks)
    assert all(b.gate is None and "gate" not in dict(b.named_parameters(recurse=False)) for b in stack.blocks)
    assert set(stack.state_dict()) == stack_keys(3)
    assert stack.shared_gate.item() == pytest.approx(0.1)
    # drawn once: the shared layer is the first draw of the seeded stream
    alone = FactorizedSpectralConv2d(8, 4, {"strategy": "sqrt_in", "seed": 5})
    assert torch.equal(stack.shared_spectral.weights_x, alone.weights_x)
    assert torch.equal(stack.shared_spectral.weights_y, alone.weights_y)
    # a reference-format state_dict round-trips
    other = SharedFactorizedFfnoBottleneck(8, n_blocks=3, modes=4)
    other.load_state_dict(stack.state_dict())
    x = torch.randn(2, 8, 10, 10)
    assert torch.equal(other(x), stack(x))


def test_unshared_stack_has_own_layers_and_trainable_gates() -> None:
    stack = SharedFactorizedFfnoBottleneck(4, n_blocks=2, modes=3, share_spectral_weights=False, gate_init=0.3,
                                           spectral_init={"strategy": "sqrt_in", "seed": 1})
    assert stack.shared_spectral is None and stack.shared_gate is None
    a, b = stack.blocks
    assert a.shared_spectral is not b.shared_spectral
    assert not torch.equal(a.shared_spectral.weights_x, b.shared_spectral.weights_x)
    assert a.gate.item() == pytest.approx(0.3) and a.gate.requires_grad
    assert {n for n, _ in stack.named_parameters() if n.endswith("gate")} == {"blocks.0.gate", "blocks.1.gate"}


@pytest.mark.parametrize("norm, kind", [("instance", torch.nn.InstanceNorm2d), ("layer", torch.nn.GroupNorm),
                                        ("identity", torch.nn.Identity)])
def test_block_path_expand_act_project(norm, kind) -> None:
    spectral = FactorizedSpectralConv2d(6, 3)
    block = FactorizedFfnoBlock(channels=6, shared_spectral=spectral, mlp_ratio=2.5, norm=norm)
    assert isinstance(block.norm, kind)
    assert (block.expand.in_channels, block.expand.out_channels) == (6, 15)
    assert (block.project.in_channels, block.project.out_channels) == (15, 6)
    assert isinstance(block.act, torch.nn.GELU) and block.local_conv is None
    assert FactorizedFfnoBlock(channels=6, shared_spectral=spectral, mlp_ratio=0.1).expand.out_channels == 6
    x = torch.randn(2, 6, 9, 8)
    update = block.project(block.act(block.expand(block.norm(spectral(x)))))
    assert torch.allclose(block(x), x + block.gate * update, atol=1e-6)


def test_local_conv_option_adds_a_local_branch() -> None:
    spectral = FactorizedSpectralConv2d(4, 3)
    block = FactorizedFfnoBlock(channels=4, shared_spectral=spectral, local_conv_kernel_size=5)
    assert block.local_conv.kernel_size == (5, 5) and block.local_conv.padding == (2, 2)
    x = torch.randn(1, 4, 8, 8)
    assert torch.allclose(block.branch_sum(x), spectral(x) + block.local_conv(x))
    stack = SharedFactorizedFfnoBottleneck(4, n_blocks=2, modes=3, local_conv_kernel_size=3)
    assert all(b.local_conv.kernel_size == (3, 3) for b in stack.blocks)
    assert stack(x).shape == x.shape


@pytest.mark.parametrize("kwargs, argument", [
    ({"n_blocks": 0}, "n_blocks"), ({"modes": 0}, "modes"), ({"mlp_ratio": 0.0}, "mlp_ratio"),
    ({"mlp_ratio": float("nan")}, "mlp_ratio"), ({"local_conv_kernel_size": 4}, "local_conv_kernel_size"),
    ({"local_conv_kernel_size": -1}, "local_conv_kernel_size"), ({"norm": "batch"}, "norm"),
    ({"gate_init": float("inf")}, "gate_init"),
])
def test_bad_arguments_name_the_argument(kwargs, argument) -> None:
    with pytest.raises(ValueError, match=argument):
        SharedFactorizedFfnoBottleneck(4, **kwargs)


def test_stack_builders_and_shell() -> None:
    stack = build_no_refiner_ffno_stack(4, n_blocks=2, modes=3)
    assert isinstance(stack, SharedFactorizedFfnoBottleneck) and len(stack.blocks) == 2
    shell = FfnoBottleneckGeneratorModule(channels=4, n_blocks=2, modes=3)
    x = torch.randn(2, 4, 8, 8)
    assert shell(x).shape == x.shape and isinstance(shell.bottleneck, SharedFactorizedFfnoBottleneck)


@pytest.mark.parametrize("cls", [FfnoGeneratorModule, FnoVanillaGeneratorModule])
def test_generators_keep_the_output_contract(cls) -> None:
    kwargs = dict(hidden_channels=8, n_blocks=2, modes=4, C=4)
    model = cls(**kwargs)
    x = torch.randn(2, 4, 16, 16)
    assert model(x).shape == (2, 16, 16, 4, 2)
    amp, phase = cls(**kwargs, output_mode="amp_phase")(x)
    assert amp.shape == phase.shape == (2, 4, 16, 16)
    assert (amp > 0).all() and (amp < 1).all() and (phase.abs() <= math.pi).all()


def test_ffno_generator_structure() -> None:
    model = FfnoGeneratorModule(hidden_channels=8, n_blocks=3, modes=4, cnn_blocks=2, C=1)
    assert model.blocks is model.ffno_stack.blocks and len(model.blocks) == 3
    assert all(b.shared_spectral is model.ffno_stack.shared_spectral for b in model.blocks)
    assert len(model.refiners) == 2
    x = torch.randn(1, 8, 6, 6)
    r = model.refiners[0]
    assert torch.allclose(r(x), x + r.conv2(r.act(r.conv1(x))))
    with pytest.raises(ValueError, match="cnn_blocks"):
        FfnoGeneratorModule(cnn_blocks=-1)


@pytest.mark.parametrize("architecture", ["fno_vanilla", "ffno"])
def test_config_builds_the_new_architectures_with_the_strategy_everywhere(architecture) -> None:
    config = GeneratorConfig(architecture=architecture, C=1, fno_width=32, fno_blocks=3,
                             spectral_init={"strategy": "xavier-complex", "seed": 0})
    model = build_generator(config)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 64, 64, 1, 2)
    branches, n_weights = (2, 2) if architecture == "ffno" else (1, 3)  # ffno: one shared layer of two weights
    weights = [p for p in model.parameters() if p.is_complex()]
    assert len(weights) == n_weights
    for param in weights:
        assert_second_moment(param.detach(), 2 / (branches * 64))
    layers = [m for m in model.modules() if callable(getattr(m, "spectral_weights", None))]
    assert layers and all(m.spectral_init.strategy == "xavier-complex" for m in layers)
