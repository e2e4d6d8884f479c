"""What the query agent sees: state and candidate (action) features from the segmentation net.

One forward pass per image gives the predicted classes and the entropy map; the class histograms,
pooled entropies and KL histograms of :mod:`ralis.rl.features` are computed from them.
Shared by agent training and by the greedy `ralis` strategy, so both see identical features.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ralis.config import AgentConfig
from ralis.data.regions import RegionGrid
from ralis.errors import ConfigError
from ralis.models.inference import predict
from ralis.rl.features import (
    action_features,
    normalize_histogram,
    region_features,
    state_features,
)


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that fixes the shapes of the agent's inputs (saved with the policy)."""

    num_classes: int
    regions_per_image: int
    state_images: int
    poolings: tuple[str, ...] = ("min", "mean", "max")
    normalize_hist: bool = False
    use_kl: bool = True
    kl_bins: int = 32
    kl_mode: str = "adaptive"
    kl_range: tuple[float, float] = (0.0, 10.0)
    region_size: tuple[int, int] | None = None  # (h, w) px: raw class counts scale with it
    image_size: tuple[int, int] | None = None  # (H, W) working resolution

    @classmethod
    def from_config(
        cls, agent: AgentConfig, num_classes: int, grid: RegionGrid, state_images: int
    ) -> FeatureSpec:
        return cls(
            num_classes,
            grid.per_image,
            state_images,
            tuple(agent.poolings),
            agent.normalize_hist,
            agent.use_kl,
            agent.kl_bins,
            agent.kl_mode,
            tuple(agent.kl_range),
            tuple(grid.region_size),
            tuple(grid.image_size),
        )

    @property
    def state_regions(self) -> int:
        return self.state_images * self.regions_per_image

    @property
    def state_dim(self) -> int:
        return self.num_classes + 1 + 64 * len(self.poolings)

    @property
    def kl_dim(self) -> int:
        return 2 * self.kl_bins if self.use_kl else 0

    @property
    def action_dim(self) -> int:
        return self.state_dim + self.kl_dim

    def to_dict(self) -> dict:
        return asdict(self)

    def check_compatible(self, other: FeatureSpec, where: str) -> None:
        """Raise a clear ConfigError when a policy is used on data of another shape."""
        for name, what in (
            ("num_classes", "classes"),
            ("regions_per_image", "regions per image"),
            ("state_images", "state-set images"),
        ):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                raise ConfigError(
                    f"{where} was trained for {mine} {what} but this run has {theirs}; train an "
                    "agent on this dataset and region grid with `ralis train-agent`"
                )
        for name, what in (("region_size", "regions of"), ("image_size", "images of")):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and tuple(mine) != tuple(theirs):
                raise ConfigError(
                    f"{where} was trained on {what} {mine[0]}x{mine[1]} px but this run uses "
                    f"{theirs[0]}x{theirs[1]}; its features would be out of scale. Train an "
                    "agent at this resolution and region size with `ralis train-agent`"
                )


def observe_state(
    model: nn.Module,
    state_images_u8: torch.Tensor,
    grid: RegionGrid,
    spec: FeatureSpec,
    batch_size: int = 16,
    device: str = "cpu",
) -> torch.Tensor:
    """State features of every region of the state set: ``[R_S, C + 1 + 64 * poolings]``."""
    pred = predict(model, state_images_u8, batch_size, device)
    return state_features(
        pred.pred_ids, pred.entropy, grid, spec.num_classes, spec.poolings, spec.normalize_hist
    ).float()


def observe_pools(
    model: nn.Module,
    pools: torch.Tensor,
    images_u8: torch.Tensor,
    grid: RegionGrid,
    labelled_dist: torch.Tensor,
    spec: FeatureSpec,
    batch_size: int = 16,
    device: str = "cpu",
    timer=None,
) -> torch.Tensor:
    """Action features of every candidate: ``pools [K, N]`` region ids -> ``[K, N, Da]``.

    ``labelled_dist [L, C + 1]``: ground-truth class distributions of the regions labelled so far
    in this episode/run. The "unlabelled set" of the second KL histogram is the step's candidates
    (the authors' choice).
    """
    K, N = pools.shape
    per = grid.per_image
    images, row_of = torch.unique(pools // per, return_inverse=True)
    with timer("forward") if timer else nullcontext():
        pred = predict(model, images_u8[images], batch_size, device)
    with timer("score") if timer else nullcontext():
        feats = region_features(
            pred.pred_ids, pred.entropy, grid, spec.num_classes, spec.poolings, spec.normalize_hist
        )  # [n, R, F]
        cand = feats[row_of.reshape(-1), (pools % per).reshape(-1)].float()  # [M, F]
        if spec.use_kl:
            hist = cand[:, : spec.num_classes + 1]
            cand = action_features(
                hist,
                cand[:, spec.num_classes + 1 :],
                labelled_dist.float(),
                normalize_histogram(hist),
                spec.kl_bins,
                spec.kl_mode,
                spec.kl_range,
            )
        return cand.reshape(K, N, -1)
