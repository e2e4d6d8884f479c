"""benchmarks/label_free_check.py: where a pick lands in its pool, known answers."""

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "label_free_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("label_free_check_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pick_quality_is_one_at_the_best_and_zero_on_average():
    quality = _script().pick_quality
    truth = torch.tensor([[1.0, 2.0, 3.0, 6.0], [0.0, 4.0, -4.0, 0.0]])  # pool means 3 and 0
    assert quality(truth, torch.tensor([3, 1])) == [1.0, 1.0]  # the best of each pool
    assert quality(truth, torch.tensor([2, 0])) == [0.0, 0.0]  # the mean's value
    assert torch.allclose(torch.tensor(quality(truth, torch.tensor([0, 2]))),
                          torch.tensor([-2 / 3, -1.0]))
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(200, 20, generator=g)
    every = torch.tensor([quality(truth, torch.full((200,), n)) for n in range(20)])
    assert every.mean(0).abs().max() < 1e-5  # over all candidates of a pool: exactly 0
