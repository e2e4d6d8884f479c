import math

import pytest
import torch

from ralis.errors import DataError
from ralis.metrics import (
    class_distribution,
    confusion_matrix,
    distribution_entropy,
    iou_per_class,
    mean_iou,
)


def test_confusion_and_iou_known_answer():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 9, 1]])  # 9 = ignore
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 1]])
    conf = confusion_matrix(pred, target, 3, ignore_index=9)
    assert conf.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    iou = iou_per_class(conf)
    # class 0: tp 1, fn 1, fp 1 -> 1/3; class 1: 3/(3+1) ; class 2: 1/(1+1)
    assert iou.tolist() == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert mean_iou(conf) == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)


def test_empty_class_is_nan_and_skipped():
    conf = confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 0]), 2, ignore_index=255)
    iou = iou_per_class(conf)
    assert iou[0] == 1 and math.isnan(iou[1])
    assert mean_iou(conf) == 1.0


def test_miou_of_a_set_without_labelled_pixels_is_an_error():
    target = torch.full((2, 3), 255)  # every pixel void
    conf = confusion_matrix(torch.zeros(2, 3, dtype=torch.long), target, 3, ignore_index=255)
    assert conf.sum() == 0
    with pytest.raises(DataError, match="no labelled pixels in the evaluation set"):
        mean_iou(conf)
    one = confusion_matrix(torch.tensor([1]), torch.tensor([2]), 3, ignore_index=255)
    assert mean_iou(one) == 0.0  # one labelled pixel, predicted wrong: a real 0


def test_class_distribution_and_entropy():
    masks = torch.tensor([0, 0, 1, 255, 3])
    dist = class_distribution(masks, 4, 255)
    assert dist.tolist() == pytest.approx([0.5, 0.25, 0, 0.25])
    assert distribution_entropy(dist) == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))
    assert distribution_entropy(torch.tensor([1.0, 0, 0])) == 0.0
