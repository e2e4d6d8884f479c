import json
from dataclasses import replace

import pytest
import torch

import ralis.loop.simulate as sim_mod
import ralis.provenance as provenance
from ralis.config import apply_overrides
from ralis.errors import ConfigError
from ralis.loop.simulate import simulate
from ralis.run.store import RunStore


def _crashing_at(call: int, train_pass):
    """``train_pass`` that raises KeyboardInterrupt on its ``call``-th call (a crash mid-run)."""
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return train_pass(*args, **kwargs)

    return flaky


def run(cfg, proto, theta0, out, strategy="entropy", **kw):
    return simulate(cfg, strategy, out, pretrained=theta0, progress=False, proto=proto, **kw)


def test_simulate_writes_results_with_every_budget(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    res = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "r")
    on_disk = json.loads((tmp_path / "r" / "results.json").read_text())
    assert on_disk["strategy"] == "entropy" and on_disk["seed"] == 0
    assert on_disk["dataset"] == "synthetic"
    assert [b["regions"] for b in res["budgets"]] == list(tiny_cfg.al.budgets)
    grid = tiny_proto.grid
    for b in res["budgets"]:
        assert 0.0 <= b["miou"] <= 1.0
        assert set(b["iou"]) == set(tiny_proto.classes.names)
        expected_px = b["regions"] * grid.region_pixels / (len(tiny_proto.pool) * 48 * 64)
        assert b["pixel_fraction"] == pytest.approx(expected_px)
        assert sum(b["class_distribution"].values()) == pytest.approx(1.0)
    store = RunStore(tmp_path / "r")
    acq = store.acquisitions()
    assert len(acq) == max(tiny_cfg.al.budgets) == len({r for _, r in acq})
    steps = [s for s, _ in acq]
    assert steps == sorted(steps) and steps[0] == 1
    csv = (tmp_path / "r" / "acquired_regions.csv").read_text().splitlines()
    assert len(csv) == 1 + len(acq)
    assert (tmp_path / "r" / "config.json").exists()


def test_same_seed_same_run_other_seed_other_regions(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    a = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "a", "bald")
    b = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "b", "bald")
    c = run(replace(tiny_cfg, seed=1), tiny_proto, tiny_theta0, tmp_path / "c", "bald")
    regions = [RunStore(tmp_path / x).acquisitions() for x in "abc"]
    assert regions[0] == regions[1] and regions[0] != regions[2]
    assert [x["miou"] for x in a["budgets"]] == [x["miou"] for x in b["budgets"]]
    assert c["seed"] == 1


def test_interrupted_run_resumes_without_relabelling(
    tiny_cfg, tiny_proto, tiny_theta0, tmp_path, monkeypatch
):
    reference = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "ref", "random")
    real_train_pass = sim_mod.train_pass
    # step 3: regions already chosen and stored, then a crash
    monkeypatch.setattr(sim_mod, "train_pass", _crashing_at(3, real_train_pass))
    with pytest.raises(KeyboardInterrupt):
        run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "cut", "random")
    stored = RunStore(tmp_path / "cut").acquisitions()
    assert {s for s, _ in stored} == {1, 2, 3}  # step 3's labels survived the crash
    monkeypatch.setattr(sim_mod, "train_pass", real_train_pass)
    with pytest.raises(ConfigError, match="--resume"):
        run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "cut", "random")
    resumed = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "cut", "random", resume=True)
    after = RunStore(tmp_path / "cut").acquisitions()
    assert after[: len(stored)] == stored
    assert after == RunStore(tmp_path / "ref").acquisitions()
    assert [b["miou"] for b in resumed["budgets"]] == pytest.approx(
        [b["miou"] for b in reference["budgets"]], abs=1e-9)


