"""The agent's features through the region interface: superpixels (known answers on hand-made
label maps, brute-force references), rectangles (bit-identical to the grid-only formulas), and
the feature layout saved with a policy (region kind, superpixel count, refusal on mismatch)."""

from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ralis.acquisition.base import Timer
from ralis.config import AgentConfig
from ralis.errors import ConfigError
from ralis.files.safe import FileFormatError
from ralis.regions import RegionGrid, SuperpixelRegions
from ralis.regions.histograms import ABSENT, region_class_distribution, region_class_histogram
from ralis.rl.observe import FeatureSpec, observe_pools, observe_state
from ralis.rl.policy import build_qnet, load_policy, save_policy, spec_from_record
from ralis.rl.state_features import pooled_entropy, region_features, state_features

# Two hand-drawn 8x8 segmentations: image 0 has 4 segments (an L, a staircase, ...), image 1
# has 3 (a U around a bar, and a block), so its id 3 is padding.
_IMG0 = ["00001111",
         "00001111",
         "00011111",
         "00111122",
         "33333222",
         "33333222",
         "33332222",
         "33332222"]
_IMG1 = ["00000000",
         "00000000",
         "01111110",
         "01111110",
         "22222222",
         "22222222",
         "22222222",
         "22222222"]


def _labels(*rows_of_images) -> np.ndarray:
    return np.array([[[int(c) for c in row] for row in img] for img in rows_of_images],
                    dtype=np.int16)


@pytest.fixture
def labels() -> np.ndarray:
    return _labels(_IMG0, _IMG1)


@pytest.fixture
def sp(labels) -> SuperpixelRegions:
    return SuperpixelRegions(labels, superpixels=4)


def _brute_counts(lab: np.ndarray, ids: torch.Tensor, per_image: int, nbins: int) -> torch.Tensor:
    """Counts of ``ids`` per segment by looping over images, segments and bins."""
    n = ids.shape[0]
    out = torch.zeros(n, per_image, nbins, dtype=torch.long)
    for i in range(n):
        for s in range(per_image):
            inside = torch.from_numpy(lab[i] == s)
            for b in range(nbins):
                out[i, s, b] = int(((ids[i] == b) & inside).sum())
    return out


def _brute_pool(lab: np.ndarray, values: torch.Tensor, per_image: int, out: int) -> torch.Tensor:
    """Min / mean / max over an ``out x out`` grid on each segment's bounding box, pixel by
    pixel; an empty cell takes the segment's mean, a padding id is all 0."""
    n = values.shape[0]
    res = torch.zeros(n, per_image, 3, out * out)
    for i in range(n):
        for s in range(per_image):
            ys, xs = np.nonzero(lab[i] == s)
            if ys.size == 0:
                continue
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            cells: dict[int, list[float]] = {}
            for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
                cy, cx = (y - y0) * out // (y1 - y0), (x - x0) * out // (x1 - x0)
                cells.setdefault(cy * out + cx, []).append(float(values[i, y, x]))
            seg_mean = float(np.mean([float(values[i, y, x]) for y, x in zip(ys, xs, strict=True)]))
            for c in range(out * out):
                vs = cells.get(c)
                if vs is None:
                    res[i, s, :, c] = seg_mean
                else:
                    res[i, s, 0, c], res[i, s, 1, c] = min(vs), float(np.mean(vs))
                    res[i, s, 2, c] = max(vs)
    return res.reshape(n, per_image, 3 * out * out)


# ---------------------------------------------------------------- superpixels: known answers


def test_class_histogram_per_segment_is_the_brute_force_count(labels, sp):
    gen = torch.Generator().manual_seed(0)
    C = 3
    pred = torch.randint(0, C, (2, 8, 8), generator=gen)
    hist = region_class_histogram(pred, sp, C)
    assert hist.shape == (2, 4, C + 1) and hist.dtype == torch.float32
    ref = _brute_counts(labels, pred, 4, C + 1).float()
    assert torch.equal(hist, ref.masked_fill(ref == 0, ABSENT))
    # pixels per segment: 13, 17, 16 and 18 in image 0; 20, 12, 32 and none in image 1
    counts = torch.where(hist < 1, torch.zeros_like(hist), hist).sum(-1)
    assert counts.tolist() == [[13, 17, 16, 18], [20, 12, 32, 0]]


