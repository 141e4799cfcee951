"""``spectral_init.initialize_``: every spectral weight of any module, once, atomically, with a report.

neuraloperator's factorized weights: each factor is checked at its own exact Gamma interval
(``tests/stats.py``) against E|F|² = (target/n_terms)^(1/T), with n_terms and T counted here from
the shapes, independently of the code; with independent zero-mean factors that makes the
reconstructed weight's E|W|² = n_terms·Π E|F| = target exactly (derivation in
``spectral_init/adapters/plan.py``). The reconstructed weight itself is checked over 200 seeds by the
studentized CLT (approximate: the per-seed means are averages of products of normals), at Z = 5.33.
"""

from __future__ import annotations

import math
import statistics

import pytest
import torch
import torch.nn as nn
from stats import ComplexNormal, Z, assert_second_moment

import spectral_init as si
from ptycho_torch.generators import CascadedFNOGenerator, FfnoGeneratorModule, NeuralopSpectralConv2d
from spectral_init.initialize_model import UnrecognizedSpectralWeightWarning, spectral_layer_kinds
from spectral_init.registry import UnknownStrategyError


def complex_params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.is_complex()}


def test_report_names_every_weight_with_its_kind_shape_and_target() -> None:
    model = CascadedFNOGenerator(hidden_channels=16, fno_blocks=3, modes=6, C=1, spectral_backend="fallback")
    report = si.initialize_(model, {"strategy": "xavier-complex", "seed": 3})
    assert [w.name for w in report.weights] == [f"fno_blocks.{i}.spectral.weights" for i in range(3)]
    assert all(w.kind == "SpectralConv2d" and w.shape == (16, 16, 12, 6) for w in report.weights)
    assert all(w.second_moment == pytest.approx(2 / 32) for w in report.weights)
    for w in report.weights:
        assert_second_moment(model.get_parameter(w.name).detach(), 2 / 32)
    assert "fno_blocks.0.spectral.weights" in str(report)
    # the layers now follow the new settings
    assert all(b.spectral.spectral_init.strategy == "xavier-complex" for b in model.fno_blocks)


def test_same_seed_same_weights_and_the_global_rng_untouched() -> None:
    a = CascadedFNOGenerator(hidden_channels=8, fno_blocks=2, modes=4, C=1, spectral_backend="fallback")
    b = CascadedFNOGenerator(hidden_channels=8, fno_blocks=2, modes=4, C=1, spectral_backend="fallback")
    state = torch.random.get_rng_state()
    si.initialize_(a, {"strategy": "sqrt_in", "seed": 11})
    si.initialize_(b, {"strategy": "sqrt_in", "seed": 11})
    assert torch.equal(state, torch.random.get_rng_state())
    wa, wb = complex_params(a), complex_params(b)
    assert all(torch.equal(wa[n], wb[n]) for n in wa)
    assert not torch.equal(wa["fno_blocks.0.spectral.weights"], wa["fno_blocks.1.spectral.weights"])


def test_a_shared_weight_is_drawn_once() -> None:
    model = FfnoGeneratorModule(hidden_channels=8, n_blocks=4, modes=4, C=1)
    report = si.initialize_(model, "sqrt_in")
    assert [w.name for w in report.weights] == ["ffno_stack.shared_spectral.weights_x",
                                                 "ffno_stack.shared_spectral.weights_y"]
    assert all(w.geometry.branches == 2 and w.second_moment == pytest.approx(1 / 16) for w in report.weights)


