"""Layer adapters: every spectral layer one can pip install or copy, found, drawn to its target, audited.

The Li et al. layer (complex ``weights<k>``) and NVIDIA PhysicsNeMo's (the same layer with real
(…, 2) weights) are re-implemented here faithfully (PhysicsNeMo does not import on these machines):
attributes, parameter names, shapes, their own 1/(in·out)·U[0,1) draw and their forward pass.

Statistics. A weight drawn from a circular complex normal is checked with ``tests/stats.py``'s exact
intervals (false-failure probability ≤ 10⁻⁷ per check): all corners of a layer and all seeds pooled,
so the bound is tight. A factorized weight's reconstructed entries are sums of products of normals;
their per-seed mean |W|² is checked over 200 seeds by the studentized CLT at Z = 5.33 (approximate,
as in ``test_initialize.py``).
"""

from __future__ import annotations

import json
import math
import statistics
import warnings

import pytest
import torch
import torch.nn as nn
from li_layers import li_layer_class
from plugins import installed
from stats import ComplexNormal, Z

import spectral_init as si
from spectral_init import cli
from spectral_init.adapters import (
    ADAPTERS,
    LAYER_ADAPTER_ENTRY_POINT_GROUP,
    UnknownLayerAdapterError,
    get_layer_adapter,
)
from spectral_init.analysis.audit import IdenticalSpectralWeightsWarning
from spectral_init.initialize_model import UnrecognizedSpectralWeightWarning, spectral_layer_kinds

neuralop = pytest.importorskip("neuralop")
from neuralop.layers import legacy_spectral_convolution as legacy  # noqa: E402
from neuralop.layers.spectral_convolution import SpectralConv  # noqa: E402


