"""``mup`` on real models, ``base_modes_of``, ``mup_param_groups`` and their errors."""

from __future__ import annotations

import math

import pydantic
import pytest
import torch
from li_layers import li_layer_class
from stats import ComplexNormal

import spectral_init as si
from spectral_init.geometry import SpectralGeometry
from spectral_init.strategies.mup import base_modes_of, mup_learning_rate_factor, mup_variance_factor

neuralop = pytest.importorskip("neuralop")


def fno(modes: int, dims: int = 2, width: int = 8) -> torch.nn.Module:
    from neuralop.models import FNO

    torch.manual_seed(0)
    return FNO(n_modes=(modes,) * dims, hidden_channels=width, in_channels=1, out_channels=1, n_layers=2)


def spectral_params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if "convs" in n and "weight" in n}


@pytest.mark.parametrize("bad", [0, -3, 1, 2.5, True, "8", (), (1, 1), (4, 0), None])
def test_a_bad_base_is_refused_naming_base_modes(bad) -> None:
    with pytest.raises(pydantic.ValidationError, match="base_modes"):
        si.SpectralInitSettings(strategy="mup", params={"base_modes": bad})
    with pytest.raises(ValueError, match="base_modes"):
        si.mup_param_groups(fno(4), 1e-3, bad)


def test_mup_without_a_base_or_without_kept_modes_says_what_it_needs() -> None:
    with pytest.raises(pydantic.ValidationError, match="base_modes"):
        si.SpectralInitSettings(strategy="mup")
    w = torch.empty(4, 4, 3, 3, dtype=torch.cfloat)
    with pytest.raises(ValueError, match="needs the kept modes"):
        si.get_strategy("mup")(w, in_channels=4, out_channels=4, base_modes=4)
    with pytest.raises(ValueError, match="keeps one mode"):
        si.get_strategy("mup")(w, geometry=SpectralGeometry(4, 4, modes=(1, 1)), base_modes=4)


def test_a_base_of_another_rank_is_refused_and_nothing_changes() -> None:
    model = fno(8)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match="base_modes .* has 1 axes; the weight has 2"):
        si.initialize_(model, {"strategy": "mup", "params": {"base_modes": (8,)}})
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_initialize_draws_the_log_ratio_below_sqrt_in_on_neuralop_fno(dims) -> None:
    small, big = fno(4, dims), fno(8 if dims == 3 else 16, dims)
    base = base_modes_of(small)
    report = si.initialize_(big, {"strategy": "mup", "params": {"base_modes": base}, "seed": 0})
    for row in report.weights:
        n, n_base = math.prod(row.geometry.modes), math.prod(base)
        assert row.second_moment == pytest.approx(math.log(n_base) / math.log(n) / 8, rel=1e-12)
        assert row.second_moment < si.get_strategy("sqrt_in").second_moment(geometry=row.geometry)
    for weight in spectral_params(big).values():
        ComplexNormal.check_second_moment(weight.detach().reshape(-1), report.weights[0].second_moment)


def layers_built_with(k: int) -> dict[str, torch.nn.Module]:
    """Every adapter's layers in every rank it has, built with ``k`` modes per axis in their own convention."""
    from neuralop.layers import legacy_spectral_convolution as legacy
    from neuralop.layers.spectral_convolution import SpectralConv

    from ptycho_torch.generators.spectral_conv import NeuralopSpectralConv2d, SpectralConv2d
    from ptycho_torch.generators.spectral_layers import FactorizedSpectralConv2d

    layers = {"SpectralConv2d": SpectralConv2d(4, 4, k), "NeuralopSpectralConv2d": NeuralopSpectralConv2d(4, 4, k),
              "FactorizedSpectralConv2d": FactorizedSpectralConv2d(4, k)}
    for d in (1, 2, 3):
        layers[f"li-{d}d"] = li_layer_class(d, False)(4, 4, *(k,) * d)
        layers[f"physicsnemo-{d}d"] = li_layer_class(d, True)(4, 4, *(k,) * d)
        layers[f"neuralop-{d}d"] = SpectralConv(4, 4, n_modes=(k,) * d)
        layers[f"neuralop-{d}d-tucker"] = SpectralConv(4, 4, n_modes=(k,) * d, factorization="tucker", rank=0.5)
        layers[f"legacy-{d}d"] = getattr(legacy, f"SpectralConv{d}d")(4, 4, n_modes=(k,) * d)
    return layers


