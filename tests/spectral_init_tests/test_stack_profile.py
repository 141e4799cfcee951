"""``relu_stack_profile``: the mean field of a deep plain ReLU stack, layer by layer."""

from __future__ import annotations

import doctest
import math

import pytest
from stats import Z

import spectral_init as si
import spectral_init.analysis.stack_profile as stack_profile
from spectral_init.analysis.stack_profile import relu_stack_profile
from spectral_init.strategies.edge_of_chaos import kept_energy_fractions, transfer

# (geometry, resolution): 1-D, 2-D FNO, 2-D factorized (two summed branches), 3-D
GEOMETRIES = [
    (si.SpectralGeometry(8, 8, 1, (7,)), 128),
    (si.SpectralGeometry(8, 8, 1, (24, 12)), 64),
    (si.SpectralGeometry(8, 8, 2, (12, 12)), 64),
    (si.SpectralGeometry(8, 8, 1, (8, 8, 5)), 16),
]


def _edge_of_chaos(geometry: si.SpectralGeometry, resolution: int) -> float:
    return si.get_strategy("edge-of-chaos").second_moment(geometry=geometry, resolution=resolution)


def test_the_docstring_example_holds() -> None:
    assert doctest.testmod(stack_profile).failed == 0


@pytest.mark.parametrize(("geometry", "resolution"), GEOMETRIES)
def test_deep_in_the_stack_the_gains_are_the_fixed_points(geometry, resolution) -> None:
    """Layer by layer the spectra settle into edge_of_chaos's fixed point (solved there by its own iteration):
    at its E|w|² a layer deep in the stack keeps the forward second moment (gain 1) and multiplies the
    backpropagated one by ρ_b/ρ_f."""
    profile = relu_stack_profile(geometry, resolution, 500, _edge_of_chaos(geometry, resolution))
    rho_f, rho_b = kept_energy_fractions(geometry, resolution, "relu")
    middle = 250  # 250 layers from the white input and from the white output gradient (settled by 200)
    assert profile.forward[middle] / profile.forward[middle - 1] == pytest.approx(1, rel=1e-6)
    assert profile.backward[middle - 1] / profile.backward[middle] == pytest.approx(rho_b / rho_f, rel=1e-6)


@pytest.mark.parametrize(("geometry", "resolution"), GEOMETRIES)
def test_the_first_layers_see_white_spectra(geometry, resolution) -> None:
    """The white input reaches the first layer whole (no relu halves it); the white output gradient loses what
    the last layer does not pass: each by b·C·σ² times T's mean over the grid (×1/2 through relu')."""
    moment = 0.01
    profile = relu_stack_profile(geometry, resolution, 5, moment)
    mean_t = transfer(geometry, *(resolution,) * geometry.spatial_rank).mean().item()
    assert profile.forward[0] == pytest.approx(geometry.fan_in * moment * mean_t, rel=1e-9)
    assert profile.backward[-2] == pytest.approx(geometry.fan_out * moment / 2 * mean_t, rel=1e-9)
    assert profile.backward[-1] == 1


def test_each_layer_scales_with_e_w2() -> None:
    """A ReLU stack is positively homogeneous: E|w|² × s multiplies E[z_l²] by s^l, and E[g_l²] by s^(L-l)."""
    geometry, resolution = GEOMETRIES[0]
    depth, s = 9, 1.7
    base = relu_stack_profile(geometry, resolution, depth, 0.02)
    scaled = relu_stack_profile(geometry, resolution, depth, 0.02 * s)
    for layer in range(1, depth + 1):
        assert scaled.forward[layer - 1] / base.forward[layer - 1] == pytest.approx(s**layer, rel=1e-9)
        assert scaled.backward[layer - 1] / base.backward[layer - 1] == pytest.approx(s ** (depth - layer), rel=1e-9)
    assert scaled.forward_ratio / base.forward_ratio == pytest.approx(s ** (depth - 2), rel=1e-9)


