"""The overlap constraint: patches that agree pass through unchanged, patches that disagree do not, the
stitched object is the evaluation's, and gradients reach every patch that weighs in."""

from __future__ import annotations

import math

import pytest
import torch

from ptycho_torch.evaluation import stitch, stitch_weight
from ptycho_torch.scan import ScanOverlap, grid_tiles, tile_side
from ptycho_torch.simulation import SimulationConfig, disk_probe, lines_object

CONFIG = SimulationConfig(N=16, object_size=32, offset=4)


def patches_of(obj: torch.Tensor, config: SimulationConfig = CONFIG) -> torch.Tensor:
    n = config.N
    return torch.stack([obj[r : r + n, c : c + n] for r, c in config.scan_positions])


def overlap(config: SimulationConfig = CONFIG, probe: torch.Tensor | None = None) -> ScanOverlap:
    return ScanOverlap(config.scan_positions, config.canvas, disk_probe(config.N) if probe is None else probe)


def test_patches_cut_from_one_object_come_back_unchanged() -> None:
    obj = lines_object(CONFIG.canvas, 20, seed=3)
    patches = patches_of(obj)[None]
    out = overlap()(patches)
    weighed = stitch_weight(disk_probe(CONFIG.N)) > 0  # inside the probe: every such pixel has its own patch
    torch.testing.assert_close(out[..., weighed], patches[..., weighed], rtol=1e-5, atol=1e-6)


def test_the_stitched_object_is_the_evaluations() -> None:
    """Re-extracted patches are the evaluation's stitch (same weights) cut at the scan positions."""
    gen = torch.Generator().manual_seed(0)
    patches = torch.randn(CONFIG.patches_per_object, CONFIG.N, CONFIG.N, dtype=torch.complex64, generator=gen)
    probe = disk_probe(CONFIG.N)
    stitched, _ = stitch(patches, CONFIG.scan_positions, CONFIG.canvas, stitch_weight(probe))
    expected = patches_of(stitched.to(torch.complex64))
    torch.testing.assert_close(overlap()(patches[None])[0], expected, rtol=1e-5, atol=1e-5)


