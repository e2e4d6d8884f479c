"""One step's view of the candidates, shared by every game: the query network's features, the
entropy baseline's score and the ground-truth error an oracle may use."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ralis.game.base import Observation
from ralis.models.inference import Prediction
from ralis.regions.base import Regions
from ralis.rl.observe import FeatureSpec, candidate_regions, with_kl

__all__ = ["candidate_images", "view_candidates", "region_error"]


def candidate_images(pools: torch.Tensor, per_image: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``pools [K, N]`` -> ``(images [n] sorted, row_of [K, N])``: the candidates' images and
    each candidate's row among them."""
    return torch.unique(pools // per_image, return_inverse=True)


def region_error(pred_ids: torch.Tensor, truth: torch.Tensor, regions: Regions,
                 images: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Share of each region's labelled pixels that ``pred_ids`` gets wrong: ``[n, H, W]`` maps of
    ``images [n]`` -> ``[n, R]`` (0 for a region without labelled pixels)."""
    labelled = truth != ignore_index
    wrong = (pred_ids != truth) & labelled
    num = regions.region_mean(wrong.float(), images)
    den = regions.region_mean(labelled.float(), images)
    return torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))


def view_candidates(
    step: int,
    pools: torch.Tensor,
    pred: Prediction,
    images: torch.Tensor,
    row_of: torch.Tensor,
    truth: torch.Tensor | None,
    regions: Regions,
    labelled_dist: Callable[[], torch.Tensor],
    labelled: torch.Tensor,
    state: torch.Tensor,
    spec: FeatureSpec,
    ignore_index: int,
) -> Observation:
    """The :class:`Observation` of ``pools [K, N]`` given a prediction over their images
    (``pred``: ``[n, H, W]`` maps of ``images [n]``; ``truth [n, H, W]`` their ground truth,
    ``None`` where none is known). ``labelled_dist()`` gives the labelled regions' class
    distributions ``[L, C + 1]`` (read only if the actions are), ``labelled [C]`` the labelled
    pixels' class shares, ``state`` the state features (computed now: the model changes when
    the step is played)."""
    local = pools % regions.per_image
    regional = candidate_regions(pred, images, row_of, pools, regions, spec)
    entropy = regions.region_mean(pred.entropy, images)[row_of, local]
    error = None
    if truth is not None:
        error = region_error(pred.pred_ids, truth, regions, images, ignore_index)[row_of, local]
    return Observation(step, pools, regional, entropy, error, labelled.float(), lambda: state,
                       lambda: with_kl(regional, labelled_dist(), spec))