def test_class_histogram_by_hand():
    lab = _labels(["0011", "0011", "2211", "2211"])
    sp = SuperpixelRegions(lab, superpixels=3)
    pred = torch.tensor([[[0, 1, 1, 1], [0, 0, 1, 0], [1, 1, 2, 2], [1, 0, 2, 2]]])
    e = ABSENT
    expected = torch.tensor([[3.0, 1.0, e, e],  # segment 0 (top-left 2x2): 0 1 / 0 0
                             [1.0, 3.0, 4.0, e],  # segment 1 (right 4x2)
                             [1.0, 3.0, e, e]])  # segment 2 (bottom-left 2x2)
    assert torch.equal(region_class_histogram(pred, sp, num_classes=3)[0], expected)


def test_class_distribution_sums_to_one_and_matches_brute_force(labels, sp):
    gen = torch.Generator().manual_seed(1)
    C, ignore = 3, 255
    mask = torch.randint(0, C + 1, (2, 8, 8), generator=gen)
    mask[mask == C] = ignore
    dist = region_class_distribution(mask, sp, C, ignore)
    assert dist.shape == (2, 4, C + 1)
    assert torch.allclose(dist.sum(-1), torch.ones(2, 4))
    counts = _brute_counts(labels, torch.where(mask == ignore, C, mask), 4, C + 1).double()
    frac = counts / counts.sum(-1, keepdim=True).clamp(min=1)
    frac[frac == 0] = ABSENT
    ref = frac / frac.sum(-1, keepdim=True)
    assert torch.allclose(dist.double(), ref, rtol=1e-6, atol=0)
    # the padding id (image 1, id 3) has no pixels: every bin floored, i.e. uniform
    assert torch.allclose(dist[1, 3], torch.full((C + 1,), 1 / (C + 1)))


@pytest.mark.parametrize("out", [1, 2, 3, 8])
def test_pooled_entropy_matches_a_pixel_loop(labels, sp, out):
    gen = torch.Generator().manual_seed(2)
    ent = torch.rand(2, 8, 8, generator=gen)
    got = pooled_entropy(ent, sp, out=out)
    assert got.shape == (2, 4, 3 * out * out)
    ref = _brute_pool(labels, ent, 4, out)
    k = out * out
    assert torch.equal(got[..., :k], ref[..., :k])  # min: exact
    assert torch.allclose(got[..., k:2 * k], ref[..., k:2 * k], rtol=1e-6, atol=1e-7)
    assert torch.equal(got[..., 2 * k:], ref[..., 2 * k:])  # max: exact
    only_max = pooled_entropy(ent, sp, out=out, poolings=("max",))
    assert torch.equal(only_max, got[..., 2 * k:])
    with pytest.raises(ConfigError):
        pooled_entropy(ent, sp, out=out, poolings=("median",))


def test_padding_ids_give_constant_features(sp):
    gen = torch.Generator().manual_seed(3)
    C = 5
    for _ in range(3):  # whatever the prediction, image 1's id 3 looks the same
        pred = torch.randint(0, C, (2, 8, 8), generator=gen)
        ent = torch.rand(2, 8, 8, generator=gen) * 2
        feats = region_features(pred, ent, sp, C)
        assert feats.shape == (2, 4, C + 1 + 192)
        assert torch.equal(feats[1, 3, : C + 1], torch.full((C + 1,), ABSENT))
        assert torch.equal(feats[1, 3, C + 1 :], torch.zeros(192))
        norm = region_features(pred, ent, sp, C, normalize=True)
        assert torch.allclose(norm[1, 3, : C + 1], torch.full((C + 1,), 1 / (C + 1)))
        state = state_features(pred, ent, sp, C)
        assert state.shape == (2 * 4, C + 1 + 192)
        assert torch.equal(state, feats.reshape(8, -1))
    assert sp.valid(2).tolist() == [True] * 7 + [False]


