"""The classic baselines: random (U), entropy (H) and BALD (B) over candidate regions."""

from __future__ import annotations

import torch

from ralis.acquisition.base import STRATEGIES, StepContext, pick_per_pool
from ralis.errors import ConfigError
from ralis.models.inference import bald_map, has_dropout, predict


@STRATEGIES.register("random")
class RandomStrategy:
    """Uniform choice in each pool; runs no network."""

    name = "random"
    needs: frozenset[str] = frozenset()

    def select(self, pools: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        with ctx.timer("score"):
            scores = torch.rand(pools.shape, generator=ctx.generator)
            return pick_per_pool(pools, scores)


def _best_region_mean(pools: torch.Tensor, ctx: StepContext, pixel_map, desc: str
                      ) -> torch.Tensor:
    """Pick, per pool, the region whose mean of ``pixel_map(images) [n, H, W]`` is highest."""
    images, row_of, local = ctx.image_index(pools)
    region_scores = ctx.region_scores(images, pixel_map, desc)  # [n, R]
    return pick_per_pool(pools, region_scores[row_of, local])


@STRATEGIES.register("entropy")
class EntropyStrategy:
    """Highest mean pixel entropy over the region, one forward per candidate image."""

    name = "entropy"
    needs: frozenset[str] = frozenset({"forward"})

    def select(self, pools: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return _best_region_mean(
            pools, ctx, lambda x: predict(ctx.model, x, ctx.batch_size, ctx.device,
                                    ctx.extras.get("amp", False)).entropy,
            "entropy")


@STRATEGIES.register("bald")
class BaldStrategy:
    """Highest mean BALD (MC-dropout mutual information) over the region, T samples."""

    name = "bald"
    needs: frozenset[str] = frozenset({"forward", "mc_dropout"})

    def select(self, pools: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if not has_dropout(ctx.model):
            raise ConfigError(
                "BALD needs dropout in the network (MC dropout): set model.dropout_p > 0 or add "
                "an nn.Dropout layer to your model"
            )
        return _best_region_mean(pools, ctx, lambda x: bald_map(
            ctx.model, x, ctx.mc_samples, ctx.batch_size, ctx.device,
            full_resolution=ctx.extras.get("mc_full_resolution", False),
            amp=ctx.extras.get("amp", False)), "BALD")