def layer_cases() -> dict[str, tuple]:
    """name → (builder, spatial rank, expected adapter, expected kept modes, dense?) of small layers."""
    cases: dict[str, tuple] = {}
    for d in (1, 2, 3):
        modes = (4, 3, 2)[:d]
        kept = (*(2 * m for m in modes[:-1]), modes[-1])
        cases[f"li-{d}d"] = (lambda d=d, modes=modes: li_layer_class(d, False)(6, 10, *modes), d, "li-fno", kept, True)
        cases[f"physicsnemo-{d}d"] = (lambda d=d, modes=modes: li_layer_class(d, True)(6, 10, *modes), d, "li-fno",
                                       kept, True)
    cases["physicsnemo-4d"] = (lambda: li_layer_class(4, True)(6, 10, 2, 2, 2, 2), 4, "li-fno", (4, 4, 4, 2), True)
    for d, cls in ((1, legacy.SpectralConv1d), (2, legacy.SpectralConv2d), (3, legacy.SpectralConv3d)):
        cases[f"legacy-{d}d"] = (lambda cls=cls, d=d: cls(6, 10, n_modes=(8, 6, 4)[:d]), d,
                                 "neuralop-legacy-spectral-conv", (8, 6, 2)[:d - 1] + ((8, 6, 4)[d - 1] // 2,), True)
    for fact in ("tucker", "cp", "tt"):
        cases[f"legacy-2d-{fact}"] = (lambda fact=fact: legacy.SpectralConv2d(6, 10, n_modes=(8, 6),
                                                                             factorization=fact, rank=0.5),
                                      2, "neuralop-legacy-spectral-conv", (8, 3), False)
    cases["legacy-2d-joint"] = (lambda: legacy.SpectralConv2d(6, 10, n_modes=(8, 6), joint_factorization=True,
                                                              n_layers=2), 2, "neuralop-legacy-spectral-conv",
                                (8, 3), True)
    cases["neuralop-2d"] = (lambda: SpectralConv(6, 10, n_modes=(8, 6)), 2, "neuralop-spectral-conv", (8, 4), True)
    return cases


CASES = layer_cases()
DENSE = [name for name, case in CASES.items() if case[4]]
TARGET = 2 / 16  # xavier-complex for in = 6, out = 10, one branch


def spectral_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The (reconstructed) complex weights as the adapters see them."""
    plans, _ = si.adapters.discovery.find_spectral_weights(model)
    return [plan.dense() for plan in plans]


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_layer_is_recognized_with_its_geometry(name) -> None:
    build, d, adapter, kept, _ = CASES[name]
    layer = build()
    report = si.initialize_(layer, {"strategy": "xavier-complex", "seed": 0})
    corners = 1 if "joint" in name or name.startswith("neuralop") else 2 ** (d - 1)
    assert report.per_adapter == {adapter: corners}
    for w in report.weights:
        assert (w.geometry.in_channels, w.geometry.out_channels, w.geometry.branches) == (6, 10, 1)
        assert w.geometry.modes == kept and w.second_moment == pytest.approx(TARGET)


@pytest.mark.parametrize("name", DENSE)
def test_dense_and_real_view_weights_are_drawn_from_the_strategy(name) -> None:
    """Every corner, pooled over 5 seeds: E|w|², both parts, zero means, no correlation (exact bounds).

    For a real (…, 2) layout this also proves the imaginary part was written, not dropped.
    """
    layer = CASES[name][0]()
    draws = []
    for seed in range(5):
        si.initialize_(layer, {"strategy": "xavier-complex", "seed": seed})
        draws += [w.detach().reshape(-1).clone() for w in spectral_tensors(layer)]
    pooled = torch.cat(draws)
    ComplexNormal.check_second_moment(pooled, TARGET)
    ComplexNormal.check_parts(pooled, TARGET)


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if not CASES[n][4]])
def test_factorized_legacy_weights_reconstruct_to_the_target_over_seeds(name) -> None:
    layer = CASES[name][0]()
    ratios = []
    for seed in range(200):
        si.initialize_(layer, {"strategy": "xavier-complex", "seed": seed})
        ratios.append(statistics.fmean(w.abs().square().mean().item() for w in spectral_tensors(layer)) / TARGET)
    half_width = Z * statistics.stdev(ratios) / math.sqrt(len(ratios))
    assert abs(statistics.fmean(ratios) - 1) <= half_width, (statistics.fmean(ratios), half_width)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_forward_output_changes_and_stays_finite(name) -> None:
    build, d, *_ = CASES[name]
    torch.manual_seed(0)
    layer = build()
    x = torch.randn(2, 6, *(8,) * d)
    before = layer(x).detach()
    si.initialize_(layer, {"strategy": "kaiming-complex", "seed": 1})
    after = layer(x).detach()
    assert torch.isfinite(after).all() and not torch.allclose(before, after)


def test_li_layers_own_draw_is_fno_uniform() -> None:
    """Their 1/(in·out)·U[0,1) parts: the audit sees fno-uniform's E|w|² and a mean far from 0."""
    layer = li_layer_class(2, True)(16, 16, 8, 8)
    report = si.audit(layer)
    target = si.get_strategy("fno-uniform").second_moment(16, 16)
    for row in report.rows:
        assert row.ratios["fno-uniform"] == pytest.approx(1, rel=0.1)
        assert abs(row.mean) / math.sqrt(row.second_moment) > 0.8  # (1+i)/2·a over √(2/3)·a: 0.87
        assert row.flagged and row.second_moment == pytest.approx(target, rel=0.1)


def test_a_failed_draw_leaves_every_weight_as_it_was(isolated_registry) -> None:
    calls = {"n": 0}

    @si.register_strategy("nan-on-third", second_moment=lambda i, o, g: 1 / i, description="test")
    def fill(weight, *, in_channels, out_channels, gain, generator):
        calls["n"] += 1
        weight.normal_(0, 1.0, generator=generator)
        if calls["n"] == 3:
            weight.view(-1)[0] = float("nan")

    model = nn.Sequential(li_layer_class(2, True)(4, 4, 2, 2), legacy.SpectralConv2d(4, 4, n_modes=(4, 4)))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(FloatingPointError, match="non-finite"):
        si.initialize_(model, "nan-on-third")
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_a_shared_layer_is_drawn_once_and_reported_once() -> None:
    shared = li_layer_class(2, False)(4, 4, 2, 2)
    model = nn.Sequential(shared, nn.GELU(), shared)
    report = si.initialize_(model, {"strategy": "sqrt_in", "seed": 0})
    assert [w.name for w in report.weights] == ["0.weights1", "0.weights2"]
    assert spectral_layer_kinds(model) == {"Li et al. SpectralConv2d (complex)": 1}


def test_calibrate_reaches_the_target_through_the_adapters() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(li_layer_class(2, True)(4, 4, 3, 3), nn.ReLU(), legacy.SpectralConv2d(4, 4, n_modes=(6, 6)))
    batch = torch.randn(4, 4, 12, 12)
    report = si.calibrate_(model, batch)
    assert [layer.kind.split()[0] for layer in report.layers] == ["Li", "neuralop"]
    assert model[0](batch).square().mean().item() == pytest.approx(1, rel=1e-4)


# --- never a silent no-op ---------------------------------------------------------------------------

class FourierBlock(nn.Module):
    """Holds a real (…, 2) parameter no adapter knows, beside a torch Conv2d whose kernel is (…, 2) wide."""

    def __init__(self) -> None:
        super().__init__()
        self.spectral = li_layer_class(2, False)(4, 4, 2, 2)
        self.local = nn.Conv2d(4, 4, kernel_size=(3, 2))
        self.mystery = nn.Parameter(torch.ones(4, 4, 3, 2))


def test_strict_refuses_a_spectral_looking_parameter_before_any_change() -> None:
    model = FourierBlock()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match=r"'mystery' \(4, 4, 3, 2\) float32.*Nothing was changed") as error:
        si.initialize_(model, "sqrt_in")
    assert "local.weight" not in str(error.value)  # torch.nn's own conv kernel is not taken for a spectral weight
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    with pytest.warns(UnrecognizedSpectralWeightWarning, match="mystery"):
        report = si.initialize_(model, "sqrt_in", strict=False)
    assert report.skipped == ["mystery"] and report.per_adapter == {"li-fno": 2}
    assert torch.equal(model.mystery.detach(), torch.ones(4, 4, 3, 2))


def test_a_model_with_no_recognized_spectral_weight_is_refused() -> None:
    model = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="no layer adapter recognizes a spectral weight"):
        si.initialize_(model, "sqrt_in")
    with pytest.warns(UnrecognizedSpectralWeightWarning, match="no layer adapter"):
        assert si.initialize_(model, "sqrt_in", strict=False).weights == []


