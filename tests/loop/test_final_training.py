"""The final training's recipes: continue from the AL model (authors) or restart from θ0."""

import json

import pytest
import torch

from ralis.config import apply_overrides
from ralis.loop.simulate import Simulation, miou_on, simulate
from ralis.training.supervised import load_start_model

START = ["train.final_from=start"]


def test_restart_with_no_epochs_is_theta0_exactly(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    """final_from=start and 0 epochs: every budget reports θ0's own test mIoU, whatever the
    AL phase did to the model in between."""
    cfg = apply_overrides(tiny_cfg, [*START, "train.final_epochs=0", "train.lr=0.05"])
    res = simulate(cfg, "random", tmp_path / "r", pretrained=tiny_theta0, progress=False,
                   proto=tiny_proto)
    theta0 = load_start_model(tiny_theta0, cfg, tiny_proto)
    expected, _ = miou_on(theta0, tiny_proto.test, tiny_proto, cfg)
    assert [b["miou"] for b in res["budgets"]] == [pytest.approx(expected)] * len(cfg.al.budgets)
    # the authors' recipe keeps the AL-phase model, which one pass at lr 0.05 has changed
    cont = apply_overrides(tiny_cfg, ["train.final_epochs=0", "train.lr=0.05"])
    res_al = simulate(cont, "random", tmp_path / "al", pretrained=tiny_theta0, progress=False,
                      proto=tiny_proto)
    assert res_al["budgets"][-1]["miou"] != pytest.approx(expected)


def test_restart_keeps_its_best_epoch_not_theta0(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    """θ0's D_R score is no bar for a restart: the reported D_R mIoU is one of its epochs'."""
    cfg = apply_overrides(tiny_cfg, [*START, "train.final_epochs=2", "train.final_patience=2",
                                     "train.final_lr=0.5", "train.final_schedule=cosine"])
    res = simulate(cfg, "random", tmp_path / "r", pretrained=tiny_theta0, progress=False,
                   proto=tiny_proto)
    assert all(b["epochs"] == 2 for b in res["budgets"])  # no early stop against θ0


def test_training_set_with_start_set(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    cfg = apply_overrides(tiny_cfg, [*START, "train.final_with_start_set=true"])
    model = load_start_model(tiny_theta0, cfg, tiny_proto)
    sim = Simulation(cfg, "random", tmp_path / "s", tiny_proto, model, progress=False)
    sim._label(torch.tensor([3, 17]), 1)
    data, ids = sim.final_training_set()
    n_dt, per = len(tiny_proto.dqn_train), tiny_proto.grid.per_image
    assert data.images_u8.shape[0] == n_dt + len(tiny_proto.pool)
    assert ids.tolist() == list(range(n_dt * per)) + [n_dt * per + 3, n_dt * per + 17]
    assert torch.equal(data.masks[:n_dt], tiny_proto.dqn_train.masks)  # D_T fully labelled
    assert torch.equal(data.masks[n_dt:], sim.oracle.partial_masks[:])
    sim.store.close()
    plain = Simulation(tiny_cfg, "random", tmp_path / "p", tiny_proto, model, progress=False)
    plain._label(torch.tensor([3, 17]), 1)
    assert plain.final_training_set()[1].tolist() == [3, 17]
    plain.store.close()


@pytest.mark.parametrize("bad, message", [
    ("train.final_from=scratch", "final_from"),
    ("train.final_schedule=step", "final_schedule"),
    ("train.final_samples_per_epoch=0", "final_samples_per_epoch"),
    ("train.final_lr=-1", "final_lr"),
])
def test_bad_final_settings_are_one_line_errors(tiny_cfg, bad, message):
    from ralis.config import validate
    from ralis.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        validate(apply_overrides(tiny_cfg, [bad]))


def test_replay_script_reproduces_a_final_training(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    """benchmarks/final_training.py retrains on a finished run's labels; with the run's own
    recipe it gives the run's own numbers."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "final_training.py"
    spec = importlib.util.spec_from_file_location("final_training_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = apply_overrides(tiny_cfg, [*START, "train.final_lr=0.01", "train.final_epochs=1"])
    res = simulate(cfg, "entropy", tmp_path / "r", pretrained=tiny_theta0, progress=False,
                   proto=tiny_proto)
    module.RECIPES["same"] = []
    out = tmp_path / "replay.json"
    module.main([str(tmp_path / "r"), "--pretrained", str(tiny_theta0), "--budgets",
                 ",".join(map(str, cfg.al.budgets)), "--recipes", "same", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["miou"] for r in rows] == pytest.approx([b["miou"] for b in res["budgets"]])