@pytest.mark.parametrize("k", [4, 6, 9])
def test_an_integer_base_is_the_layers_own_mode_count_and_the_identity_there(k) -> None:
    # the docs' recipe (`base_modes: 6` with `--fno-modes 6`) read 6 as 6² kept modes where the layer keeps
    # 12 × 6: E|w|² ×0.838 of sqrt_in's at the base itself, neuraloperator's (8, 8) ×1.127
    for name, layer in layers_built_with(k).items():
        plans, _ = si.adapters.discovery.find_spectral_weights(layer)
        assert plans, name
        for plan in plans:
            assert mup_variance_factor(plan.geometry, k) == pytest.approx(1, rel=1e-12), name
            assert mup_learning_rate_factor(plan.geometry, k) == pytest.approx(1, rel=1e-12), name
            # and the base's tuple (base_modes_of) says the same
            assert mup_variance_factor(plan.geometry, plan.geometry.modes) == pytest.approx(1, rel=1e-12), name


def test_the_generators_base_is_its_fno_modes() -> None:
    from ptycho_torch import GeneratorConfig, build_generator

    config = GeneratorConfig(N=32, fno_modes=6, spectral_init={"strategy": "mup", "params": {"base_modes": 6}})
    reference = si.initialize_(build_generator(config), {"strategy": "sqrt_in", "seed": 0})
    report = si.initialize_(build_generator(config), config.spectral_init)
    assert [w.second_moment for w in report.weights] == pytest.approx([w.second_moment for w in reference.weights],
                                                                      rel=1e-12)


def test_base_modes_of_reads_the_weights_modes_and_refuses_a_mixed_model() -> None:
    assert base_modes_of(fno(8)) == (8, 5)  # n_modes (8, 8): the last axis is rfft's half spectrum
    mixed = torch.nn.Sequential(fno(4), fno(8))
    with pytest.raises(ValueError, match="keep different modes .*\\(4, 3\\).*\\(8, 5\\)"):
        base_modes_of(mixed)
    with pytest.raises(ValueError, match="no layer adapter"):
        base_modes_of(torch.nn.Linear(2, 2))


def test_param_groups_cover_every_parameter_once_at_the_mup_rates() -> None:
    model = torch.nn.Sequential(fno(4), fno(16))  # two K: each spectral weight gets its own factor
    groups = si.mup_param_groups(model, 2e-3, base_modes=(4, 3), weight_decay=1e-4)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    assert all(g["weight_decay"] == 1e-4 for g in groups)
    rates = {id(p): g["lr"] for g in groups for p in g["params"]}
    for index, modes in ((0, (4, 3)), (1, (16, 9))):
        for p in spectral_params(model[index]).values():
            factor = mup_learning_rate_factor(SpectralGeometry(8, 8, modes=modes), (4, 3))
            assert rates[id(p)] == pytest.approx(2e-3 * factor, rel=1e-12)
    others = [p for n, p in model.named_parameters() if not ("convs" in n and "weight" in n)]
    assert others and all(rates[id(p)] == 2e-3 for p in others)


def test_adams_first_step_moves_each_spectral_weight_by_its_rate() -> None:
    """Adam's first step is lr·sign(g) per entry (up to ε): the spectral entries move by lr·√(log N_b/log N)."""
    model = fno(16)
    before = {n: p.detach().clone() for n, p in spectral_params(model).items()}
    optimizer = torch.optim.Adam(si.mup_param_groups(model, 1e-2, base_modes=4), eps=1e-30)
    model(torch.randn(2, 1, 32, 32)).square().mean().backward()
    optimizer.step()
    factor = math.sqrt(math.log(4 * 3) / math.log(16 * 9))  # base: n_modes (4, 4) keeps 4 × 3
    for name, param in spectral_params(model).items():
        step = torch.view_as_real(param.detach() - before[name]).abs()
        moved = step[step > 0]
        assert moved.numel() > 0.9 * step.numel()
        assert moved.max().item() == pytest.approx(1e-2 * factor, rel=1e-4)


@pytest.mark.parametrize("lr", [0, -1e-3, math.nan, math.inf, True, "1e-3"])
def test_a_bad_learning_rate_is_refused(lr) -> None:
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        si.mup_param_groups(fno(4), lr, base_modes=4)


def test_a_model_without_spectral_weights_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing to scale"):
        si.mup_param_groups(torch.nn.Linear(3, 3), 1e-3, base_modes=4)
