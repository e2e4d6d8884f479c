import pytest
import torch

from ralis.errors import ConfigError
from ralis.regions import RegionGrid
from ralis.training.oracle import Oracle
from ralis.training.train import LabelledData, one_region_per_image, region_crops


def test_crops_contain_the_region_centre_and_masks_align():
    grid = RegionGrid((40, 60), (10, 20))  # 4 x 3 regions
    images = torch.arange(2 * 3 * 40 * 60).view(2, 3, 40, 60).to(torch.uint8)
    masks = torch.arange(2 * 40 * 60).view(2, 40, 60) % 7
    data = LabelledData(images, masks, grid, ignore_index=255)
    ids = torch.tensor([0, 11, 12, 23])
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x, y = region_crops(data, ids, (16, 16), g, flip=False)
        assert x.shape == (4, 3, 16, 16) and y.shape == (4, 16, 16)
    # centre-pixel containment, checked through unique mask values
    full = torch.arange(40 * 60).view(40, 60)
    data2 = LabelledData(images[:1], full.unsqueeze(0), grid, ignore_index=-1)
    for rid in range(12):
        box = grid.boxes(torch.tensor([rid]))[0]
        cy, cx = int(box[0] + box[2]) // 2, int(box[1] + box[3]) // 2
        _, y = region_crops(data2, torch.tensor([rid]), (16, 16), g, flip=False)
        assert (y == cy * 60 + cx).any()


def test_oracle_reveals_only_labelled_regions_and_enforces_budget():
    grid = RegionGrid((4, 4), (2, 2))
    gt = torch.arange(2 * 16).view(2, 4, 4) % 3
    gt[0, 0, 0] = 9  # a void pixel
    oracle = Oracle(gt, grid, ignore_index=9, budget=3)
    oracle.label(torch.tensor([0, 5]))
    revealed = oracle.partial_masks[:] != 9
    assert revealed.sum() == 8 - 1
    assert torch.equal(oracle.partial_masks[1, :2, 2:], gt[1, :2, 2:])
    dist = oracle.region_distributions(torch.tensor([0]), 3)
    assert dist.shape == (1, 4) and dist[0, 3] == pytest.approx(0.25) and dist.sum() == pytest.approx(1)
    with pytest.raises(ConfigError, match="budget"):
        oracle.label(torch.tensor([1, 2]))


def test_one_region_per_image():
    ids = torch.tensor([0, 1, 2, 13, 14, 40])
    out = one_region_per_image(ids, per_image=12, generator=torch.Generator().manual_seed(0))
    assert sorted((out // 12).tolist()) == [0, 1, 3]


def test_fit_draws_samples_per_epoch_crops(monkeypatch):
    from ralis.config import TrainConfig
    from ralis.training import train as train_mod

    seen = []

    def fake_pass(model, optimizer, data, region_ids, cfg, generator, device, max_iters,
                  hint=None):
        seen.append(region_ids.numel())
        return 0.0

    monkeypatch.setattr(train_mod, "train_pass", fake_pass)
    grid = RegionGrid((8, 8), (4, 4))
    data = LabelledData(torch.zeros(3, 3, 8, 8, dtype=torch.uint8), torch.zeros(3, 8, 8).long(),
                        grid, 255)
    model = torch.nn.Conv2d(3, 2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ids = torch.tensor([0, 5, 9])  # three images
    g = torch.Generator().manual_seed(0)
    train_mod.fit(model, opt, data, ids, lambda m: 0.5, TrainConfig(samples_per_epoch=7), 2, 5, g,
                  progress=False)
    train_mod.fit(model, opt, data, ids, lambda m: 0.5, TrainConfig(), 1, 5, g, progress=False)
    assert seen == [7, 7, 3]