def test_images_select_the_label_maps(labels, sp):
    """Maps of some images of the set, given with their ``images`` indices, get the same
    features as the same images within a call on the whole set (and as a subset's regions)."""
    gen = torch.Generator().manual_seed(4)
    C = 4
    pred = torch.randint(0, C, (2, 8, 8), generator=gen)
    ent = torch.rand(2, 8, 8, generator=gen)
    full = region_features(pred, ent, sp, C)
    one = region_features(pred[1:], ent[1:], sp, C, images=torch.tensor([1]))
    assert torch.equal(one[0], full[1])
    assert torch.equal(region_features(pred[1:], ent[1:], sp.subset([1]), C)[0], full[1])
    swapped = region_features(pred.flip(0), ent.flip(0), sp, C, images=torch.tensor([1, 0]))
    assert torch.equal(swapped, full.flip(0))
    dist = region_class_distribution(pred[1:], sp, C, 255, images=torch.tensor([1]))
    assert torch.equal(dist[0], region_class_distribution(pred, sp, C, 255)[1])
    # without ``images`` the maps would be read as image 0's: the features differ
    assert not torch.equal(region_features(pred[1:], ent[1:], sp, C)[0], full[1])


# ---------------------------------------------------------------- rectangles: unchanged


def _old_bincount(ids, grid, nbins):
    """The grid-only per-region bincount the features used before region kinds."""
    n, R = ids.shape[0], grid.per_image
    tiles = grid.tiles(ids)
    offsets = torch.arange(n * R).view(n, R, 1, 1) * nbins
    flat = (tiles.long() + offsets).reshape(-1)
    return torch.bincount(flat, minlength=n * R * nbins).view(n, R, nbins)


def _old_hist(pred, grid, C, normalize):
    hist = _old_bincount(pred, grid, C + 1).float()
    hist = hist.masked_fill_(hist == 0, ABSENT)
    return hist / hist.sum(-1, keepdim=True) if normalize else hist


def _old_dist(mask, grid, C, ignore):
    ids = torch.where(mask == ignore, torch.full_like(mask, C), mask)
    frac = _old_bincount(ids, grid, C + 1).float() / grid.region_pixels
    frac.masked_fill_(frac == 0, ABSENT)
    return frac / frac.sum(-1, keepdim=True)


def _old_pool(ent, grid, out, poolings):
    h, w = grid.region_size
    kh, kw = h // out, w // out
    tiles = grid.tiles(ent)
    n, R = tiles.shape[:2]
    blocks = tiles[..., : out * kh, : out * kw].reshape(n, R, out, kh, out, kw)
    red = {"min": lambda b: b.amin(dim=(3, 5)), "mean": lambda b: b.mean(dim=(3, 5)),
           "max": lambda b: b.amax(dim=(3, 5))}
    return torch.cat([red[p](blocks).reshape(n, R, out * out) for p in poolings], dim=-1)


@pytest.mark.parametrize("image, region, out", [((36, 40), (9, 8), 8), ((45, 60), (45, 20), 8),
                                                ((17, 23), (5, 7), 2), ((32, 48), (16, 16), 8)])
def test_rect_features_are_bit_identical_to_the_grid_formulas(image, region, out):
    gen = torch.Generator().manual_seed(sum(image) + sum(region))
    grid = RegionGrid(image, region)
    C, ignore = 11, 255
    pred = torch.randint(0, C, (3, *image), generator=gen)
    mask = torch.randint(0, C + 1, (3, *image), generator=gen)
    mask[mask == C] = ignore
    ent = torch.rand(3, *image, generator=gen) * 2.4
    for normalize in (False, True):
        assert torch.equal(region_class_histogram(pred, grid, C, normalize),
                           _old_hist(pred, grid, C, normalize))
    assert torch.equal(region_class_distribution(mask, grid, C, ignore),
                       _old_dist(mask, grid, C, ignore))
    # ignore_index == C (the authors' layout) too
    mask_c = torch.where(mask == ignore, C, mask)
    assert torch.equal(region_class_distribution(mask_c, grid, C, C), _old_dist(mask_c, grid, C, C))
    for poolings in (("min", "mean", "max"), ("max",), ("mean", "min")):
        assert torch.equal(pooled_entropy(ent, grid, out, poolings),
                           _old_pool(ent, grid, out, poolings))
    feats = region_features(pred, ent, grid, C, out=out)
    old = torch.cat([_old_hist(pred, grid, C, False), _old_pool(ent, grid, out, ("min", "mean",
                                                                                  "max"))], -1)
    assert torch.equal(feats, old)
    # rectangles ignore ``images``
    assert torch.equal(region_features(pred, ent, grid, C, out=out, images=torch.tensor([2, 0, 1])),
                       feats)


