"""Segmentation metrics: confusion matrix, per-class IoU, mIoU, class statistics of labels."""

from __future__ import annotations

import math

import torch

from ralis.errors import DataError


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int
) -> torch.Tensor:
    """Dataset-level confusion counts in one ``bincount``.

    Args:
        pred: ``[...]`` predicted class ids.
        target: ``[...]`` ground truth ids; ``ignore_index`` (and ids >= C) are dropped.
    Returns:
        ``[C, C]`` int64, rows = ground truth, columns = prediction.
    """
    target = target.reshape(-1)
    pred = pred.reshape(-1)
    keep = (target != ignore_index) & (target >= 0) & (target < num_classes)
    idx = target[keep] * num_classes + pred[keep]
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_per_unit(
    pred: torch.Tensor, target: torch.Tensor, unit_ids: torch.Tensor, units: int,
    num_classes: int, ignore_index: int,
) -> torch.Tensor:
    """One confusion matrix per unit (an image, a region) in one ``bincount``.

    Args:
        pred, target: ``[...]`` class ids (as :func:`confusion_matrix`).
        unit_ids: ``[...]`` the unit of each pixel, in ``[0, units)``; negative: not counted.
    Returns:
        ``[units, C, C]`` int64; their sum is :func:`confusion_matrix` of the counted pixels.
    """
    target, pred, unit_ids = target.reshape(-1), pred.reshape(-1), unit_ids.reshape(-1)
    keep = ((target != ignore_index) & (target >= 0) & (target < num_classes) & (unit_ids >= 0)
            & (unit_ids < units))
    cc = num_classes * num_classes
    idx = unit_ids[keep] * cc + target[keep] * num_classes + pred[keep]
    return torch.bincount(idx, minlength=units * cc).reshape(units, num_classes, num_classes)


def mean_iou_batched(confusion: torch.Tensor) -> torch.Tensor:
    """``[..., C, C]`` -> ``[...]`` mIoU over the classes with a non-empty union (NaN if none),
    as :func:`mean_iou` for each matrix of a batch (e.g. bootstrap resamples)."""
    conf = confusion.double()
    tp = conf.diagonal(dim1=-2, dim2=-1)
    union = conf.sum(-2) + conf.sum(-1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.nan).nanmean(-1)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """``[C, C]`` -> ``[C]`` IoU = TP / (row + col - TP); NaN where the union is empty."""
    conf = confusion.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan))


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean IoU over classes with a non-empty union (all of them on the paper's test sets).

    Raises DataError when the confusion matrix is empty: an mIoU of a set without a single
    labelled pixel would be a made-up number.
    """
    if int(confusion.sum()) == 0:
        raise DataError(
            "no labelled pixels in the evaluation set: every mask pixel is void (ignore index), "
            "so there is no mIoU to report; check the masks with `ralis data check`"
        )
    iou = iou_per_class(confusion)
    return float(iou[~torch.isnan(iou)].mean())


def pixel_accuracy(confusion: torch.Tensor) -> float:
    total = confusion.sum()
    return float(confusion.diag().sum() / total) if total > 0 else 0.0


def class_distribution(masks: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Fraction of labelled (non-ignore) pixels per class: ``[...]`` ids -> ``[C]`` summing to 1."""
    flat = masks.reshape(-1)
    flat = flat[(flat != ignore_index) & (flat >= 0) & (flat < num_classes)]
    counts = torch.bincount(flat, minlength=num_classes).double()
    return counts / counts.sum() if counts.sum() > 0 else counts


def distribution_entropy(dist: torch.Tensor) -> float:
    """Shannon entropy (nats) of a class distribution ``[C]``; 0 log 0 = 0."""
    p = dist.double()
    p = p[p > 0]
    return float(-(p * p.log()).sum())
