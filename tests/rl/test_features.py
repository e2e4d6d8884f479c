import numpy as np
import pytest
import torch

from ralis.errors import ConfigError
from ralis.regions import RegionGrid
from ralis.regions.histograms import (
    ABSENT,
    normalize_histogram,
    region_class_distribution,
    region_class_histogram,
)
from ralis.rl.action_features import action_features, kl_histogram, kl_matrix, kl_to_set_histogram
from ralis.rl.state_features import pooled_entropy, region_features, state_features


def _random_dists(gen, n, d=12, dtype=torch.float64):
    x = torch.rand(n, d, generator=gen, dtype=dtype) ** 3
    x[x < 0.05] = ABSENT
    return x


# ---------------------------------------------------------------- class histograms


def test_region_class_histogram_hand_made_example():
    grid = RegionGrid((4, 5), (2, 2))  # 2 x 2 regions, the last column belongs to none
    pred = torch.tensor(
        [
            [0, 0, 1, 1, 2],
            [0, 2, 1, 1, 2],
            [2, 2, 0, 1, 2],
            [2, 2, 1, 0, 2],
        ]
    ).unsqueeze(0)
    hist = region_class_histogram(pred, grid, num_classes=3)
    e = ABSENT
    expected = torch.tensor(
        [
            [3.0, e, 1.0, e],  # top-left: 0 0 / 0 2
            [e, 4.0, e, e],  # top-right: 1 1 / 1 1
            [e, e, 4.0, e],  # bottom-left: all 2
            [2.0, 2.0, e, e],  # bottom-right: 0 1 / 1 0
        ]
    )
    assert hist.shape == (1, 4, 4)
    assert torch.allclose(hist[0], expected)
    assert torch.all(hist[..., -1] == ABSENT)  # the ignore bin is empty for predictions
    norm = region_class_histogram(pred, grid, num_classes=3, normalize=True)
    assert torch.allclose(norm.sum(-1), torch.ones(1, 4))
    assert torch.allclose(norm[0, 3, :2], torch.tensor([0.5, 0.5]))


def test_region_class_histogram_counts_sum_to_region_pixels():
    gen = torch.Generator().manual_seed(0)
    grid = RegionGrid((36, 40), (9, 8))
    C = 11
    pred = torch.randint(0, C, (3, 36, 40), generator=gen)
    hist = region_class_histogram(pred, grid, C)
    assert hist.shape == (3, grid.per_image, C + 1)
    counts = torch.where(hist < 1, torch.zeros_like(hist), hist)  # drop the 1e-7 floors
    assert torch.all(counts.sum(-1) == grid.region_pixels)
    # one region by slicing
    tile = pred[1, 9:18, 16:24]
    ref = torch.bincount(tile.reshape(-1), minlength=C + 1).float()
    assert torch.equal(counts[1, 1 * grid.cols + 2], ref)


def test_region_class_histogram_rejects_out_of_range_ids():
    grid = RegionGrid((4, 4), (2, 2))
    with pytest.raises(ValueError):
        region_class_histogram(torch.full((1, 4, 4), 3), grid, num_classes=3)


def test_region_class_distribution_void_bin_and_floor():
    grid = RegionGrid((2, 4), (2, 2))
    mask = torch.tensor([[[0, 255, 1, 1], [0, 0, 1, 1]]])
    dist = region_class_distribution(mask, grid, num_classes=2, ignore_index=255)
    assert dist.shape == (1, 2, 3)
    assert torch.allclose(dist.sum(-1), torch.ones(1, 2))
    # region 0: 3/4 class 0, 1/4 void; region 1: all class 1
    assert torch.allclose(dist[0, 0], torch.tensor([0.75, ABSENT, 0.25]) / (1 + ABSENT))
    assert torch.allclose(dist[0, 1], torch.tensor([ABSENT, 1.0, ABSENT]) / (1 + 2 * ABSENT))
    # ignore_index == C (the authors' label layout) gives the same
    dist_c = region_class_distribution(mask.where(mask != 255, 2), grid, 2, ignore_index=2)
    assert torch.allclose(dist, dist_c)


# ---------------------------------------------------------------- entropy pooling


def test_pooled_entropy_constant_map():
    grid = RegionGrid((90 * 2, 80 * 3), (90, 80))  # CamVid regions: kernel 11 x 10
    ent = torch.full((2, 180, 240), 1.7)
    out = pooled_entropy(ent, grid)
    assert out.shape == (2, 6, 192)
    assert torch.allclose(out, torch.full_like(out, 1.7))


def test_pooled_entropy_matches_torch_pooling_and_is_ordered():
    gen = torch.Generator().manual_seed(1)
    grid = RegionGrid((45, 60), (45, 20))  # kernel (5, 2), 5 rows dropped, 4 cols dropped
    ent = torch.rand(2, 45, 60, generator=gen)
    out = pooled_entropy(ent, grid)
    mn, mean, mx = out[..., :64], out[..., 64:128], out[..., 128:]
    assert torch.all(mn <= mean) and torch.all(mean <= mx)
    region = ent[1, :40, 20:36].reshape(1, 1, 40, 16)  # 8 x 8 blocks of 5 x 2
    k = (5, 2)
    ref = torch.cat(
        [
            -torch.nn.functional.max_pool2d(-region, k).flatten(),
            torch.nn.functional.avg_pool2d(region, k).flatten(),
            torch.nn.functional.max_pool2d(region, k).flatten(),
        ]
    )
    assert torch.allclose(out[1, 1], ref)
    only_max = pooled_entropy(ent, grid, poolings=("max",))
    assert torch.equal(only_max, mx)
    with pytest.raises(ConfigError):
        pooled_entropy(ent, grid, poolings=("median",))