def test_rect_pooling_smaller_than_the_regions_is_refused():
    grid = RegionGrid((8, 8), (4, 4))
    with pytest.raises(ConfigError, match="smaller than the 8x8 pooling"):
        pooled_entropy(torch.rand(1, 8, 8), grid)


# ---------------------------------------------------------------- observing with a network


class _Pixelwise(nn.Module):
    """A fixed 1x1 convolution: logits from each pixel's colour."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(7)
        self.conv = nn.Conv2d(3, classes, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen) * 3)
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x)


def _four_images():
    lab = _labels(_IMG0, _IMG1, [r[::-1] for r in _IMG0], _IMG1[::-1])
    gen = torch.Generator().manual_seed(8)
    images = torch.randint(0, 256, (4, 3, 8, 8), generator=gen, dtype=torch.uint8)
    return SuperpixelRegions(lab, superpixels=4), images


def test_observe_pools_reads_the_candidates_label_maps():
    from ralis.models.inference import predict

    sp, images = _four_images()
    C = 3
    model = _Pixelwise(C)
    spec = FeatureSpec(C, sp.per_image, 2, use_kl=False, **{
        k: v for k, v in FeatureSpec.layout(sp).items() if k != "regions_per_image"})
    pools = torch.tensor([[1 * 4 + 0, 3 * 4 + 2, 1 * 4 + 1], [3 * 4 + 0, 3 * 4 + 1, 1 * 4 + 2]])
    got = observe_pools(model, pools, images, sp, torch.zeros(0, C + 1), spec)
    pred = predict(model, images)
    full = region_features(pred.pred_ids, pred.entropy, sp, C)  # every image, images 0..3
    assert torch.equal(got, full.reshape(16, -1)[pools])
    kl_spec = FeatureSpec(**{**asdict(spec), "use_kl": True})
    with_kl = observe_pools(model, pools, images, sp, torch.full((1, C + 1), 0.25), kl_spec)
    assert with_kl.shape == (2, 3, kl_spec.action_dim)
    assert torch.equal(with_kl[..., : spec.state_dim], got)
    state = observe_state(model, images[[1, 3]], sp.subset([1, 3]), spec)
    assert state.shape == (spec.state_regions, spec.state_dim)
    assert torch.equal(state, full[[1, 3]].reshape(8, -1))


# ---------------------------------------------------------------- the feature layout


def test_feature_spec_from_config_for_both_kinds(sp):
    agent = AgentConfig()
    grid = RegionGrid((32, 48), (16, 16))
    rect = FeatureSpec.from_config(agent, 11, grid, 10)
    # the layout the rectangle-only code built, positionally
    assert rect == FeatureSpec(11, 6, 10, tuple(agent.poolings), agent.normalize_hist,
                               agent.use_kl, agent.kl_bins, agent.kl_mode, tuple(agent.kl_range),
                               (16, 16), (32, 48))
    assert rect.region_kind == "rect" and rect.superpixels is None
    slic = FeatureSpec.from_config(agent, 11, sp, 2)
    assert (slic.region_kind, slic.superpixels, slic.region_size, slic.image_size) == (
        "slic", 4, None, (8, 8))
    assert slic.regions_per_image == 4 and slic.state_regions == 8


@pytest.mark.parametrize("kind", ["rect", "slic"])
def test_feature_spec_round_trips_through_a_policy_file(sp, tmp_path, kind):
    regions = sp if kind == "slic" else RegionGrid((32, 48), (16, 16))
    spec = FeatureSpec.from_config(AgentConfig(), 5, regions, 2)
    path = save_policy(tmp_path / "p.safetensors", build_qnet(spec), spec, {"classes": list("abcde")})
    qnet, loaded, meta = load_policy(path)
    assert loaded == spec and meta["classes"] == list("abcde")
    assert qnet.config() == build_qnet(spec).config()


def test_old_policy_files_load_as_rect(tmp_path, monkeypatch):
    spec = FeatureSpec.from_config(AgentConfig(), 5, RegionGrid((32, 48), (16, 16)), 2)
    old_fields = {"region_kind", "superpixels"}
    monkeypatch.setattr(FeatureSpec, "to_dict",
                        lambda self: {k: v for k, v in asdict(self).items() if k not in old_fields})
    path = save_policy(tmp_path / "old.safetensors", build_qnet(spec), spec, {})
    monkeypatch.undo()
    _, loaded, record = load_policy(path)
    assert not old_fields & set(record["features"])
    assert loaded == spec and loaded.region_kind == "rect" and loaded.superpixels is None


@pytest.mark.parametrize("bad", [{"region_kind": "hexagons"}, {"region_kind": "slic"},
                                 {"region_kind": "slic", "superpixels": 0},
                                 {"region_kind": "slic", "superpixels": True},
                                 {"region_kind": "rect", "superpixels": 24}])
def test_bad_region_kinds_in_a_record_are_refused(bad, tmp_path):
    features = {"num_classes": 5, "regions_per_image": 6, "state_images": 2, **bad}
    with pytest.raises(FileFormatError, match="invalid feature layout"):
        spec_from_record(features, tmp_path / "p.safetensors")


def test_policy_of_another_region_kind_is_refused(sp):
    agent = AgentConfig()
    grid = RegionGrid((8, 8), (2, 2))  # 16 regions per image
    slic = FeatureSpec.from_config(agent, 3, sp, 2)
    rect = FeatureSpec.from_config(agent, 3, grid, 2)
    slic.check_compatible(FeatureSpec.from_config(agent, 3, sp, 2), "policy p")  # same: fine
    with pytest.raises(ConfigError) as err:
        slic.check_compatible(rect, "policy p")
    msg = str(err.value)
    assert "\n" not in msg
    assert "trained on slic regions (data.superpixels=4) but this run uses rect regions" in msg
    assert "--regions slic --set data.superpixels=4" in msg and "train-agent" in msg
    with pytest.raises(ConfigError, match="trained on rect regions but this run uses slic "
                                          r"regions \(data.superpixels=4\).*--regions rect"):
        rect.check_compatible(slic, "policy p")
    other = SuperpixelRegions(sp._labels, superpixels=9)  # same maps, another SLIC setting
    with pytest.raises(ConfigError, match=r"data.superpixels=4\) but this run uses slic regions "
                                          r"\(data.superpixels=9\)"):
        slic.check_compatible(FeatureSpec.from_config(agent, 3, other, 2), "policy p")
    # a policy from before region kinds (rect, no sizes) on superpixels
    legacy = FeatureSpec(3, 4, 2)
    with pytest.raises(ConfigError, match="rect regions but this run uses slic"):
        legacy.check_compatible(slic, "policy p")


# ---------------------------------------------------------------- the greedy strategy


class _StateSet(SimpleNamespace):
    """The state set D_S as the strategy reads it: images, regions and a length."""

    def __init__(self, images_u8, regions) -> None:
        super().__init__(images_u8=images_u8, regions=regions)

    def __len__(self) -> int:
        return self.images_u8.shape[0]


def test_ralis_strategy_on_superpixels(tmp_path):
    from ralis.acquisition.ralis_policy import RalisStrategy

    sp, images = _four_images()
    C = 3
    names = ["a", "b", "c"]
    state_regions = sp.subset([1, 3])
    spec = FeatureSpec.from_config(AgentConfig(), C, state_regions, 2)
    path = save_policy(tmp_path / "p.safetensors", build_qnet(spec), spec, {"classes": names})
    state = _StateSet(images[[1, 3]], state_regions)
    proto = SimpleNamespace(num_classes=C, state=state, classes=SimpleNamespace(names=names),
                            regions_of=lambda images: images.regions)
    oracle = SimpleNamespace(region_distributions=lambda ids, c: torch.zeros(0, c + 1))
    pool = SimpleNamespace(labelled_ids=lambda: torch.zeros(0, dtype=torch.long))
    ctx = SimpleNamespace(model=_Pixelwise(C), images_u8=images, pool=pool, regions=sp,
                          device="cpu", batch_size=4, timer=Timer(),
                          extras={"protocol": proto, "oracle": oracle})
    pools = torch.tensor([[0, 5, 14], [2, 9, 12]])
    chosen = RalisStrategy(path).select(pools, ctx)
    assert chosen.shape == (2,) and all(int(c) in pools[k].tolist() for k, c in enumerate(chosen))

    rect_spec = FeatureSpec.from_config(AgentConfig(), C, RegionGrid((8, 8), (2, 2)), 2)
    rect_path = save_policy(tmp_path / "r.safetensors", build_qnet(rect_spec), rect_spec,
                            {"classes": names})
    with pytest.raises(ConfigError, match="trained on rect regions but this run uses slic"):
        RalisStrategy(rect_path).select(pools, ctx)
