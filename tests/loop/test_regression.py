"""No silent regression: the final training is compared with θ0 on D_R, paired, with noise."""

from __future__ import annotations

import json

import pytest
import torch

from ralis.config import apply_overrides
from ralis.loop.pretrain import pretrain
from ralis.loop.simulate import simulate
from ralis.metrics import confusion_matrix, confusion_per_unit, mean_iou, mean_iou_batched
from ralis.training.regression import NOISE_Z, bootstrap_differences, compare
from tests.cli_helpers import run_cli

# A θ0 worth keeping, then AL steps at lr 3 that wreck it, and a final training that keeps the
# AL-phase model (the authors' recipe: continue from it, keep it unless an epoch beats it).
GOOD_THETA0 = ["train.pretrain_epochs=12", "train.pretrain_patience=12"]
REGRESSES = ["train.lr=3.0", "train.final_from=al", "train.final_epochs=1",
             "train.final_patience=1", "train.final_lr=0.000001"]
FIXED = ["train.lr=3.0", "train.final_from=start", "train.final_with_start_set=true",
         "train.final_lr=0.01", "train.final_schedule=cosine", "train.final_epochs=4",
         "train.final_patience=4"]


def test_confusion_per_unit_and_batched_miou() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randint(0, 4, (3, 9, 7), generator=g), torch.randint(0, 5, (3, 9, 7),
                                                                               generator=g)
    units = torch.arange(3).view(3, 1, 1).expand(3, 9, 7)
    per = confusion_per_unit(pred, target, units, 3, 4, ignore_index=4)
    assert torch.equal(per.sum(0), confusion_matrix(pred, target, 4, 4))
    assert torch.equal(per[1], confusion_matrix(pred[1], target[1], 4, 4))
    batched = mean_iou_batched(per)
    assert batched.tolist() == pytest.approx([mean_iou(c) for c in per])


def _units(n: int, wrong: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of 2 classes, 100 pixels each: the start model right everywhere, the
    final one wrong on ``wrong`` pixels of class 0 per image (+- a few)."""
    g = torch.Generator().manual_seed(seed)
    start = torch.tensor([[50, 0], [0, 50]]).repeat(n, 1, 1)
    errors = (wrong + torch.randint(-3, 4, (n,), generator=g)).clamp(0, 50)
    final = start.clone()
    final[:, 0, 0] -= errors
    final[:, 0, 1] += errors
    return start, final


def test_compare_known_answers() -> None:
    start, _ = _units(20, 0, 0)
    same = compare(start, start)
    assert same.delta == 0 and same.noise == 0 and not same.regressed
    start, final = _units(20, 10, 1)
    worse = compare(start, final)
    # about 10 of 50 pixels of class 0 wrong: IoU_0 ~ 40/50, IoU_1 ~ 50/60
    assert worse.start_miou == 1.0
    assert worse.miou == pytest.approx(float(mean_iou(final.sum(0))))
    assert worse.delta < -0.1 and worse.regressed
    assert worse.noise == pytest.approx(NOISE_Z * float(bootstrap_differences(start, final).std()))
    # noise is a standard error over units: 4x the images, about half the noise
    big_start, big_final = _units(80, 10, 1)
    ratio = compare(big_start, big_final).noise / worse.noise
    assert 0.35 < ratio < 0.65
    one = compare(start[:1], final[:1])
    assert one.noise is None and not one.regressed


def test_bootstrap_is_deterministic_and_paired() -> None:
    start, final = _units(15, 5, 2)
    a, b = bootstrap_differences(start, final, 200, seed=3), bootstrap_differences(
        start, final, 200, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, bootstrap_differences(start, final, 200, seed=4))
    # paired: a model against itself differs by exactly 0 on every draw
    assert bootstrap_differences(final, final, 50).abs().max() == 0


@pytest.fixture(scope="module")
def good_theta0(tiny_cfg, tiny_proto, tmp_path_factory):
    cfg = apply_overrides(tiny_cfg, GOOD_THETA0)
    return pretrain(cfg, tmp_path_factory.mktemp("good") / "theta0", progress=False,
                    proto=tiny_proto)


def test_a_recipe_that_regresses_says_so(tiny_cfg, tiny_proto, good_theta0, tmp_path) -> None:
    cfg = apply_overrides(tiny_cfg, [*GOOD_THETA0, *REGRESSES])
    res = simulate(cfg, "random", tmp_path / "bad", pretrained=good_theta0, progress=False,
                   proto=tiny_proto)
    theta0_val = json.loads((good_theta0.parent / "metrics.json").read_text())["val_miou"]
    assert res["regressed"] is True
    for b in res["budgets"]:
        assert b["start_val_miou"] == pytest.approx(theta0_val)
        assert b["val_delta"] == pytest.approx(b["val_miou"] - b["start_val_miou"])
        assert b["regressed"] and b["val_delta"] < -b["val_noise"] < 0
        assert 0 <= b["miou_last"] <= 1 and b["start_miou"] > b["miou"]
    assert len(res["warnings"]) == len(cfg.al.budgets)
    assert "train.final_from=start" in res["warnings"][0]
    assert "\n" not in res["warnings"][0]
    on_disk = json.loads((tmp_path / "bad" / "results.json").read_text())
    assert on_disk["regressed"] and on_disk["warnings"] == res["warnings"]


def test_the_fix_keeps_theta0s_level(tiny_cfg, tiny_proto, good_theta0, tmp_path) -> None:
    cfg = apply_overrides(tiny_cfg, [*GOOD_THETA0, *FIXED])
    res = simulate(cfg, "random", tmp_path / "fixed", pretrained=good_theta0, progress=False,
                   proto=tiny_proto)
    assert res["regressed"] is False and res["warnings"] == []
    for b in res["budgets"]:
        assert b["fixed_schedule"] and not b["regressed"]
        assert b["val_delta"] >= -b["val_noise"]


def test_cli_prints_the_warning(monkeypatch, capsys, tiny_proto, good_theta0, tmp_path) -> None:
    sets = [a for s in [*GOOD_THETA0, *REGRESSES] for a in ("--set", s)]
    code, out, err = run_cli(monkeypatch, capsys, "simulate", "--strategy", "random",
                             "--pretrained", str(good_theta0), "--out", str(tmp_path / "r"),
                             "--quiet", *sets)
    assert code == 0, err
    assert "REGRESSED" in out
    assert "warning regressed: random at 8 regions" in " ".join(out.split())
    assert "train.final_from=start" in " ".join(out.split())