def test_one_layer_has_unit_ratios() -> None:
    geometry, resolution = GEOMETRIES[0]
    profile = relu_stack_profile(geometry, resolution, 1, 0.05)
    assert len(profile.forward) == len(profile.backward) == 1
    assert profile.forward_ratio == profile.backward_ratio == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"geometry": si.SpectralGeometry(8, 8)}, "needs the layer's kept modes"),
    ({"geometry": si.SpectralGeometry(8, 16, 1, (7,))}, "square layers; got in_channels 8 → out_channels 16"),
    ({"depth": 0}, "depth must be an integer >= 1"),
    ({"depth": True}, "depth must be an integer >= 1"),
    ({"depth": 5000}, "depth must be at most 4096; got 5000"),
    ({"second_moment": 0.0}, r"second_moment \(E\|w\|²\) must be a finite number > 0; got 0.0"),
    ({"second_moment": math.nan}, "must be a finite number > 0; got nan"),
    ({"second_moment": True}, "must be a finite number > 0; got True"),
    ({"resolution": (64, 64)}, "resolution .* has 2 sizes; this layer has 1 spatial axes"),
])
def test_bad_input_is_named(kwargs, message) -> None:
    call = {"geometry": GEOMETRIES[0][0], "resolution": 128, "depth": 4, "second_moment": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        relu_stack_profile(**call)


# --- against the real layers ----------------------------------------------------------------------
# The profile gives expectations over draws at infinite width. Measured at the benchmark's 1-D case (width 32),
# the means sit a little below it: forward 1.011 ± 0.023 against 1.056, backward second moment 15.05 ± 0.29
# against 16.96 (1920 seeds, ± one standard error); at width 16 12.8 ± 0.8, at width 128 16.40 ± 0.29 (480
# seeds each; all measured with deep_stacks.draws), so a finite-width effect that fades as the stack widens.
# The check allows that model error up to MODEL_ERROR (twice what width 32 shows) on top of Z = 5.33 standard
# errors of the sampling (tests/stats.py: false failure ≤ 1e-7 per check if the studentized error is normal;
# deep_stacks.py shows it near enough).
MODEL_ERROR = math.log(1.25)
SEEDS = 192


def test_a_depth_32_1d_stack_of_neuraloperators_layers_averages_to_the_mean_field() -> None:
    """Over 192 seeds the means of the forward ratio and of the backward second-moment ratio agree with the
    profile's 1.06 and 17.0 — a profile that left out the white gradient's loss at the last layer (×7) or the
    backward's own kept fraction (ρ_b/ρ_f per layer) would be far outside."""
    pytest.importorskip("neuralop")
    from deep_stacks import CFG_1D, draws, log_mean_interval

    from benchmarks.signal_propagation import build

    net, _ = build("plain-relu-1d", "edge-of-chaos", 1, 0, CFG_1D)
    geometry = si.audit(net).rows[0].geometry
    profile = relu_stack_profile(geometry, 128, 32, _edge_of_chaos(geometry, 128))
    forward, backward = draws("plain-relu-1d", "edge-of-chaos", SEEDS)
    for values, expected in ((forward, profile.forward_ratio), ([b * b for b in backward], profile.backward_ratio)):
        low, high = log_mean_interval(values, Z)
        assert low - MODEL_ERROR <= math.log(expected) <= high + MODEL_ERROR, (math.exp(low), math.exp(high), expected)


def test_the_strategies_pages_table_is_what_the_profile_gives() -> None:
    """docs/strategies.md tabulates edge-of-chaos's depth-32 backward ratio (norms) of 1-D stacks: each cell is
    this function's, to the digits shown."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "strategies.md").read_text()
    lines = text[text.index("| 1-D points |"):].splitlines()
    header = [int(cell.split()[-1]) for cell in lines[0].strip("|").split("|")[1:]]  # n_modes
    rows = [line for line in lines[2:] if line.startswith("|")]
    assert len(rows) == 3 and header == [4, 8, 12, 16, 32]
    for row in rows:
        points, *cells = (cell.strip() for cell in row.strip("|").split("|"))
        for n_modes, cell in zip(header, cells):
            layer = si.SpectralGeometry(32, 32, 1, (n_modes // 2 + 1,))  # neuraloperator keeps n_modes//2 + 1
            profile = relu_stack_profile(layer, int(points), 32, _edge_of_chaos(layer, int(points)))
            assert float(f"{math.sqrt(profile.backward_ratio):.3g}") == float(cell), (points, n_modes, cell)
            assert f"{profile.forward_ratio:.3g}" == "1.06"
