"""Mixed precision (train.amp): bf16 autocast runs training and inference end to end, and its
predictions stay close to float32."""

from __future__ import annotations

import torch

from ralis.config import apply_overrides, get_preset
from ralis.loop.simulate import simulate
from ralis.models import create_model
from ralis.models.inference import bald_map, predict
from ralis.precision import autocast


def test_autocast_is_bf16_when_enabled_and_a_no_op_otherwise():
    x = torch.randn(4, 4)
    with autocast("cpu", True):
        assert (x @ x).dtype == torch.bfloat16
    with autocast("cpu", False):
        assert (x @ x).dtype == torch.float32
    with autocast("cuda:1", False):  # a device string with an index is fine
        assert (x @ x).dtype == torch.float32


def test_bf16_inference_is_close_to_float32():
    torch.manual_seed(0)
    model = create_model("fpn_small", 5, dropout_p=0.5).eval()
    images = torch.randint(0, 255, (3, 3, 48, 64), dtype=torch.uint8)
    full, half = predict(model, images, 2), predict(model, images, 2, amp=True)
    assert half.entropy.dtype == torch.float32
    assert torch.allclose(full.entropy, half.entropy, atol=0.05)
    assert (full.pred_ids == half.pred_ids).float().mean() > 0.9
    torch.manual_seed(1)
    b32 = bald_map(model, images, 4, 2)
    torch.manual_seed(1)
    b16 = bald_map(model, images, 4, 2, amp=True)
    assert torch.isfinite(b16).all() and torch.allclose(b32, b16, atol=0.05)


def test_a_simulation_runs_in_mixed_precision(tmp_path):
    cfg = apply_overrides(get_preset("synthetic-tiny"), ["train.amp=true"])
    results = simulate(cfg, "entropy", tmp_path / "amp", progress=False)
    assert [b["regions"] for b in results["budgets"]] == [8, 16]
    assert all(0 < b["miou"] < 1 and 0 < b["val_miou"] < 1 for b in results["budgets"])
