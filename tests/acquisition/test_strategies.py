import pytest
import torch
from torch import nn

from ralis.acquisition import STRATEGIES, StepContext, create_strategy
from ralis.data.pool import RegionPool
from ralis.errors import ConfigError
from ralis.models import create_model
from ralis.models.inference import bald_map, predict
from ralis.regions import RegionGrid

GRID = RegionGrid((8, 8), (4, 4))  # 4 regions per image


class Confidence(nn.Module):
    """Logits [N, 2, H, W] with a fixed confidence map per image (``self.index`` says which)."""

    def __init__(self, conf: torch.Tensor):
        super().__init__()
        self.conf = conf  # [P, H, W], 0 = uncertain
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        c = self.conf[self.index]
        logits = torch.stack([c, -c], 1)
        return self.drop(logits * 3)


def make_ctx(model, images, seed=0, samples=4):
    pool = RegionPool(GRID, images.shape[0])
    return StepContext(model=model, images_u8=images, pool=pool, regions=GRID,
                       generator=torch.Generator().manual_seed(seed), mc_samples=samples,
                       batch_size=64)


def test_entropy_picks_the_most_uncertain_region_of_each_pool():
    conf = torch.full((2, 8, 8), 5.0)
    conf[0, :4, 4:] = 0.0  # region 1 of image 0 is uncertain
    conf[1, 4:, :4] = 0.5  # region 2 of image 1 is fairly uncertain
    model = Confidence(conf)
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    model.index = torch.tensor([0, 1])
    ctx = make_ctx(model, images)
    pools = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    chosen = create_strategy("entropy").select(pools, ctx)
    assert chosen.tolist() == [1, 6]
    assert ctx.timer.seconds["forward"] > 0


def test_predict_returns_argmax_and_entropy_in_one_pass():
    conf = torch.zeros(1, 8, 8)
    conf[0, :, :4] = 4.0
    model = Confidence(conf)
    model.index = torch.tensor([0])
    pred = predict(model, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    assert pred.pred_ids[0, 0, 0] == 0 and pred.entropy[0, 0, 6] == pytest.approx(0.6931, abs=1e-3)
    assert pred.entropy[0, 0, 0] < 0.01


def test_bald_is_zero_without_dropout_disagreement_and_positive_with_it():
    net = create_model("fpn_small", 3, dropout_p=0.5)
    images = torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(0)
    b = bald_map(net, images, samples=6)
    assert b.shape == (2, 32, 32) and (b >= 0).all() and b.mean() > 0
    net0 = create_model("fpn_small", 3, dropout_p=0.0)
    assert bald_map(net0, images, samples=3).abs().max() < 1e-5


@pytest.mark.parametrize("name", ["random", "entropy", "bald"])
def test_every_strategy_picks_one_region_per_pool_deterministically(name):
    net = create_model("fpn_small", 3)
    images = torch.randint(0, 255, (6, 3, 8, 8), dtype=torch.uint8)
    pools = torch.arange(24).view(4, 6)[:, torch.randperm(6)]
    picks = []
    for _ in range(2):
        torch.manual_seed(1)
        picks.append(create_strategy(name).select(pools, make_ctx(net, images, seed=3)))
    assert picks[0].shape == (4,)
    assert torch.equal(picks[0], picks[1])
    for k in range(4):
        assert picks[0][k] in pools[k]


def test_random_strategy_runs_no_network():
    ctx = make_ctx(None, torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    chosen = create_strategy("random").select(torch.tensor([[0, 1], [2, 3]]), ctx)
    assert chosen.shape == (2,) and "forward" not in ctx.timer.seconds


def test_unknown_strategy_lists_valid_names():
    with pytest.raises(ConfigError, match="bald, entropy"):
        create_strategy("coreset")
    assert {"random", "entropy", "bald"} <= set(STRATEGIES.names())


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_dropout_masks_are_bernoulli_and_independent(p):
    from ralis.models.inference import dropout_masks

    torch.manual_seed(0)
    masks = torch.stack(list(dropout_masks(torch.Size([200, 300]), p, 40))).float()
    assert masks.shape == (40, 200, 300)
    assert masks.mean().item() == pytest.approx(1 - p, abs=0.01)
    flat = masks.view(40, -1) - masks.view(40, -1).mean(1, keepdim=True)
    corr = (flat @ flat.T) / (flat.norm(dim=1)[:, None] * flat.norm(dim=1)[None, :])
    off_diagonal = corr - torch.eye(40)
    assert off_diagonal.abs().max() < 0.02  # includes masks 30/31 across a refill


def test_bald_at_feature_resolution_ranks_regions_like_full_resolution():
    net = create_model("fpn_small", 4, dropout_p=0.5)
    torch.manual_seed(0)
    images = torch.randint(0, 255, (3, 3, 64, 64), dtype=torch.uint8)
    grid = RegionGrid((64, 64), (16, 16))
    torch.manual_seed(1)
    fast = grid.region_mean(bald_map(net, images, samples=30))
    torch.manual_seed(1)
    full = grid.region_mean(bald_map(net, images, samples=30, full_resolution=True))
    a, b = fast.flatten() - fast.mean(), full.flatten() - full.mean()
    assert (a @ b / (a.norm() * b.norm())).item() > 0.9
