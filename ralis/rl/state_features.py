"""Hand-crafted state features of the RALIS query agent (reference section 3): per region, its
predicted class histogram and its pooled entropy.

All functions are pure and vectorised: no Python loop runs over pixels, regions or region
pairs (loops only run over *chunks* of images or rows, to bound memory).

Regions come from any region kind through the :class:`~ralis.regions.base.Regions` interface
(rectangles, :class:`~ralis.regions.rect.RegionGrid`; superpixels,
:class:`~ralis.regions.superpixels.SuperpixelRegions`). The per-region reductions are the
interface's ``bincount`` and ``cell_pool``; ``images`` (``[N]`` long, optional) are the maps'
image indices within the region object's image set (default ``0..N-1``; rectangles ignore them,
superpixels look their label maps up with them).

Notation: ``N`` images, ``R`` region ids per image (``regions.per_image``; superpixel ids are
padded to the most segments of any image, and padding ids have no pixels), ``C`` classes,
``C + 1`` histogram bins (the last one is the ignore/void bin,
:mod:`ralis.regions.histograms`), ``P`` pooled-entropy features per region
(``len(poolings) * out * out``; 192 for the paper's min/mean/max pooling to 8x8).

Layout per region: ``[class histogram (C+1) | pooled entropy (P)]`` -> ``C + 1 + 192``; the
action features (:mod:`ralis.rl.action_features`) start with the same columns. A padding id
(superpixels only) has constant features: every histogram bin
:data:`ralis.regions.histograms.ABSENT` and a pooled entropy of 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ralis.errors import ConfigError
from ralis.regions.base import Regions
from ralis.regions.histograms import region_class_histogram

__all__ = ["POOLINGS", "pooled_entropy", "region_features", "state_features"]

POOLINGS = ("min", "mean", "max")
"""The paper's entropy poolings, in feature order."""


# ------------------------------------------------------------------------------------------
# Entropy pooling


def _check_poolings(poolings: Sequence[str]) -> tuple[str, ...]:
    poolings = tuple(poolings)
    bad = [p for p in poolings if p not in POOLINGS]
    if bad or not poolings or len(set(poolings)) != len(poolings):
        raise ConfigError(
            f"entropy poolings must be distinct names among {POOLINGS}, got {poolings}"
        )
    return poolings


def pooled_entropy(
    entropy: torch.Tensor,
    regions: Regions,
    out: int = 8,
    poolings: Sequence[str] = POOLINGS,
    images: torch.Tensor | None = None,
) -> torch.Tensor:
    """Min / mean / max pooling of every region's entropy map to ``out x out`` cells.

    Rectangles: the kernel is ``(h // out, w // out)`` with stride = kernel and no padding, so
    the last ``h % out`` rows and ``w % out`` columns of a region are dropped (CamVid: 90x80
    regions, kernel 11x10, the last 2 rows dropped), as in the reference. Superpixels: an
    ``out x out`` grid of cells over each segment's bounding box, pooling the segment's own
    pixels only; a cell without any takes the segment's mean (0 for padding ids). See
    ``regions.cell_pool``.

    Args:
        entropy: ``[N, H, W]`` per-pixel entropy.
        regions: the regions of the images (any kind).
        out: output side (8 in the paper).
        poolings: which poolings, in output order (default ``("min", "mean", "max")``;
            ``("max",)`` for the paper's 1H ablation).
        images: ``[N]`` the maps' image indices within ``regions``' image set (default
            ``0..N-1``).

    Returns:
        ``[N, R, len(poolings) * out * out]`` (192 by default), each pooled map flattened
        row-major, concatenated ``[min | mean | max]``.
    """
    poolings = _check_poolings(poolings)
    if entropy.dim() != 3:
        raise ValueError(f"entropy must be [N, H, W], got shape {tuple(entropy.shape)}")
    return regions.cell_pool(entropy, out, poolings, images)


# ------------------------------------------------------------------------------------------
# State features


def region_features(
    pred_ids: torch.Tensor,
    entropy: torch.Tensor,
    regions: Regions,
    num_classes: int,
    poolings: Sequence[str] = POOLINGS,
    normalize: bool = False,
    out: int = 8,
    images: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-region ``[class histogram | pooled entropy]`` of every region of every image.

    Args:
        pred_ids: ``[N, H, W]`` predicted class ids.
        entropy: ``[N, H, W]`` per-pixel entropy of the prediction.
        regions: the regions of the images (any kind).
        normalize: normalise the class histogram (the authors use raw counts).
        images: ``[N]`` the maps' image indices within ``regions``' image set (default
            ``0..N-1``).

    Returns:
        ``[N, R, C + 1 + P]`` with ``P = len(poolings) * out * out``. Candidate features are
        rows of this tensor (index with the candidates' local region ids).
    """
    hist = region_class_histogram(pred_ids, regions, num_classes, normalize=normalize,
                                  images=images)
    pooled = pooled_entropy(entropy, regions, out=out, poolings=poolings, images=images)
    return torch.cat([hist, pooled.to(hist.dtype)], dim=-1)


def state_features(
    pred_ids: torch.Tensor,
    entropy: torch.Tensor,
    regions: Regions,
    num_classes: int,
    poolings: Sequence[str] = POOLINGS,
    normalize: bool = False,
    out: int = 8,
    images: torch.Tensor | None = None,
) -> torch.Tensor:
    """The agent's state: features of every region of the state-set images.

    Args:
        pred_ids: ``[N, H, W]`` predicted class ids of the ``N`` state images.
        entropy: ``[N, H, W]`` per-pixel entropy.
        regions: the state set's regions (any kind).
        poolings: entropy poolings (``("max",)`` gives ``C + 1 + 64``).
        images: ``[N]`` the maps' image indices within ``regions``' image set (default
            ``0..N-1``).

    Returns:
        ``[N * R, C + 1 + P]`` (``R_S = N * R`` rows in image-major order, padding ids of
        superpixels included; ``C + 1 + 192`` by default, e.g. ``[240, 204]`` for 10 CamVid
        images).
    """
    feats = region_features(pred_ids, entropy, regions, num_classes, poolings, normalize, out,
                            images)
    return feats.reshape(-1, feats.shape[-1])
