"""What the query agent sees: state and candidate (action) features from the segmentation net.

One forward pass per image gives the predicted classes and the entropy map; the class histograms,
pooled entropies and KL histograms (:mod:`ralis.rl.state_features`,
:mod:`ralis.rl.action_features`) are computed from them.
Shared by agent training and by the greedy `ralis` strategy, so both see identical features.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ralis.config import AgentConfig
from ralis.errors import ConfigError
from ralis.models.inference import Prediction, predict
from ralis.regions.base import Regions
from ralis.regions.histograms import normalize_histogram
from ralis.rl.action_features import action_features
from ralis.rl.state_features import region_features, state_features


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that fixes the shapes and the scale of the agent's inputs (saved with the
    policy).

    ``regions_per_image`` is the state set's ``per_image`` (superpixels: the padded id count),
    which fixes the state's ``R_S = state_images * regions_per_image`` rows. ``region_kind`` is
    ``"rect"`` or ``"slic"``; ``superpixels`` is SLIC's segment count (``None`` for rectangles).
    Policies saved before region kinds existed load as rectangles.
    """

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
    region_kind: str = "rect"  # "rect" or "slic"
    superpixels: int | None = None  # slic: SLIC segments per image (data.superpixels)

    @classmethod
    def from_config(
        cls, agent: AgentConfig, num_classes: int, regions: Regions, state_images: int
    ) -> FeatureSpec:
        """The layout of an agent on ``regions``: the state set's regions (for rectangles the
        same grid as the pool's)."""
        return cls(
            **cls.layout(regions),
            num_classes=num_classes,
            state_images=state_images,
            poolings=tuple(agent.poolings),
            normalize_hist=agent.normalize_hist,
            use_kl=agent.use_kl,
            kl_bins=agent.kl_bins,
            kl_mode=agent.kl_mode,
            kl_range=tuple(agent.kl_range),
        )

    @staticmethod
    def layout(regions: Regions) -> dict:
        """The fields a region set fixes: ``regions_per_image``, ``region_size``,
        ``image_size``, ``region_kind`` and ``superpixels``."""
        rect = regions.kind == "rect"
        return {
            "regions_per_image": regions.per_image,
            "region_size": tuple(regions.region_size) if rect else None,
            "image_size": tuple(regions.image_size),
            "region_kind": regions.kind,
            "superpixels": None if rect else int(regions.superpixels),
        }

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
        """Raise a clear one-line ConfigError when a policy is used on data of another shape,
        scale or region kind (``self``: the policy's layout; ``other``: this run's)."""
        if self.region_kind != other.region_kind or (
            self.superpixels is not None and other.superpixels is not None
            and self.superpixels != other.superpixels
        ):
            raise ConfigError(
                f"{where} was trained on {_describe_kind(self)} but this run uses "
                f"{_describe_kind(other)}; train an agent with the same --regions and "
                f"data.superpixels as this run (`ralis train-agent`), or run with "
                f"{_kind_options(self)}"
            )
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


def _describe_kind(spec: FeatureSpec) -> str:
    """``"rect regions"`` or ``"slic regions (data.superpixels=24)"``."""
    if spec.region_kind == "slic" and spec.superpixels is not None:
        return f"slic regions (data.superpixels={spec.superpixels})"
    return f"{spec.region_kind} regions"


def _kind_options(spec: FeatureSpec) -> str:
    """The options that select the policy's region kind."""
    if spec.region_kind == "slic" and spec.superpixels is not None:
        return f"--regions slic --set data.superpixels={spec.superpixels}"
    return f"--regions {spec.region_kind}"


def observe_state(
    model: nn.Module,
    state_images_u8: torch.Tensor,
    regions: Regions,
    spec: FeatureSpec,
    batch_size: int = 16,
    device: str = "cpu",
) -> torch.Tensor:
    """State features of every region of the state set: ``[R_S, C + 1 + 64 * poolings]``.

    ``regions``: the state set's regions (image ``i`` of ``state_images_u8 [N, 3, H, W]`` is
    image ``i`` of the set), ``R_S = N * regions.per_image``.
    """
    return state_from(predict(model, state_images_u8, batch_size, device), regions, spec)


def state_from(pred: Prediction, regions: Regions, spec: FeatureSpec) -> torch.Tensor:
    """State features ``[R_S, Ds]`` from a prediction over the state set's images."""
    return state_features(
        pred.pred_ids, pred.entropy, regions, spec.num_classes, spec.poolings, spec.normalize_hist
    ).float()


def observe_pools(
    model: nn.Module,
    pools: torch.Tensor,
    images_u8: torch.Tensor,
    regions: Regions,
    labelled_dist: torch.Tensor,
    spec: FeatureSpec,
    batch_size: int = 16,
    device: str = "cpu",
    timer=None,
) -> torch.Tensor:
    """Action features of every candidate: ``pools [K, N]`` region ids -> ``[K, N, Da]``.

    ``images_u8 [P, 3, H, W]``: the images of the region pool, whose regions are ``regions``
    (region ids index them). ``labelled_dist [L, C + 1]``: ground-truth class distributions of
    the regions labelled so far in this episode/run. The "unlabelled set" of the second KL
    histogram is the step's candidates (the authors' choice).
    """
    per = regions.per_image
    images, row_of = torch.unique(pools // per, return_inverse=True)
    with timer("forward") if timer else nullcontext():
        pred = predict(model, images_u8[images], batch_size, device)
    with timer("score") if timer else nullcontext():
        return pool_features(pred, images, row_of, pools, regions, labelled_dist, spec)


def pool_features(
    pred: Prediction,
    images: torch.Tensor,
    row_of: torch.Tensor,
    pools: torch.Tensor,
    regions: Regions,
    labelled_dist: torch.Tensor,
    spec: FeatureSpec,
) -> torch.Tensor:
    """Action features ``[K, N, Da]`` of ``pools [K, N]`` from a prediction over the candidates'
    images: ``pred`` holds ``[n, H, W]`` maps of ``images [n]`` (indices into the pool's image
    set), ``row_of [K, N]`` the row of ``images`` of each candidate's image (``torch.unique``'s
    inverse), ``labelled_dist [L, C + 1]`` as in :func:`observe_pools`."""
    regional = candidate_regions(pred, images, row_of, pools, regions, spec)
    return with_kl(regional, labelled_dist, spec)


def candidate_regions(
    pred: Prediction,
    images: torch.Tensor,
    row_of: torch.Tensor,
    pools: torch.Tensor,
    regions: Regions,
    spec: FeatureSpec,
) -> torch.Tensor:
    """``[K, N, C + 1 + P]``: each candidate's class histogram and pooled entropy (the action
    features before the KL histograms); arguments as in :func:`pool_features`."""
    K, N = pools.shape
    per = regions.per_image
    feats = region_features(
        pred.pred_ids, pred.entropy, regions, spec.num_classes, spec.poolings,
        spec.normalize_hist, images=images,
    )  # [n, R, F]
    return feats[row_of.reshape(-1), (pools % per).reshape(-1)].float().reshape(K, N, -1)


def with_kl(regional: torch.Tensor, labelled_dist: torch.Tensor, spec: FeatureSpec
            ) -> torch.Tensor:
    """``[K, N, C + 1 + P]`` -> the full action features ``[K, N, Da]`` (the two KL histograms
    appended when ``spec.use_kl``)."""
    K, N = regional.shape[:2]
    cand = regional.reshape(K * N, -1)
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
