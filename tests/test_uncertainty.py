import math

import pytest
import torch

from ralis.uncertainty import bald, entropy_from_logits, pixel_entropy


def test_entropy_known_answers():
    uniform = torch.full((1, 4, 2, 2), 0.25)
    assert pixel_entropy(uniform) == pytest.approx(torch.full((1, 2, 2), math.log(4)))
    onehot = torch.zeros(1, 3, 1, 1)
    onehot[0, 1] = 1
    assert pixel_entropy(onehot).item() == pytest.approx(0.0, abs=1e-9)
    probs, ent = entropy_from_logits(torch.zeros(2, 5, 3, 3))
    assert torch.allclose(probs, torch.full_like(probs, 0.2))
    assert torch.allclose(ent, torch.full((2, 3, 3), math.log(5)))


def test_bald_known_answers():
    # all samples agree: no mutual information even if uncertain
    same = torch.full((4, 1, 2, 1, 1), 0.5)
    assert bald(same).abs().max() < 1e-6
    # samples confidently disagree: MI = H(mean) - 0 = log 2
    a = torch.tensor([1.0, 0.0]).view(1, 1, 2, 1, 1)
    b = torch.tensor([0.0, 1.0]).view(1, 1, 2, 1, 1)
    assert bald(torch.cat([a, b])).item() == pytest.approx(math.log(2), abs=1e-6)
