"""Superpixel regions: per-region statistics, the pool, the oracle and whole runs with slic."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import ralis.regions.superpixels as sp_mod
from ralis.config import apply_overrides
from ralis.data.pool import RegionPool
from ralis.data.protocol import load_protocol
from ralis.errors import ConfigError
from ralis.loop.simulate import simulate
from ralis.regions import RegionGrid, SuperpixelRegions, superpixel_labels
from ralis.regions.histograms import region_class_distribution
from ralis.run.store import RunStore
from ralis.training.oracle import OUTSIDE, Oracle, tile_distributions

# two 6x8 images; image 0 has segments 0..3, image 1 has 0..2 (id 3 of image 1 is padding)
LABELS = np.array([
    [[0, 0, 0, 1, 1, 1, 1, 1],
     [0, 0, 0, 1, 1, 1, 1, 1],
     [0, 0, 2, 2, 2, 1, 1, 1],
     [0, 2, 2, 2, 2, 3, 3, 3],
     [2, 2, 2, 2, 3, 3, 3, 3],
     [2, 2, 2, 3, 3, 3, 3, 3]],
    [[0, 0, 0, 0, 1, 1, 1, 1],
     [0, 0, 0, 0, 1, 1, 1, 1],
     [0, 0, 0, 0, 1, 1, 1, 1],
     [2, 2, 2, 2, 2, 2, 2, 2],
     [2, 2, 2, 2, 2, 2, 2, 2],
     [2, 2, 2, 2, 2, 2, 2, 2]],
], dtype=np.int16)


def regions(**kw) -> SuperpixelRegions:
    return SuperpixelRegions(LABELS, superpixels=4, **kw)


def brute(ids):
    lab = torch.from_numpy(LABELS.astype(np.int64))
    for r in ids.tolist():
        yield r, lab[r // 4] == r % 4


def test_statistics_match_a_pixel_loop():
    sp = regions()
    assert sp.per_image == 4 and sp.image_size == (6, 8)
    ids = torch.arange(8)
    assert sp.valid(2).tolist() == [True] * 7 + [False]
    for r, inside in brute(ids):
        assert int(sp.pixels(torch.tensor([r]))) == int(inside.sum())
        if not inside.any():
            assert sp.boxes(torch.tensor([r])).tolist() == [[0, 0, 0, 0]]
            continue
        ys, xs = inside.nonzero(as_tuple=True)
        assert sp.boxes(torch.tensor([r])).tolist() == [[int(ys.min()), int(xs.min()),
                                                          int(ys.max()) + 1, int(xs.max()) + 1]]
        y, x = sp.anchors(torch.tensor([r]))[0].tolist()
        assert inside[y, x]  # the crop anchor lies in the region
    # image 1, segment 2 (rows 3-5, full width): its centroid (4, 3.5) is a pixel of it
    assert sp.anchors(torch.tensor([6])).tolist() == [[4, 3]]
    assert int(sp.pixels(torch.arange(8)).sum()) == 2 * 6 * 8


def test_region_mean_mask_and_crop_masks():
    sp = regions()
    maps = torch.rand(2, 6, 8, generator=torch.Generator().manual_seed(0))
    means = sp.region_mean(maps)
    for r, inside in brute(torch.arange(7)):
        assert float(means[r // 4, r % 4]) == pytest.approx(float(maps[r // 4][inside].mean()))
    assert float(means[1, 3]) == 0.0  # padding
    ids = torch.tensor([1, 6])
    mask = sp.mask(ids, 2)
    assert int(mask.sum()) == int(sp.pixels(ids).sum())
    crops = sp.crop_masks(ids)
    for (_, inside), crop, box in zip(brute(ids), crops, sp.boxes(ids).tolist(), strict=True):
        y0, x0, y1, x1 = box
        assert torch.equal(crop, inside[y0:y1, x0:x1])


def test_subset_and_concat_share_the_label_maps():
    sp = regions(unit_pixels=10)
    sub = sp.subset([1])
    assert sub.num_images == 1 and sub.nominal_pixels == 10
    assert sub.valid(1).tolist() == [True, True, True, False]
    assert sub.pixels(torch.arange(3)).tolist() == sp.pixels(torch.arange(4, 7)).tolist()
    both = sub.concat(sp.subset([0]))
    assert both.pixels(torch.arange(8)).tolist() == (
        sp.pixels(torch.arange(4, 8)).tolist() + sp.pixels(torch.arange(4)).tolist())
    maps = torch.rand(1, 6, 8)
    assert torch.equal(sub.region_mean(maps), sp.region_mean(maps, torch.tensor([1])))


def test_pool_never_offers_padding_and_counts_units():
    sp = regions(unit_pixels=8)
    pool = RegionPool(sp, 2)
    assert pool.num_regions == 7 and pool.total_units == pytest.approx(96 / 8)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        cand = pool.sample_candidates(2, 3, g)
        assert not (cand == 7).any()
    with pytest.raises(ValueError, match="not a region"):
        pool.label(torch.tensor([7]), 1)
    pool.label(torch.tensor([0, 6]), 1)
    assert pool.units() == pytest.approx((int(sp.pixels(torch.tensor([0, 6])).sum())) / 8)
    assert pool.regions_for(0.1) == 1
    units = pool.units()
    assert pool.spent(units) and pool.spent(units + 1e-12) and not pool.spent(units + 1e-6)
    restored = RegionPool(sp, 2)
    restored.load_state_dict(pool.state_dict())
    assert restored.units() == pool.units()


def test_oracle_reveals_exactly_the_superpixels_and_never_clobbers():
    sp = regions()
    truth = torch.arange(2 * 6 * 8).view(2, 6, 8) % 5  # classes 0..4
    oracle = Oracle(truth, sp, ignore_index=9, budget=100)
    oracle.label(torch.tensor([0, 2]))  # boxes overlap: segment 2's box covers part of 0's
    image = oracle.partial_masks[0]
    inside = torch.from_numpy(LABELS[0].astype(np.int64))
    keep = (inside == 0) | (inside == 2)
    assert torch.equal(image[keep], truth[0][keep])
    assert (image[~keep] == 9).all()
    assert oracle.partial_masks.labelled_pixels().numel() == int(keep.sum())
    assert (oracle.partial_masks.labelled_pixels() != OUTSIDE).all()


def test_region_distributions_equal_the_rect_formula_and_count_only_region_pixels():
    grid = RegionGrid((6, 8), (3, 4))
    truth = torch.randint(0, 4, (2, 6, 8), generator=torch.Generator().manual_seed(1))
    truth[0, 0, 0] = 9
    rect = Oracle(truth, grid, ignore_index=9, budget=8)
    ids = torch.tensor([0, 3, 5])
    rect.label(ids)
    old = region_class_distribution(truth, grid, 4, 9).reshape(-1, 5)[ids]
    assert torch.equal(rect.region_distributions(ids, 4), old)
    sp = regions()
    oracle = Oracle(truth, sp, ignore_index=9, budget=100)
    oracle.label(torch.tensor([1]))
    dist = tile_distributions(oracle.partial_masks, torch.tensor([1]), 4, 9)[0]
    inside = torch.from_numpy(LABELS[0].astype(np.int64)) == 1
    counts = torch.bincount(truth[0][inside], minlength=5).float()
    expected = counts / counts.sum()
    expected[expected == 0] = 1e-7
    assert torch.allclose(dist, expected / expected.sum())


def test_dominant_labelling_gives_the_majority_class():
    sp = regions()
    truth = torch.zeros(2, 6, 8, dtype=torch.long)
    lab = torch.from_numpy(LABELS.astype(np.int64))
    seg1 = lab[0] == 1  # 13 pixels: 8 of class 3, 5 of class 1
    idx = seg1.nonzero()
    truth[0][tuple(idx[:8].T)] = 3
    truth[0][tuple(idx[8:].T)] = 1
    oracle = Oracle(truth, sp, ignore_index=9, budget=100, labelling="dominant", num_classes=4)
    oracle.label(torch.tensor([1]))
    image = oracle.partial_masks[0]
    assert (image[seg1] == 3).all() and (image[~seg1] == 9).all()


def test_superpixel_labels_are_contiguous_and_cached(tmp_path, monkeypatch):
    images = torch.zeros(3, 3, 24, 32, dtype=torch.uint8)
    images[:, 0, :, 16:] = 255
    images[1, 1, 12:] = 200
    labels = superpixel_labels(images, 4, 10.0, str(tmp_path), progress=False)
    assert labels.shape == (3, 24, 32) and labels.dtype == np.int16
    for k in range(3):
        ids = np.unique(labels[k])
        assert ids.tolist() == list(range(len(ids)))
    # the two colour halves of image 0 never share a segment
    assert not set(np.unique(labels[0][:, :16])) & set(np.unique(labels[0][:, 16:]))
    calls = []
    monkeypatch.setattr(sp_mod, "slic_image", lambda *a: calls.append(1))
    again = superpixel_labels(images, 4, 10.0, str(tmp_path), progress=False)
    assert calls == [] and np.array_equal(again, labels)


# --- whole runs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slic_cfg(tmp_path_factory):
    from ralis.config import get_preset

    cache = tmp_path_factory.mktemp("cache")
    return apply_overrides(get_preset("synthetic-tiny"),
                           ["data.regions=slic", f"data.cache_dir={cache}"])


@pytest.fixture(scope="module")
def slic_proto(slic_cfg):
    return load_protocol(slic_cfg.data, progress=False)


def test_slic_protocol_gives_every_set_its_superpixels(slic_cfg, slic_proto):
    grid = slic_proto.grid
    assert slic_proto.regions.kind == "slic"
    assert slic_proto.regions.superpixels == grid.per_image  # default: as many as rectangles
    assert slic_proto.regions.nominal_pixels == grid.region_pixels
    for images in (slic_proto.state, slic_proto.dqn_train, slic_proto.pool):
        regions = slic_proto.regions_of(images)
        assert regions.num_images == len(images) and regions.per_image == slic_proto.regions.per_image
        assert int(regions.pixels(regions.valid(len(images)).nonzero().squeeze(1)).sum()) == (
            len(images) * 48 * 64)


@pytest.mark.parametrize("strategy", ["random", "entropy", "bald"])
def test_slic_runs_spend_pixel_budgets_and_repeat_exactly(slic_cfg, slic_proto, tiny_theta0,
                                                          tmp_path, strategy):
    def go(out):
        return simulate(slic_cfg, strategy, out, pretrained=tiny_theta0, progress=False,
                        proto=slic_proto)

    a, b = go(tmp_path / "a"), go(tmp_path / "b")
    assert a["region_kind"] == "slic" and a["regions"]["kind"] == "slic"
    assert [x["miou"] for x in a["budgets"]] == [x["miou"] for x in b["budgets"]]
    pool_px = len(slic_proto.pool) * 48 * 64
    unit = slic_proto.grid.region_pixels
    largest = int(slic_proto.regions.pixels(torch.arange(
        len(slic_proto.pool) * slic_proto.regions.per_image)).max())
    for row in a["budgets"]:  # the budget's pixels, plus less than one step's regions
        spent = row["pixel_fraction"] * pool_px
        assert row["regions"] * unit <= spent + 1e-6
        assert spent < row["regions"] * unit + slic_cfg.al.regions_per_step * largest
    acquired = RunStore(tmp_path / "a").acquisitions()
    valid = slic_proto.regions.valid(len(slic_proto.pool))
    assert all(bool(valid[r]) for _, r in acquired)
    lines = (tmp_path / "a" / "acquired_regions.csv").read_text().splitlines()
    assert lines[1].endswith(",-1,-1")
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["data"]["regions"] == "slic"


def test_dominant_labelling_needs_superpixels():
    from ralis.config import get_preset, validate

    cfg = get_preset("synthetic-tiny")
    with pytest.raises(ConfigError, match="dominant"):
        validate(replace(cfg, al=replace(cfg.al, labelling="dominant")))
    with pytest.raises(ConfigError, match="data.regions"):
        validate(replace(cfg, data=replace(cfg.data, regions="hexagons")))


def test_interrupted_slic_run_resumes_exactly(slic_cfg, slic_proto, tiny_theta0, tmp_path,
                                              monkeypatch):
    import ralis.loop.simulate as sim_mod

    def go(out, **kw):
        return simulate(slic_cfg, "entropy", out, pretrained=tiny_theta0, progress=False,
                        proto=slic_proto, **kw)

    reference = go(tmp_path / "ref")
    assert len(RunStore(tmp_path / "ref").steps()) >= 2
    real, calls = sim_mod.train_pass, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # step 2: its regions are stored, then a crash
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sim_mod, "train_pass", flaky)
    with pytest.raises(KeyboardInterrupt):
        go(tmp_path / "cut")
    monkeypatch.setattr(sim_mod, "train_pass", real)
    resumed = go(tmp_path / "cut", resume=True)
    assert RunStore(tmp_path / "cut").acquisitions() == RunStore(tmp_path / "ref").acquisitions()
    assert [b["miou"] for b in resumed["budgets"]] == [b["miou"] for b in reference["budgets"]]
    assert [b["pixel_fraction"] for b in resumed["budgets"]] == [
        b["pixel_fraction"] for b in reference["budgets"]]