def test_the_legacy_layer_without_its_adapter_is_refused_not_skipped(monkeypatch) -> None:
    """The original defect: legacy real-view weights went unseen and the report said 0 weights."""
    monkeypatch.setattr(ADAPTERS, "_items", {k: v for k, v in ADAPTERS._items.items()
                                             if v.name != "neuralop-legacy-spectral-conv"})
    with pytest.raises(ValueError, match=r"'weight\.0\.tensor' \(8, 8, 3, 3, 2\) float32"):
        si.initialize_(legacy.SpectralConv2d(8, 8, n_modes=(6, 6)), "xavier-complex")


def test_a_third_party_adapter_from_an_entry_point() -> None:
    with installed(("mixer", "plugins.adapter_plugin"), group=LAYER_ADAPTER_ENTRY_POINT_GROUP):
        from plugins.adapter_plugin import FourierMixer

        assert "plugin-fourier-mixer" in si.available_layer_adapters()
        layer = FourierMixer(8, 5)
        report = si.initialize_(layer, {"strategy": "sqrt_in", "seed": 0})
        assert report.per_adapter == {"plugin-fourier-mixer": 1}
        ComplexNormal.check_second_moment(torch.view_as_complex(layer.mix.detach()), 1 / 8)
    assert "plugin-fourier-mixer" not in si.available_layer_adapters()
    with pytest.raises(UnknownLayerAdapterError, match="did you mean 'li-fno'"):
        get_layer_adapter("li_fn")


