"""Properties of ``mup``: E|w|² = gain²/(b·in) · log N_b / log N over channels, branches, kept modes
(any spatial rank, anisotropic too) and bases; its samples; its learning-rate factor. Tolerances and
their false-failure probabilities: ``tests/stats.py``."""

from __future__ import annotations

import math

import torch
from draws import MAX_ELEMENTS, gains, seeds
from hypothesis import given
from hypothesis import strategies as st
from stats import ComplexNormal

import spectral_init as si
from spectral_init.geometry import SpectralGeometry
from spectral_init.strategies.mup import mup_learning_rate_factor, mup_variance_factor

MUP = si.get_strategy("mup")
channels = st.integers(1, 4096)
ranks = st.integers(1, 3)


@st.composite
def kept_modes(draw: st.DrawFn, rank: int | None = None, max_modes: int = 64) -> tuple[int, ...]:
    """Kept modes per axis of a weight of spatial rank 1–3, holding at least 2 modes in all."""
    d = rank if rank is not None else draw(ranks)
    modes = tuple(draw(st.integers(1, max_modes)) for _ in range(d))
    return modes if math.prod(modes) >= 2 else (*modes[:-1], 2)


@st.composite
def bases(draw: st.DrawFn, rank: int) -> int | tuple[int, ...]:
    return draw(st.integers(2, 64) | kept_modes(rank))


@given(in_ch=channels, out_ch=channels, branches=st.integers(1, 4), modes=kept_modes(), gain=gains, data=st.data())
def test_declared_second_moment_is_sqrt_in_times_the_log_ratio(in_ch, out_ch, branches, modes, gain, data) -> None:
    base = data.draw(bases(len(modes)))
    geometry = SpectralGeometry(in_ch, out_ch, branches, modes)
    n_base = base ** len(modes) if isinstance(base, int) else math.prod(base)
    expected = gain**2 / (branches * in_ch) * math.log(n_base) / math.log(math.prod(modes))
    assert math.isclose(MUP.second_moment(geometry=geometry, gain=gain, base_modes=base), expected, rel_tol=1e-12)


@given(in_ch=channels, out_ch=channels, d=ranks, k=st.integers(2, 4096), base=st.integers(2, 4096))
def test_variance_times_d_log_k_is_constant(in_ch, out_ch, d, k, base) -> None:
    """The paper's law, b(K)² ∝ 1/(d·log K), for an isotropic K; out never enters."""
    geometry = SpectralGeometry(in_ch, out_ch, modes=(k,) * d)
    moment = MUP.second_moment(geometry=geometry, base_modes=base)
    assert math.isclose(moment * in_ch * d * math.log(k), d * math.log(base), rel_tol=1e-12)


@given(modes=kept_modes(), data=st.data())
def test_an_anisotropic_weight_counts_by_its_number_of_modes(modes, data) -> None:
    """Any order of the axes, and any shape holding the same N modes, gives the same E|w|²."""
    base = data.draw(bases(len(modes)))
    shuffled = tuple(data.draw(st.permutations(modes)))
    one = MUP.second_moment(geometry=SpectralGeometry(4, 4, modes=modes), base_modes=base)
    assert math.isclose(one, MUP.second_moment(geometry=SpectralGeometry(4, 4, modes=shuffled), base_modes=base),
                        rel_tol=1e-12)
    flat = MUP.second_moment(geometry=SpectralGeometry(4, 4, modes=(math.prod(modes),)),
                             base_modes=(base ** len(modes) if isinstance(base, int) else math.prod(base),))
    assert math.isclose(one, flat, rel_tol=1e-12)


@given(modes=kept_modes(), data=st.data())
def test_at_the_base_mup_is_the_standard_parametrization(modes, data) -> None:
    geometry = SpectralGeometry(data.draw(channels), data.draw(channels), data.draw(st.integers(1, 3)), modes)
    assert math.isclose(MUP.second_moment(geometry=geometry, base_modes=modes),
                        si.get_strategy("sqrt_in").second_moment(geometry=geometry), rel_tol=1e-12)
    assert math.isclose(mup_learning_rate_factor(geometry, modes), 1.0, rel_tol=1e-12)


@given(modes=kept_modes(), data=st.data())
def test_the_learning_rate_factor_is_the_square_root_of_the_variance_factor(modes, data) -> None:
    base = data.draw(bases(len(modes)))
    geometry = SpectralGeometry(3, 5, modes=modes)
    variance = mup_variance_factor(geometry, base)
    assert math.isclose(mup_learning_rate_factor(geometry, base) ** 2, variance, rel_tol=1e-12)
    n, n_base = math.prod(modes), base ** len(modes) if isinstance(base, int) else math.prod(base)
    assert (variance < 1) == (n > n_base) and (variance > 1) == (n < n_base)  # more modes: smaller steps


@given(in_ch=st.integers(1, 64), out_ch=st.integers(1, 64), modes=kept_modes(max_modes=24), gain=gains,
       dtype=st.sampled_from([torch.complex64, torch.complex128]), seed=seeds, data=st.data())
def test_samples_are_circular_normal_with_the_declared_moment(in_ch, out_ch, modes, gain, dtype, seed, data) -> None:
    while in_ch * out_ch * math.prod(modes) > MAX_ELEMENTS:  # halve the largest axis: same rank, fewer elements
        largest = modes.index(max(modes))
        modes = (*modes[:largest], max(2, modes[largest] // 2), *modes[largest + 1:])
    base = data.draw(bases(len(modes)))
    geometry = SpectralGeometry(in_ch, out_ch, modes=modes)
    w = torch.empty(in_ch, out_ch, *modes, dtype=dtype)
    MUP(w, geometry=geometry, gain=gain, base_modes=base, generator=torch.Generator().manual_seed(seed))
    ComplexNormal.check_parts(w, MUP.second_moment(geometry=geometry, gain=gain, base_modes=base))
