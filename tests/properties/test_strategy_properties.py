"""Properties of every registered strategy: its declared E|w|², its samples, circularity, finiteness,
reproducibility. Tolerances and their false-failure probabilities: ``tests/stats.py``."""

from __future__ import annotations

import pytest
import torch
from draws import complex_dtypes, extreme_channels, gains, seeds, weight_shapes
from hypothesis import assume, given
from hypothesis import strategies as st
from reference_table import TABLE
from stats import STUDENTIZED_MIN_N, Studentized, family

import spectral_init as si
from spectral_init.spectral_initializer import init_spectral_weight_


def draw_weights(name: str, shape: tuple[int, ...], dtype: torch.dtype, gain: float, seed: int) -> torch.Tensor:
    w = torch.empty(shape, dtype=dtype)
    return si.get_strategy(name)(
        w, in_channels=shape[0], out_channels=shape[1], gain=gain, generator=torch.Generator().manual_seed(seed)
    )


@given(shape=weight_shapes(), gain=gains, dtype=complex_dtypes, seed=seeds)
def test_sample_second_moment_matches_the_declared_one(strategy_name, shape, gain, dtype, seed) -> None:
    strategy = si.get_strategy(strategy_name)
    fam = family(strategy.distribution)
    n = shape[0] * shape[1] * shape[2] * shape[3]
    assume(fam is not Studentized or n >= STUDENTIZED_MIN_N)
    w = draw_weights(strategy_name, shape, dtype, gain, seed)
    assert w.dtype == dtype and w.shape == shape
    fam.check_second_moment(w, strategy.second_moment(shape[0], shape[1], gain))


@given(shape=weight_shapes(), gain=gains, dtype=complex_dtypes, seed=seeds)
def test_parts_follow_the_declared_distribution(strategy_name, shape, gain, dtype, seed) -> None:
    """Circular: each part carries E|w|²/2, means 0, parts uncorrelated. fno-uniform: its own mean and spread."""
    strategy = si.get_strategy(strategy_name)
    fam = family(strategy.distribution)
    if fam is Studentized:
        pytest.skip(f"{strategy_name} declares a distribution this suite has no law for: {strategy.distribution!r}")
    w = draw_weights(strategy_name, shape, dtype, gain, seed)
    fam.check_parts(w, strategy.second_moment(shape[0], shape[1], gain))


