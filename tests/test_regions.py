import pytest
import torch

from ralis.data.pool import RegionPool
from ralis.errors import ConfigError
from ralis.regions import RegionGrid, scaled_region_size


def test_paper_camvid_grid_has_24_regions():
    grid = RegionGrid((360, 480), (90, 80))
    assert (grid.rows, grid.cols, grid.per_image) == (4, 6, 24)
    assert scaled_region_size((90, 80), (360, 480), (180, 240)) == (45, 40)


def test_split_join_boxes_round_trip():
    grid = RegionGrid((360, 480), (90, 80))
    ids = torch.tensor([0, 5, 6, 23, 24, 24 * 7 + 13])
    img, row, col = grid.split(ids)
    assert img.tolist() == [0, 0, 0, 0, 1, 7]
    assert row.tolist() == [0, 0, 1, 3, 0, 2]
    assert col.tolist() == [0, 5, 0, 5, 0, 1]
    assert torch.equal(grid.join(img, row, col), ids)
    assert grid.boxes(torch.tensor([13])).tolist() == [[180, 80, 270, 160]]


def test_tiles_and_region_mean_match_slicing():
    grid = RegionGrid((10, 13), (3, 4))  # rows 3, cols 3, leftover pixels ignored
    maps = torch.arange(2 * 10 * 13, dtype=torch.float).view(2, 10, 13)
    tiles = grid.tiles(maps)
    assert tiles.shape == (2, 9, 3, 4)
    assert torch.equal(tiles[1, 5], maps[1, 3:6, 8:12])
    means = grid.region_mean(maps)
    assert means[1, 5] == pytest.approx(maps[1, 3:6, 8:12].mean().item())
    multi = grid.tiles(torch.stack([maps, -maps], 1))  # [N, 2, H, W] -> [N, R, 2, h, w]
    assert torch.equal(multi[0, 4, 1], -maps[0, 3:6, 4:8])


def test_mask_marks_exactly_the_regions():
    grid = RegionGrid((6, 8), (3, 4))
    m = grid.mask(torch.tensor([1, 6]), 2)
    assert m.sum() == 24
    assert m[0, :3, 4:].all() and m[1, 3:, :4].all() and not m[0, 3:].any()


def test_region_larger_than_image_is_a_clear_error():
    with pytest.raises(ConfigError, match="larger than the image"):
        RegionGrid((40, 40), (50, 10))


def test_pool_records_steps_and_samples_disjoint_unlabelled_candidates():
    grid = RegionGrid((6, 8), (3, 4))  # 4 regions per image
    pool = RegionPool(grid, 10)
    pool.label(torch.tensor([0, 1, 2]), step=1)
    g = torch.Generator().manual_seed(0)
    cands = pool.sample_candidates(3, 4, g)
    assert cands.shape == (3, 4)
    flat = cands.flatten().tolist()
    assert len(set(flat)) == 12 and not set(flat) & {0, 1, 2}
    assert pool.labelled_at[:3].tolist() == [1, 1, 1]
    with pytest.raises(ValueError):
        pool.label(torch.tensor([2]), step=2)
    state = pool.state_dict()
    other = RegionPool(grid, 10)
    other.load_state_dict(state)
    assert other.order == [0, 1, 2] and torch.equal(other.labelled_at, pool.labelled_at)
    assert pool.labelled_images().tolist() == [0]


def test_pool_sampling_is_seeded_and_shrinks_when_few_regions_left():
    grid = RegionGrid((6, 8), (3, 4))
    pool = RegionPool(grid, 3)
    a = pool.sample_candidates(2, 3, torch.Generator().manual_seed(5))
    b = pool.sample_candidates(2, 3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    pool.label(torch.arange(7), 1)
    small = pool.sample_candidates(2, 5, torch.Generator().manual_seed(0))
    assert small.shape == (2, 2)
    assert set(small.flatten().tolist()) <= set(range(7, 12))