def test_budget_larger_than_pool_is_rejected(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    cfg = apply_overrides(tiny_cfg, ["al.budgets=8,100000"])
    with pytest.raises(ConfigError, match="larger than the pool"):
        run(cfg, tiny_proto, tiny_theta0, tmp_path / "big")


def test_user_model_without_feature_split_works_in_the_loop(tiny_cfg, tiny_proto, tmp_path):
    """Any nn.Module returning logits [N, C, H, W] can be plugged in (here via θ0 file)."""
    from ralis.loop.simulate import Simulation

    class Plain(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Dropout2d(0.3),
                torch.nn.Conv2d(8, c, 1))

        def forward(self, x):
            return self.body(x)

    sim = Simulation(tiny_cfg, "bald", tmp_path / "plain", tiny_proto,
                     Plain(tiny_proto.num_classes), progress=False)
    res = sim.run()
    assert [b["regions"] for b in res["budgets"]] == list(tiny_cfg.al.budgets)


def test_resume_refuses_another_start_model(tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    from ralis.files.safe import load_file, save_file

    run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "r", "random")
    tree, record = load_file(tiny_theta0, "model")
    key = next(iter(tree["state_dict"]))
    tree["state_dict"][key] = tree["state_dict"][key] * 0.5
    other = save_file(tmp_path / "other.safetensors", tree, "model", record)
    with pytest.raises(ConfigError, match="another --pretrained file"):
        simulate(tiny_cfg, "random", tmp_path / "r", pretrained=other, resume=True,
                 progress=False, proto=tiny_proto)
    # the same content elsewhere is the same θ0 (run directories and models get moved)
    moved = tmp_path / "moved.safetensors"
    moved.write_bytes(tiny_theta0.read_bytes())
    simulate(tiny_cfg, "random", tmp_path / "r", pretrained=moved, resume=True, progress=False,
             proto=tiny_proto)
    # leaving it out reuses the recorded one
    simulate(tiny_cfg, "random", tmp_path / "r", resume=True, progress=False, proto=tiny_proto)
    assert not (tmp_path / "r" / "pretrain").exists()


def test_bald_without_dropout_is_refused(tiny_cfg, tiny_proto, tmp_path):
    from ralis.loop.simulate import Simulation
    from ralis.models import create_model

    net = create_model("fpn_small", tiny_proto.num_classes, dropout_p=0.0)
    sim = Simulation(tiny_cfg, "bald", tmp_path / "b", tiny_proto, net, progress=False)
    with pytest.raises(ConfigError, match="dropout"):
        sim.run()


def test_results_name_the_code_that_computed_them(
    tiny_cfg, tiny_proto, tiny_theta0, tmp_path, monkeypatch
):
    """Resuming under newer code adds its revision; reopening a finished run adds nothing."""
    real_train_pass = sim_mod.train_pass
    monkeypatch.setattr(provenance, "git_revision", lambda: "aaa1111")
    monkeypatch.setattr(sim_mod, "train_pass", _crashing_at(3, real_train_pass))
    with pytest.raises(KeyboardInterrupt):
        run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "r", "random")
    monkeypatch.setattr(sim_mod, "train_pass", real_train_pass)
    monkeypatch.setattr(provenance, "git_revision", lambda: "bbb2222")
    res = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "r", "random", resume=True)
    assert res["git_revision"] == "aaa1111 + bbb2222"
    monkeypatch.setattr(provenance, "git_revision", lambda: "ccc3333-dirty")
    again = run(tiny_cfg, tiny_proto, tiny_theta0, tmp_path / "r", "random", resume=True)
    assert again["git_revision"] == "aaa1111 + bbb2222"
    on_disk = json.loads((tmp_path / "r" / "results.json").read_text())
    assert on_disk["git_revision"] == "aaa1111 + bbb2222"
    # a record from before `computed_by` was kept names the revision that created the run
    store = RunStore(tmp_path / "r")
    store.db.execute("DELETE FROM meta WHERE key = 'computed_by'")
    store.db.commit()
    assert store.computed_by() == store.get_meta("git_revision")
