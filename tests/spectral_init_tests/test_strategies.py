"""The built-in strategies: declared E|w|², formulas, and what they draw."""

from __future__ import annotations

import pytest
import torch
from reference_table import FORMULAS, TABLE
from stats import ComplexNormal, UniformParts, assert_second_moment

import spectral_init as si
from spectral_init.strategies.scaling import VarianceScaling, uniform_parts_


def test_builtins_are_registered() -> None:
    assert set(TABLE) <= set(si.available_strategies())


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("shape", [(1, 1), (32, 16), (16, 32), (7, 130)])
@pytest.mark.parametrize("gain", [1.0, 0.5, 3.0])
def test_declared_second_moment_matches_table(name: str, shape: tuple[int, int], gain: float) -> None:
    expected, _, _ = TABLE[name]
    assert si.get_strategy(name).second_moment(*shape, gain) == pytest.approx(expected(*shape, gain), rel=1e-12)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_formula_text(name: str) -> None:
    assert si.get_strategy(name).formula == FORMULAS[name]


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_sample_second_moment(name: str, dtype: torch.dtype) -> None:
    in_ch, out_ch, gain = 32, 16, 1.7
    expected, distribution, _ = TABLE[name]
    w = torch.empty(in_ch, out_ch, 24, 12, dtype=dtype)
    si.get_strategy(name)(
        w, in_channels=in_ch, out_channels=out_ch, gain=gain, generator=torch.Generator().manual_seed(0)
    )
    assert w.dtype == dtype
    assert_second_moment(w, expected(in_ch, out_ch, gain), distribution)


def test_fans_are_channels_not_modes() -> None:
    """torch.nn.init's fan logic would give ≈2.9e-4 here; the channel fans give 2/48."""
    w = torch.empty(32, 16, 12, 12, dtype=torch.complex64)
    si.get_strategy("xavier-complex")(w, in_channels=32, out_channels=16, generator=torch.Generator().manual_seed(1))
    assert_second_moment(w, 2 / 48)
    many_modes = torch.empty(32, 16, 48, 48, dtype=torch.complex64)
    si.get_strategy("xavier-complex")(
        many_modes, in_channels=32, out_channels=16, generator=torch.Generator().manual_seed(2)
    )
    assert_second_moment(many_modes, 2 / 48)


def test_circular_normal_parts_each_carry_half() -> None:
    """sqrt_in's real-part variance is 1/(2·in), not 1/in; exact chi-square and normal bounds."""
    in_ch = 8
    w = torch.empty(in_ch, 64, 64, 33, dtype=torch.complex128)
    si.get_strategy("sqrt_in")(w, in_channels=in_ch, out_channels=64, generator=torch.Generator().manual_seed(3))
    ComplexNormal.check_parts(w, 1 / in_ch)


def test_fno_uniform_mean_is_not_zero() -> None:
    """Re, Im in [0, a) with mean a/2 and spread a²/12, a = 1/(in·out); Bernstein bounds."""
    in_ch, out_ch = 4, 4
    w = torch.empty(in_ch, out_ch, 128, 65, dtype=torch.complex128)
    si.get_strategy("fno-uniform")(
        w, in_channels=in_ch, out_channels=out_ch, generator=torch.Generator().manual_seed(4)
    )
    UniformParts.check_parts(w, (2 / 3) / (in_ch * out_ch) ** 2)


def test_same_generator_seed_gives_identical_weights_and_leaves_global_rng() -> None:
    strategy = si.get_strategy("kaiming-complex")
    before = torch.random.get_rng_state()
    a = strategy(
        torch.empty(5, 6, 4, 3, dtype=torch.complex64),
        in_channels=5,
        out_channels=6,
        generator=torch.Generator().manual_seed(7),
    )
    b = strategy(
        torch.empty(5, 6, 4, 3, dtype=torch.complex64),
        in_channels=5,
        out_channels=6,
        generator=torch.Generator().manual_seed(7),
    )
    assert torch.equal(a, b)
    assert torch.equal(before, torch.random.get_rng_state())


def test_variance_scaling_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="fan must be one of"):
        VarianceScaling(scale=1.0, fan="fan_in", distribution="complex_normal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distribution must be one of"):
        VarianceScaling(scale=1.0, fan="in", distribution="normal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        VarianceScaling(scale=0.0, fan="in", distribution="complex_normal")


@pytest.mark.parametrize("sampler", [si.complex_normal_, uniform_parts_])
def test_samplers_fill_a_parameter_as_torch_nn_init_does(sampler) -> None:
    weight = torch.nn.Parameter(torch.zeros(4, 4, dtype=torch.cfloat))
    assert sampler(weight, 1.0, torch.Generator().manual_seed(0)) is weight
    assert weight.requires_grad and weight.grad_fn is None and bool((weight != 0).all())


def test_the_top_level_holds_one_name_per_job_and_moved_names_still_work_with_a_warning() -> None:
    import spectral_init.registry

    assert len(si.__all__) <= 15 and all(hasattr(si, name) for name in si.__all__)
    assert dir(si) == sorted(si.__all__)
    with pytest.warns(DeprecationWarning, match="from spectral_init.registry import UnknownStrategyError"):
        moved = si.UnknownStrategyError
    assert moved is spectral_init.registry.UnknownStrategyError
    for name in si._MOVED:  # every moved name resolves to its new home
        with pytest.warns(DeprecationWarning):
            assert getattr(si, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        si.no_such_name  # noqa: B018


def test_moved_submodules_still_import_from_their_old_paths_with_a_warning() -> None:
    # in a fresh process: this one has imported the old paths already (tests and benchmarks)
    import subprocess
    import sys

    script = """
import importlib, sys, warnings
import spectral_init
for old, new in spectral_init._MOVED_MODULES.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"spectral_init.{old}")
    said = [str(w.message) for w in caught if w.category is DeprecationWarning]
    print(old, module is sys.modules[f"spectral_init.{new}"], said)
print("audit", callable(spectral_init.audit))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == len(si._MOVED_MODULES) + 1 == 7
    for line, (old, new) in zip(lines, si._MOVED_MODULES.items()):
        warning = f"spectral_init.{old} moved to spectral_init.{new} (the old path will be removed in 0.5)"
        assert line == f"{old} True [{warning!r}]"
    assert lines[-1] == "audit True"  # the function, not a module, whatever was imported