def test_state_features_shapes():
    grid = RegionGrid((32, 48), (16, 16))
    pred = torch.zeros(10, 32, 48, dtype=torch.long)
    ent = torch.rand(10, 32, 48)
    state = state_features(pred, ent, grid, num_classes=11)
    assert state.shape == (10 * 6, 12 + 192)
    assert state_features(pred, ent, grid, 11, poolings=("max",)).shape == (60, 12 + 64)
    per_region = region_features(pred, ent, grid, 11)
    assert torch.equal(per_region.reshape(60, -1), state)
    assert torch.all(state[:, 0] == 256)  # every pixel predicted as class 0


# ---------------------------------------------------------------- KL


def test_kl_matrix_matches_direct_computation():
    gen = torch.Generator().manual_seed(2)
    p, q = _random_dists(gen, 7) * 100, _random_dists(gen, 9)
    got = kl_matrix(p, q).numpy()
    pn = p.numpy() / p.numpy().sum(1, keepdims=True)
    qn = q.numpy() / q.numpy().sum(1, keepdims=True)
    ref = np.array([[np.sum(a * np.log(a / b)) for b in qn] for a in pn])
    assert got.shape == (7, 9)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_kl_matrix_identical_rows_zero_diagonal():
    gen = torch.Generator().manual_seed(3)
    p = _random_dists(gen, 20, dtype=torch.float32)
    kl = kl_matrix(p, p)
    assert torch.all(kl >= 0)
    assert torch.allclose(kl.diagonal(), torch.zeros(20), atol=1e-6)


def _np_hist(row, bins, mode, value_range):
    if mode == "fixed":
        counts, _ = np.histogram(np.clip(row, *value_range), bins, range=value_range)
    else:
        counts, _ = np.histogram(row, bins)
    return counts


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["adaptive", "fixed"])
def test_kl_histogram_equals_np_histogram(mode, dtype):
    gen = torch.Generator().manual_seed(4)
    L, bins, value_range = 301, 32, (0.0, 10.0)
    kl = (torch.rand(64, L, generator=gen, dtype=dtype) ** 3) * 14
    kl[0] = 2.5  # constant row: numpy uses (2.0, 3.0) -> middle bin
    kl[1] = torch.linspace(0, 10, bins + 1, dtype=dtype).repeat(10)[:L]  # values on edges
    kl[2, :100] = 0.0
    kl[3] = 0.0
    kl[4] = torch.linspace(3.0, 3.0 + 1e-4, L, dtype=dtype)  # narrow range
    hist = kl_histogram(kl, bins, mode, value_range)
    assert hist.shape == (64, bins) and hist.dtype == dtype
    assert torch.allclose(hist.sum(1), torch.ones(64, dtype=dtype))
    counts = torch.round(hist.double() * L).long().numpy()
    for i, row in enumerate(kl.numpy()):
        np.testing.assert_array_equal(counts[i], _np_hist(row, bins, mode, value_range), f"row {i}")
    assert torch.equal(kl_histogram(kl.T.contiguous().T, bins, mode, value_range), hist)
    if mode == "adaptive":
        assert counts[0, bins // 2] == L  # the constant row's mass is in the middle bin


def test_kl_histogram_identical_distributions_first_bin_fixed():
    p = torch.tensor([[5.0, 3.0, 1e-7, 2.0]]).repeat(6, 1)
    hist = kl_to_set_histogram(p, p, bins=32, mode="fixed")
    assert torch.equal(hist[:, 0], torch.ones(6))
    assert torch.all(hist[:, 1:] == 0)


def test_kl_histogram_empty_set_gives_zeros():
    assert torch.equal(kl_histogram(torch.zeros(5, 0)), torch.zeros(5, 32))
    p = torch.rand(5, 12) + 0.1
    assert torch.equal(kl_to_set_histogram(p, torch.zeros(0, 12)), torch.zeros(5, 32))


@pytest.mark.parametrize("mode", ["adaptive", "fixed"])
def test_kl_to_set_histogram_equals_two_step(mode):
    gen = torch.Generator().manual_seed(5)
    p, q = _random_dists(gen, 50, dtype=torch.float32), _random_dists(gen, 70, dtype=torch.float32)
    fused = kl_to_set_histogram(p, q, mode=mode, chunk=7)
    two_step = kl_histogram(kl_matrix(p, q), mode=mode)
    assert torch.equal(fused, two_step)


def test_kl_histogram_rejects_bad_mode():
    with pytest.raises(ConfigError):
        kl_histogram(torch.rand(2, 3), mode="auto")


# ---------------------------------------------------------------- action features


def test_action_features_layout():
    gen = torch.Generator().manual_seed(6)
    M, L, C = 40, 25, 11
    hist = torch.randint(0, 300, (M, C + 1), generator=gen).float()
    hist[hist == 0] = ABSENT
    ent = torch.rand(M, 192, generator=gen)
    lab = normalize_histogram(_random_dists(gen, L, dtype=torch.float32))
    unl = normalize_histogram(hist)
    feats = action_features(hist, ent, lab, unl)
    assert feats.shape == (M, C + 1 + 192 + 64)
    assert torch.equal(feats[:, : C + 1], hist)
    assert torch.equal(feats[:, C + 1 : C + 1 + 192], ent)
    assert torch.equal(feats[:, -64:-32], kl_histogram(kl_matrix(hist, lab)))
    assert torch.equal(feats[:, -32:], kl_histogram(kl_matrix(hist, unl)))
    assert torch.allclose(feats[:, -64:].sum(1), torch.full((M,), 2.0))
    no_labels = action_features(hist, ent, lab[:0], unl, mode="fixed")
    assert torch.all(no_labels[:, -64:-32] == 0)