def test_patches_that_disagree_by_a_phase_offset_do_not_pass() -> None:
    """Neighbouring patches with opposite global phases (which a single pattern cannot tell apart: the
    same diffraction): the stitch averages them towards 0 where they overlap."""
    obj = lines_object(CONFIG.canvas, 20, seed=4)
    patches = patches_of(obj)
    side = math.isqrt(len(patches))
    signs = torch.tensor([(-1.0) ** (i // side + i % side) for i in range(len(patches))])  # a checkerboard
    out = overlap()((patches * signs[:, None, None])[None])[0]
    inside = stitch_weight(disk_probe(CONFIG.N)) > 0
    assert (out.abs()[:, inside].mean() / patches.abs()[:, inside].mean()).item() < 0.5


def test_gradients_reach_every_patch_and_objects_stay_apart() -> None:
    patches = torch.randn(2, CONFIG.patches_per_object, CONFIG.N, CONFIG.N, dtype=torch.complex64,
                          requires_grad=True)
    out = overlap()(patches)
    out[0].abs().sum().backward()
    grad = patches.grad.abs().sum(dim=(-2, -1))
    assert bool((grad[0] > 0).all())  # every patch of object 0 weighs in somewhere
    assert bool((grad[1] == 0).all())  # object 1 is not object 0's neighbour


def test_pixels_no_patch_weighs_are_zero() -> None:
    """A probe weighing only its centre leaves the patch corners unweighted: they come back 0."""
    n = CONFIG.N
    probe = torch.zeros(n, n, dtype=torch.complex64)
    probe[n // 2 - 1 : n // 2 + 1, n // 2 - 1 : n // 2 + 1] = 1
    sparse = SimulationConfig(N=n, object_size=32, offset=5)  # no patch corner lies in another patch's centre
    out = overlap(sparse, probe)(torch.ones(1, sparse.patches_per_object, n, n, dtype=torch.complex64))
    assert bool((out[..., 0, 0] == 0).all()) and bool((out[..., n // 2, n // 2] == 1).all())


@pytest.mark.parametrize("shape", [(1, 5, 16, 16), (1, 25, 16, 8), (25, 16, 16)])
def test_patches_of_another_shape_are_refused(shape) -> None:
    with pytest.raises(ValueError, match="expected patches"):
        overlap()(torch.zeros(shape, dtype=torch.complex64))


def test_a_position_off_the_canvas_is_refused() -> None:
    with pytest.raises(ValueError, match="inside the 32 × 32 px canvas"):
        ScanOverlap([(0, 0), (20, 0)], 32, disk_probe(16))


@pytest.mark.parametrize("side, tile", [(1, 2), (5, 2), (7, 3), (13, 4), (4, 4), (20, 5)])
def test_grid_tiles_partition_the_scan_into_rectangles_of_neighbours(side, tile) -> None:
    for offset in range(tile):
        blocks = grid_tiles(side, tile, offset)
        assert sorted(i for block in blocks for i in block) == list(range(side * side))  # each position once
        for block in blocks:
            rows, cols = sorted({i // side for i in block}), sorted({i % side for i in block})
            assert len(block) == len(rows) * len(cols)  # a full rectangle
            assert rows == list(range(rows[0], rows[-1] + 1)) and cols == list(range(cols[0], cols[-1] + 1))
            # at most a tile and a joined thin edge; thinner than 2 only where the grid is
            assert min(len(rows), len(cols)) >= min(2, side)
            assert max(len(rows), len(cols)) < tile + max(2, (tile + 1) // 2)


def test_grid_tiles_refuse_a_bad_tile_or_offset() -> None:
    with pytest.raises(ValueError, match="0 <= offset < tile"):
        grid_tiles(5, 2, 2)


@pytest.mark.parametrize("batch, side, expected", [(16, 5, None), (16, 7, None), (16, 8, 4), (16, 67, 4), (1, 4, 2),
                                                   (1, 3, None), (100, 67, 10)])
def test_a_scan_is_tiled_only_where_its_grid_holds_two_tiles(batch, side, expected) -> None:
    assert tile_side(batch, side) == expected


def test_scan_tiles_group_any_scans_positions_into_blocks_of_neighbours() -> None:
    from ptycho_torch.scan import scan_tiles
    from ptycho_torch.simulation import SimulationConfig

    config = SimulationConfig(N=16, object_size=112, offset=4, scan="random")
    positions = config.scan_positions
    for offset in range(3):
        blocks = scan_tiles(positions, config.step, 3, offset)
        assert sorted(i for b in blocks for i in b) == list(range(len(positions)))  # a partition
        for block in blocks:  # neighbours: a block spans at most (tile + a joined edge + rounding) cells
            rows = [positions[i][0] for i in block]
            cols = [positions[i][1] for i in block]
            assert max(rows) - min(rows) <= 6 * config.step and max(cols) - min(cols) <= 6 * config.step
    # on a square grid of that step: exactly the grid's tiles
    grid = SimulationConfig(N=16, object_size=112, offset=4)
    side = math.isqrt(grid.patches_per_object)
    assert scan_tiles(grid.scan_positions, grid.step, 3, 1) == grid_tiles(side, 3, 1)


def test_training_on_a_random_scan_with_the_stitched_loss() -> None:
    from ptycho_torch.training import TrainingConfig, train

    config = TrainingConfig(model=dict(architecture="ffno", fno_width=4, fno_modes=4, fno_blocks=1),
                            data=dict(N=16, object_size=48, nimgs_train=1, nimgs_test=1, scan="random"),
                            nepochs=1, batch_size=4, device="cpu")
    result = train(config)
    assert len(result.step_losses) >= 2 and all(math.isfinite(v) for v in result.step_losses)
    assert result.reconstruction["ssim_amp"] is not None and math.isfinite(result.reconstruction["mae_amp"])