def test_spherical_conv_where_torch_harmonics_imports() -> None:
    adapter = get_layer_adapter("neuralop-spherical-conv")
    try:
        from neuralop.layers.spherical_convolution import SphericalConv
    except ImportError:
        assert "torch_harmonics" in adapter.unavailable()
        pytest.skip("torch_harmonics does not import here")
    assert adapter.unavailable() is None
    layer = SphericalConv(6, 10, n_modes=(8, 8), factorization="dense")
    report = si.initialize_(layer, {"strategy": "xavier-complex", "seed": 0})
    assert report.per_adapter == {"neuralop-spherical-conv": 1} and report.weights[0].geometry.modes == (8,)
    ComplexNormal.check_second_moment(spectral_tensors(layer)[0].reshape(-1), TARGET)


# --- audit ------------------------------------------------------------------------------------------

def test_audit_flags_neuralops_tt_init_and_reads_only() -> None:
    from neuralop.models import TFNO

    model = TFNO(n_modes=(8, 8), hidden_channels=16, in_channels=1, out_channels=1, factorization="tt", rank=0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = si.audit(model)
    assert len(report.rows) == 4 and len(report.flagged) == 4
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert set(report.strategies) >= set(si.available_strategies())
    si.initialize_(model, {"strategy": "sqrt_in", "seed": 0})
    assert si.audit(model).flagged == []


@pytest.mark.parametrize("architecture", ["fno", "hybrid", "fno_vanilla", "ffno", "plain_fno"])
def test_audit_flags_nothing_in_our_generators_with_sqrt_in(architecture) -> None:
    from ptycho_torch import GeneratorConfig, build_generator

    model = build_generator(GeneratorConfig(architecture=architecture, N=32, fno_width=16, fno_modes=6,
                                            spectral_init={"strategy": "sqrt_in", "seed": 0}))
    report = si.audit(model)
    assert report.rows and report.flagged == []
    assert all(r.ratios["sqrt_in"] == pytest.approx(1, rel=0.25) for r in report.rows)
    assert all(len(line) <= 100 for line in str(report).splitlines())


def test_audit_warns_of_layers_seeded_alike_and_initialize_tells_them_apart() -> None:
    from ptycho_torch.generators import PtychoBlock

    def assembled() -> nn.Sequential:  # a user's model: each block given the same seed
        return nn.Sequential(*(PtychoBlock(8, 4, {"strategy": "sqrt_in", "seed": 0}) for _ in range(3)))

    model = assembled()
    with pytest.warns(IdenticalSpectralWeightsWarning, match="0.spectral.weights, 1.spectral.weights, 2.spectral"):
        report = si.audit(model)
    assert report.identical == [["0.spectral.weights", "1.spectral.weights", "2.spectral.weights"]]
    assert "identical values: 0.spectral.weights" in str(report) and report.to_json_dict()["identical"]
    # one seed for the model: the same model twice, its layers different, and audit has nothing to say
    again = assembled()
    for m in (model, again):
        si.initialize_(m, {"strategy": "sqrt_in", "seed": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert si.audit(model).identical == []
    weights = [b.spectral.weights for b in model]
    assert not torch.equal(weights[0], weights[1])
    assert all(torch.equal(w, b.spectral.weights) for w, b in zip(weights, again))


def test_audit_cli(capsys) -> None:
    kwargs = json.dumps({"n_modes": [8, 8], "hidden_channels": 8, "in_channels": 1, "out_channels": 1,
                         "factorization": "tt", "rank": 0.5})
    assert cli.main(["audit", "neuralop.models:TFNO", "--kwargs", kwargs]) == 0
    out = capsys.readouterr().out
    assert out.count("YES") == 4 and max(map(len, out.splitlines())) <= 100
    assert cli.main(["audit", "neuralop.models:TFNO", "--kwargs", kwargs, "--json", "--strategies", "legacy"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["strategies"] == ["legacy", "sqrt_in", "xavier-complex", "kaiming-complex"]
    assert all(row["flagged"] for row in record["rows"])
    # --strict: a flagged weight fails (exit 1), a model at its target passes, and one with nothing to check fails
    assert cli.main(["audit", "neuralop.models:TFNO", "--kwargs", kwargs, "--strict"]) == 1
    dense = json.dumps({"n_modes": [8, 8], "hidden_channels": 8, "in_channels": 1, "out_channels": 1})
    assert cli.main(["audit", "neuralop.models:FNO", "--kwargs", dense, "--strict"]) == 0
    assert cli.main(["audit", "torch.nn:Linear", "--kwargs", '{"in_features": 2, "out_features": 2}', "--strict"]) == 1


def test_audit_cli_shows_an_asked_for_strategy_and_says_where_it_has_no_target(capsys) -> None:
    one_d = json.dumps({"n_modes": [8], "hidden_channels": 8, "in_channels": 1, "out_channels": 1})
    assert cli.main(["audit", "neuralop.models:FNO", "--kwargs", one_d, "--strategies", "edge-of-chaos"]) == 0
    out = capsys.readouterr().out
    assert "÷edge-of" in out and max(map(len, out.splitlines())) <= 100  # its column
    assert "no target" not in out  # edge-of-chaos models 1-D layers too
    assert cli.main(["audit", "neuralop.models:FNO", "--kwargs", one_d, "--strategies", "mup"]) == 0
    out = capsys.readouterr().out
    assert "÷mup" in out and max(map(len, out.splitlines())) <= 100  # its column, even where it is empty
    assert "— mup: no target at some weights (its target needs its parameters (base_modes))" in out


@pytest.mark.parametrize("argv, message", [
    (["audit", "no_such_module_xyz:Model"], "cannot import module 'no_such_module_xyz'"),
    (["audit", "neuralop.models:NoSuch"], "has no 'NoSuch'"),
    (["audit", "neuralop.models"], "expected MODULE:FACTORY"),
    (["audit", "neuralop.models:TFNO", "--kwargs", "{bad"], "--kwargs is not JSON"),
    (["audit", "neuralop.models:TFNO", "--kwargs", "[1]"], "must be a JSON object"),
    (["audit", "neuralop.models:TFNO"], "raised TypeError"),
    (["audit", "math:sqrt", "--kwargs", '{"x": 4}'], "raised TypeError"),
    (["audit", "collections:OrderedDict"], "returned OrderedDict, not a torch.nn.Module"),
    (["audit", "neuralop.models:TFNO", "--strategies", "sqrt_inn"], "did you mean 'sqrt_in'"),
])
def test_audit_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys) -> None:
    assert cli.main([*argv, "--threads", "1"]) == 2  # a busy machine's thread note would be a second line
    err = capsys.readouterr().err
    assert err.startswith("spectral-init: error:") and message in err and len(err.strip().splitlines()) == 1


def test_adapters_cli_lists_every_adapter_in_order(capsys) -> None:
    assert cli.main(["adapters", "--json"]) == 0
    names = [a["name"] for a in json.loads(capsys.readouterr().out)]
    assert names[:5] == ["spectral-weights-protocol", "neuralop-spectral-conv", "neuralop-legacy-spectral-conv",
                         "neuralop-spherical-conv", "li-fno"]
    assert cli.main(["adapters"]) == 0
    assert all(len(line) <= 100 for line in capsys.readouterr().out.splitlines())