@given(
    channels=st.tuples(st.integers(1, 128), st.integers(1, 128)),
    modes_a=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    modes_b=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    gain=gains,
    seed=seeds,
)
def test_fans_are_channels_only(strategy_name, channels, modes_a, modes_b, gain, seed) -> None:
    """Two mode shapes, one declared E|w|²: each sample matches it (so neither fan counts modes)."""
    strategy = si.get_strategy(strategy_name)
    fam = family(strategy.distribution)
    expected = strategy.second_moment(*channels, gain)
    for k, (mx, my) in enumerate((modes_a, modes_b)):
        my = max(1, min(my, 2**21 // (channels[0] * channels[1] * mx)))
        n = channels[0] * channels[1] * mx * my
        if fam is Studentized and n < STUDENTIZED_MIN_N:
            continue
        fam.check_second_moment(
            draw_weights(strategy_name, (*channels, mx, my), torch.complex64, gain, seed + k), expected
        )


@given(in_ch=st.integers(1, 4096), out_ch=st.integers(1, 4096), gain=gains, factor=gains)
def test_gain_enters_squared(strategy_name, in_ch, out_ch, gain, factor) -> None:
    strategy = si.get_strategy(strategy_name)
    scaled = strategy.second_moment(in_ch, out_ch, gain * factor)
    assert abs(scaled / (factor**2 * strategy.second_moment(in_ch, out_ch, gain)) - 1) < 1e-12


@given(in_ch=st.integers(1, 4096), out_ch=st.integers(1, 4096), gain=gains)
def test_builtin_declared_moments_follow_their_laws_exactly(in_ch, out_ch, gain) -> None:
    """The table's formulas, and the scaling laws they promise, at any channel counts."""
    for name, (expected, _, _) in TABLE.items():
        assert abs(si.get_strategy(name).second_moment(in_ch, out_ch, gain) / expected(in_ch, out_ch, gain) - 1) < 1e-12
    moment = {name: si.get_strategy(name).second_moment(in_ch, out_ch, gain) / gain**2 for name in TABLE}
    assert abs(in_ch * moment["sqrt_in"] - 1) < 1e-12  # in·E|w|² constant
    assert abs((in_ch + out_ch) * moment["xavier-complex"] / 2 - 1) < 1e-12  # (in+out)·E|w|²/2 constant
    assert abs(moment["kaiming-complex"] / moment["sqrt_in"] - 2) < 1e-12
    assert abs((in_ch * out_ch) ** 2 * moment["legacy"] - 1) < 1e-12


@given(channels=extreme_channels(), gain=st.sampled_from([1e-3, 1.0, 1e3]) | gains, dtype=complex_dtypes, seed=seeds)
def test_draws_are_finite_and_not_flushed_to_zero(strategy_name, channels, gain, dtype, seed) -> None:
    w = draw_weights(strategy_name, (*channels, 1, 1), dtype, gain, seed)
    parts = torch.view_as_real(w)
    assert torch.isfinite(parts).all()
    assert (w != 0).any()


@given(shape=weight_shapes(max_channels=32, max_modes=8), gain=gains, dtype=complex_dtypes, seed=seeds)
def test_same_seed_same_bits_and_the_global_rng_untouched(strategy_name, shape, gain, dtype, seed) -> None:
    before = torch.random.get_rng_state()
    a = draw_weights(strategy_name, shape, dtype, gain, seed)
    b = draw_weights(strategy_name, shape, dtype, gain, seed)
    assert torch.equal(torch.view_as_real(a), torch.view_as_real(b))
    assert torch.equal(before, torch.random.get_rng_state())
    settings = {"strategy": strategy_name, "gain": gain, "seed": seed}
    c, d = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)
    init_spectral_weight_(c, in_channels=shape[0], out_channels=shape[1], spectral_init=settings)
    init_spectral_weight_(d, in_channels=shape[0], out_channels=shape[1], spectral_init=settings)
    assert torch.equal(torch.view_as_real(c), torch.view_as_real(d))
    assert torch.equal(before, torch.random.get_rng_state())


@given(shape=weight_shapes(max_channels=128, max_modes=24), dtype=complex_dtypes, seed=seeds, threads=st.integers(2, 8))
def test_cpu_draws_do_not_depend_on_the_thread_count(strategy_name, shape, dtype, seed, threads) -> None:
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = draw_weights(strategy_name, shape, dtype, 1.0, seed)
        torch.set_num_threads(threads)
        many = draw_weights(strategy_name, shape, dtype, 1.0, seed)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(torch.view_as_real(one), torch.view_as_real(many))


@given(shape=weight_shapes(max_modes=12), branches=st.integers(1, 2), gain=gains, dtype=complex_dtypes, seed=seeds)
def test_sample_matches_the_declared_moment_for_any_geometry(strategy_name, shape, branches, gain, dtype, seed) -> None:
    """Drawn through the geometry of a 2-D (1 branch) or factorized (2 branches) layer with any kept modes, the
    sample matches what the strategy declares for that geometry."""
    strategy = si.get_strategy(strategy_name)
    fam = family(strategy.distribution)
    assume(fam is not Studentized or torch.Size(shape).numel() >= STUDENTIZED_MIN_N)
    geometry = si.SpectralGeometry(shape[0], shape[1], branches=branches, modes=shape[2:])
    w = strategy(
        torch.empty(shape, dtype=dtype), geometry=geometry, gain=gain, generator=torch.Generator().manual_seed(seed)
    )
    fam.check_second_moment(w, strategy.second_moment(geometry=geometry, gain=gain))


@given(in_ch=st.integers(1, 4096), out_ch=st.integers(1, 4096), branches=st.integers(1, 8), gain=gains)
def test_builtin_variance_preserving_fans_count_summed_branches(in_ch, out_ch, branches, gain) -> None:
    """b summed branches: fan_in = b·in, fan_out = b·out; the literal reference draws ignore b."""
    geometry = si.SpectralGeometry(in_ch, out_ch, branches=branches)
    for name, (expected, _, _) in TABLE.items():
        declared = si.get_strategy(name).second_moment(geometry=geometry, gain=gain)
        assert abs(declared / expected(in_ch, out_ch, gain, branches) - 1) < 1e-12, name
    sqrt_in = si.get_strategy("sqrt_in").second_moment(geometry=geometry)
    assert abs(branches * in_ch * sqrt_in - 1) < 1e-12  # Var(y) = b·in·E|w|²·Var(x) = Var(x)
