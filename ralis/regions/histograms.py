"""Per-region class histograms: predicted classes and ground-truth class distributions.

Reductions over the regions of any kind through :meth:`ralis.regions.base.Regions.bincount`
(rectangles or superpixels; pure and vectorised, no Python loop over pixels or regions). ``C``
classes, ``C + 1`` bins (the last one the ignore/void bin), ``N`` images, ``R`` region ids per
image. Empty bins hold :data:`ABSENT` (as the authors do), so that every KL divergence between
two histograms is finite. The RALIS state and action features
(:mod:`ralis.rl.state_features`, :mod:`ralis.rl.action_features`) and the oracle's labelled
class distributions (:mod:`ralis.training.oracle`) are built on them.
"""

from __future__ import annotations

import torch

from ralis.regions.base import Regions

__all__ = [
    "ABSENT",
    "distribution_from_counts",
    "normalize_histogram",
    "region_class_distribution",
    "region_class_histogram",
    "void_as_last_bin",
]

ABSENT = 1e-7
"""Value given to empty histogram bins (as the authors do), so that every KL is finite."""


# ------------------------------------------------------------------------------------------
# Class histograms


def _check_ids(ids: torch.Tensor, what: str) -> None:
    if ids.dim() != 3:
        raise ValueError(f"{what} must be [N, H, W], got shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{what} must be an integer tensor, got {ids.dtype}")


def normalize_histogram(hist: torch.Tensor) -> torch.Tensor:
    """Divide every histogram by its sum over the last dimension: ``[..., D]`` -> ``[..., D]``.

    This is the normalisation ``scipy.stats.entropy`` applies to its arguments, so the
    predicted class distribution of a region is ``normalize_histogram(raw counts)``.
    """
    return hist / hist.sum(dim=-1, keepdim=True)


def region_class_histogram(
    pred_ids: torch.Tensor,
    regions: Regions,
    num_classes: int,
    normalize: bool = False,
    images: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-region histogram of predicted classes.

    Args:
        pred_ids: ``[N, H, W]`` integer predicted class ids in ``[0, num_classes)``.
        regions: the regions of the images (any kind).
        num_classes: ``C``; the histogram has ``C + 1`` bins, the last one the ignore bin
            (always empty for predictions).
        normalize: ``False`` (the authors' code): raw pixel counts. ``True``: the counts
            divided by their sum (:func:`normalize_histogram`), i.e. class fractions.
        images: ``[N]`` the maps' image indices within ``regions``' image set (default
            ``0..N-1``).

    Returns:
        ``[N, R, C + 1]`` float32. Empty bins hold :data:`ABSENT` (1e-7) *before* the optional
        normalisation, so the counts of a region sum to its pixel count plus ``1e-7`` per empty
        bin (a padding id: every bin ``ABSENT``).
    """
    _check_ids(pred_ids, "pred_ids")
    if pred_ids.numel() and (int(pred_ids.min()) < 0 or int(pred_ids.max()) >= num_classes):
        raise ValueError(
            f"predicted class ids must lie in [0, {num_classes}), got "
            f"[{int(pred_ids.min())}, {int(pred_ids.max())}]"
        )
    counts = regions.bincount(pred_ids, num_classes + 1, images).float()
    hist = counts.masked_fill_(counts == 0, ABSENT)
    return normalize_histogram(hist) if normalize else hist


def region_class_distribution(
    mask: torch.Tensor,
    regions: Regions,
    num_classes: int,
    ignore_index: int,
    images: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ground-truth class distribution of every region, void bin included.

    Used for the labelled regions of the KL-to-labelled feature: pixel fractions of the
    ``C`` classes plus the void class (pixels equal to ``ignore_index`` go to the last bin) --
    counts divided by the region's pixel count (their sum; at least 1, for padding ids) --
    empty bins set to :data:`ABSENT` (1e-7), then renormalised to sum 1.

    Args:
        mask: ``[N, H, W]`` integer labels in ``[0, num_classes)`` or ``ignore_index``.
        regions: the regions of the images (any kind).
        images: ``[N]`` the maps' image indices within ``regions``' image set (default
            ``0..N-1``).

    Returns:
        ``[N, R, C + 1]`` float32, each row summing to 1 (a padding id: uniform).
    """
    _check_ids(mask, "mask")
    ids = void_as_last_bin(mask, num_classes, ignore_index)
    return distribution_from_counts(regions.bincount(ids, num_classes + 1, images))


def void_as_last_bin(labels: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Labels with ``ignore_index`` mapped to bin ``C`` (void); ValueError on other values.
    Any shape -> the same shape."""
    ids = torch.where(labels == ignore_index, torch.full_like(labels, num_classes), labels)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) > num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}, "
            f"got [{int(labels.min())}, {int(labels.max())}]"
        )
    return ids


def distribution_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Per-region class counts ``[..., C + 1]`` -> fractions of the region's pixels (at least 1
    pixel: padding ids), empty bins :data:`ABSENT`, renormalised to sum 1 (float32)."""
    pixels = counts.sum(dim=-1, keepdim=True).clamp(min=1)
    frac = counts.float() / pixels.float()
    frac.masked_fill_(frac == 0, ABSENT)
    return normalize_histogram(frac)
