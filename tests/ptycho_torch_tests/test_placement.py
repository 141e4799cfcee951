"""Patches at any scan position: bilinear placement and extraction, each the other's transpose, and at
whole-pixel positions exactly the plain slices the square-grid path used before."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ptycho_torch.evaluation import stitch
from ptycho_torch.scan.placement import PatchPlacement, canvas_for, stitch_weight
from ptycho_torch.simulation import disk_probe


def sliced_stitch(patches, positions, canvas, weight):
    """The square-grid stitch this package used before sub-pixel positions, written out as slices."""
    n = patches.shape[-1]
    total = torch.zeros(canvas, canvas, dtype=torch.complex128)
    coverage = torch.zeros(canvas, canvas, dtype=torch.float64)
    w = weight.to(torch.float64)
    for patch, (row, col) in zip(patches.to(torch.complex128), positions):
        total[row : row + n, col : col + n] += patch * w
        coverage[row : row + n, col : col + n] += w
    return torch.where(coverage > 0, total / coverage.clamp_min(1e-300), 0), coverage


def test_a_grid_scan_stitches_to_exactly_the_numbers_of_plain_slices() -> None:
    n, canvas, step = 16, 40, 4
    positions = [(r, c) for r in range(0, canvas - n + 1, step) for c in range(0, canvas - n + 1, step)]
    patches = torch.randn(len(positions), n, n, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    weight = stitch_weight(disk_probe(n))
    new, new_coverage = stitch(patches, positions, canvas, weight)
    old, old_coverage = sliced_stitch(patches, positions, canvas, weight)
    assert torch.equal(new, old) and torch.equal(new_coverage, old_coverage)
    obj = torch.randn(canvas, canvas, dtype=torch.complex64)
    extracted = PatchPlacement(positions, canvas, n).extract(obj)
    assert torch.equal(extracted, torch.stack([obj[r : r + n, c : c + n] for r, c in positions]))


positions_strategy = st.lists(st.tuples(st.floats(0, 9, allow_subnormal=False), st.floats(0, 9, allow_subnormal=False)),
                              min_size=1, max_size=6)


@given(positions=positions_strategy, seed=st.integers(0, 2**16))
def test_extract_is_the_transpose_of_place(positions, seed) -> None:
    """<place(x), y> = <x, extract(y)> for every x, y: stitching and re-extraction are one linear map and
    its adjoint (float64: equal to 1e-10 relative)."""
    placement = PatchPlacement(positions, canvas_for(positions, 5), 5)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(positions), 5, 5, dtype=torch.complex128, generator=g)
    y = torch.randn(*placement.canvas, dtype=torch.complex128, generator=g)
    left, right = (placement.place(x) * y.conj()).sum(), (x * placement.extract(y).conj()).sum()
    assert torch.allclose(left, right, rtol=1e-10, atol=1e-10)


@given(positions=positions_strategy)
def test_sub_pixel_weights_are_a_partition_of_unity(positions) -> None:
    """A constant object reads back constant at any position, and each patch's weights add up to one."""
    placement = PatchPlacement(positions, canvas_for(positions, 4), 4)
    assert torch.allclose(placement.weights.sum(1), torch.ones(len(positions), dtype=torch.float64))
    patches = placement.extract(torch.full(placement.canvas, 2.5, dtype=torch.float64))
    assert torch.allclose(patches, torch.full_like(patches, 2.5))


def test_a_half_pixel_shift_reads_the_mean_of_two_neighbours() -> None:
    obj = torch.arange(36, dtype=torch.float64).reshape(6, 6) ** 2  # not linear: the mean is not the midpoint
    patch = PatchPlacement([(1.5, 2.0)], 6, 3).extract(obj)[0]
    assert torch.allclose(patch, (obj[1:4, 2:5] + obj[2:5, 2:5]) / 2)


def test_positions_off_the_canvas_are_refused() -> None:
    with pytest.raises(ValueError, match="inside the 8 × 8 px canvas"):
        PatchPlacement([(4.5, 0.0)], 8, 4)  # the fractional row reads one pixel beyond the patch
    PatchPlacement([(4.0, 0.0)], 8, 4)  # whole-pixel: fits exactly
    with pytest.raises(ValueError, match="finite"):
        PatchPlacement([(float("nan"), 0.0)], 8, 4)
    assert canvas_for([(4.5, 0.0), (1.0, 3.0)], 4) == (9, 7)


def test_placing_and_reading_a_chunk_of_patches_at_a_time_changes_no_bit(monkeypatch) -> None:
    # the (P, K, N²) index is built a chunk at a time (a 10,000-pattern 64² scan's whole index is 1.3 GB):
    # chunks of 7 patches give the very numbers of one chunk, weighted, expanded and complex patches alike
    from ptycho_torch.scan import placement as placement_module

    generator = torch.Generator().manual_seed(0)
    positions = [(float(r), float(c)) for r, c in (torch.rand(50, 2, generator=generator) * 30).tolist()]
    patches = torch.randn(50, 8, 8, dtype=torch.complex64, generator=generator)
    weight = torch.rand(8, 8, generator=generator, dtype=torch.float64)
    canvas = torch.randn(2, 39, 39, generator=generator)

    def outputs() -> tuple[torch.Tensor, ...]:
        placement = PatchPlacement(positions, (39, 39), 8)
        return (placement.place(patches, weight=weight), placement.place(weight.expand(50, 8, 8)),
                placement.extract(canvas), *stitch(patches, positions, (39, 39), weight))

    whole = outputs()
    monkeypatch.setattr(placement_module, "INDEX_CHUNK", 7 * 4 * 64)  # 7 patches of 4 neighbours × 8²
    assert len(PatchPlacement(positions, (39, 39), 8)._chunks()) == 8
    assert all(torch.equal(a, b) for a, b in zip(whole, outputs()))
    # and a weighted place is the place of the weighted patches, in the weight's precision
    assert torch.equal(whole[0], PatchPlacement(positions, (39, 39), 8).place(patches.to(torch.complex128) * weight))