class WithStrayComplex(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = CascadedFNOGenerator(hidden_channels=8, fno_blocks=2, modes=4, C=1, spectral_backend="fallback")
        self.phase_table = nn.Parameter(torch.ones(3, dtype=torch.cfloat))


def test_unknown_complex_parameter_strict_refuses_before_any_change() -> None:
    model = WithStrayComplex()
    before = complex_params(model)
    with pytest.raises(ValueError, match=r"'phase_table' \(3,\).*Nothing was changed"):
        si.initialize_(model, "kaiming-complex")
    after = complex_params(model)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_unknown_complex_parameter_not_strict_warns_and_draws_the_rest() -> None:
    model = WithStrayComplex()
    with pytest.warns(UnrecognizedSpectralWeightWarning, match="phase_table"):
        report = si.initialize_(model, {"strategy": "kaiming-complex", "seed": 0}, strict=False)
    assert report.skipped == ["phase_table"] and len(report.weights) == 2
    assert torch.equal(model.phase_table.detach(), torch.ones(3, dtype=torch.cfloat))


def test_a_failed_draw_changes_no_weight() -> None:
    calls = {"n": 0}

    @si.register_strategy("nan-on-second", second_moment=lambda i, o, g: 1 / i, description="test", override=True)
    def fill(weight, *, in_channels, out_channels, gain, generator):
        calls["n"] += 1
        weight.normal_(0, 1.0, generator=generator)
        if calls["n"] == 2:
            weight.view(-1)[0] = float("nan")

    model = CascadedFNOGenerator(hidden_channels=8, fno_blocks=3, modes=4, C=1, spectral_backend="fallback")
    before = complex_params(model)
    with pytest.raises(FloatingPointError, match="non-finite"):
        si.initialize_(model, "nan-on-second")
    after = complex_params(model)
    assert all(torch.equal(before[n], after[n]) for n in before)  # the first weight too


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"):
        si.initialize_(torch.zeros(3, dtype=torch.cfloat))
    with pytest.raises(UnknownStrategyError, match="did you mean 'sqrt_in'"):
        si.initialize_(nn.Linear(2, 2), "sqrt_inn")


# --- neuraloperator ----------------------------------------------------------------------------

neuralop = pytest.importorskip("neuralop")
from neuralop.layers.spectral_convolution import SpectralConv  # noqa: E402


def terms_and_tensors(weight) -> tuple[int, list[torch.Tensor]]:
    """n_terms summed per reconstructed entry, and the T random tensors, counted from the shapes."""
    kind = type(weight).__name__
    if kind == "TuckerTensor":
        return math.prod(weight.core.shape), [weight.core, *weight.factors]
    if kind == "CPTensor":
        return weight.weights.numel(), list(weight.factors)
    if kind == "TTTensor":
        return math.prod(f.shape[0] for f in list(weight.factors)[1:]), list(weight.factors)
    raise AssertionError(kind)


CASES = [(modes, fact) for modes in [(10,), (8, 8), (6, 6, 6)] for fact in ["tucker", "cp", "tt"]]


@pytest.mark.parametrize("n_modes, factorization", CASES)
def test_neuralop_factors_have_the_derived_second_moments(n_modes, factorization) -> None:
    conv = SpectralConv(12, 20, n_modes=n_modes, factorization=factorization, rank=0.5)
    report = si.initialize_(conv, {"strategy": "xavier-complex", "seed": 0})
    (entry,) = report.weights
    target = 2 / 32
    assert entry.second_moment == pytest.approx(target) and factorization in entry.kind
    n_terms, tensors = terms_and_tensors(conv.weight)
    per_tensor = (target / n_terms) ** (1 / len(tensors))
    for t in tensors:
        ComplexNormal.check_second_moment(t.detach(), per_tensor)
    if factorization == "cp":
        assert torch.equal(conv.weight.weights.detach(), torch.ones_like(conv.weight.weights))


@pytest.mark.parametrize("n_modes, factorization", CASES + [((8, 8), None)])
def test_neuralop_reconstructed_weight_has_the_strategy_second_moment(n_modes, factorization) -> None:
    conv = SpectralConv(6, 10, n_modes=n_modes, factorization=factorization, rank=0.5)
    target = 2 / 16
    means = []
    for seed in range(200):
        si.initialize_(conv, {"strategy": "xavier-complex", "seed": seed})
        means.append(conv.weight.to_tensor().detach().abs().square().mean().item() / target)
    half_width = Z * statistics.stdev(means) / math.sqrt(len(means))
    assert abs(statistics.fmean(means) - 1) <= half_width, (statistics.fmean(means), half_width)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_neuralop_models_end_to_end(dim) -> None:
    from neuralop.models import FNO, TFNO

    for model in (FNO(n_modes=(6,) * dim, hidden_channels=8, in_channels=1, out_channels=1),
                  TFNO(n_modes=(6,) * dim, hidden_channels=8, in_channels=1, out_channels=1, factorization="tt")):
        report = si.initialize_(model, {"strategy": "sqrt_in", "seed": 1})
        assert len(report.weights) == 4 and all(f"{dim}-D" in w.kind for w in report.weights)
        x = torch.randn(2, 1, *(12,) * dim)
        assert torch.isfinite(model(x)).all()


def test_our_neuralop_wrapper_is_drawn_once() -> None:
    layer = NeuralopSpectralConv2d(4, 4, 3, spectral_init="legacy")
    report = si.initialize_(layer, {"strategy": "sqrt_in", "seed": 0})
    assert [w.name for w in report.weights] == ["conv.weight.tensor"]
    assert layer.spectral_init.strategy == "sqrt_in"


def test_neuralop_separable_conv_has_fan_one() -> None:
    """y_c = w_c·x_c: one term per output, so sqrt_in gives E|w|² = 1 and preserves variance."""
    conv = SpectralConv(8, 8, n_modes=(16, 16), separable=True)
    (entry,) = si.initialize_(conv, {"strategy": "sqrt_in", "seed": 0}).weights
    assert "separable" in entry.kind and entry.geometry.in_channels == entry.geometry.out_channels == 1
    assert entry.second_moment == 1.0
    assert_second_moment(conv.weight.tensor.detach(), 1.0)


def test_spectral_layer_kinds_name_what_runs() -> None:
    from ptycho_torch import GeneratorConfig, build_generator

    assert spectral_layer_kinds(build_generator(GeneratorConfig(C=1))) == {"SpectralConv2d": 4}
    # the FFNO stack shares one factorized layer between its blocks: one layer, counted once
    ffno = build_generator(GeneratorConfig(architecture="ffno", C=1, fno_blocks=3))
    assert spectral_layer_kinds(ffno) == {"FactorizedSpectralConv2d": 1}
    assert spectral_layer_kinds(torch.nn.Linear(2, 2)) == {}
    wrapped = build_generator(GeneratorConfig(C=1, fno_blocks=2, spectral_backend="neuralop"))
    assert spectral_layer_kinds(wrapped) == {"NeuralopSpectralConv2d": 2}
    tucker = neuralop.models.FNO(n_modes=(4, 4), in_channels=1, out_channels=1, hidden_channels=4, n_layers=3,
                                 factorization="tucker", rank=0.5)
    assert spectral_layer_kinds(tucker) == {"neuralop SpectralConv 2-D tucker": 3}


def test_settings_that_ask_for_calibration_calibrate_or_refuse_never_skip_it() -> None:
    from ptycho_torch.generators import PlainFNOStack

    model = PlainFNOStack(8, depth=3, modes=4, spectral_backend="fallback")
    before = complex_params(model)
    with pytest.raises(ValueError, match="calibrate=True: pass calibration_batch="):
        si.initialize_(model, {"calibrate": True, "seed": 1})
    assert all(torch.equal(before[n], p) for n, p in complex_params(model).items())  # nothing changed
    batch = torch.randn(4, 8, 16, 16, generator=torch.Generator().manual_seed(2))
    report = si.initialize_(model, {"calibrate": True, "seed": 1}, calibration_batch=batch)
    assert report.calibration is not None and len(report.calibration.layers) == 3
    # calibrated: each spectral layer's output has second moment 1 on the batch, which a bare draw does not give
    h = batch
    for layer in model.layers:
        out = layer(h)
        assert out.double().square().mean().item() == pytest.approx(1.0, rel=1e-3)
        h = torch.relu(out)
    assert si.initialize_(model, {"seed": 1}).calibration is None
