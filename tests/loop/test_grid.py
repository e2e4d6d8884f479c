import pytest

from ralis.loop.grid import run_grid
from ralis.report import read_csv


def test_grid_runs_every_cell_once_and_resumes(tiny_cfg, tmp_path, monkeypatch):
    csv_path = run_grid(tiny_cfg, tmp_path / "g", ["random", "ralis"], [0, 1], progress=False)
    rows = read_csv(csv_path)
    cells = {(r["strategy"], r["seed"], r["regions"]) for r in rows if r["strategy"] not in ("full", "theta0")}
    assert cells == {(s, seed, b) for s in ("random", "ralis") for seed in (0, 1)
                     for b in tiny_cfg.al.budgets}
    full = [r for r in rows if r["strategy"] == "full"]
    assert len(full) == 1 and full[0]["pixel_fraction"] == 1.0
    for r in rows:
        assert 0 <= r["miou"] <= 1 and r["git_revision"]
        assert "iou_sky" in r and r["config"]
    assert (tmp_path / "g" / "agent-s0" / "policy.safetensors").exists()
    assert not (tmp_path / "g" / "agent-s1").exists()  # one agent by default

    from ralis.loop.simulate import Simulation

    def boom(*a, **k):
        raise AssertionError("a finished cell was run again")

    # finished cells are opened (their record checked, views rewritten) but nothing reruns
    monkeypatch.setattr(Simulation, "do_step", boom)
    monkeypatch.setattr(Simulation, "final_train", boom)
    again = read_csv(run_grid(tiny_cfg, tmp_path / "g", ["random", "ralis"], [0, 1],
                              progress=False))
    assert len(again) == len(rows)


def test_report_from_the_grid(tiny_cfg, tmp_path):
    from ralis.report import write_report

    csv_path = run_grid(tiny_cfg, tmp_path / "g", ["random", "entropy"], [0, 1], upper=False,
                        progress=False)
    report = write_report(csv_path, tmp_path / "rep",
                          run_dirs={"random": tmp_path / "g" / "random-s0",
                                    "entropy": tmp_path / "g" / "entropy-s0"})
    text = report.read_text()
    assert "random" in text and "entropy" in text and ".png" in text
    pngs = list((tmp_path / "rep").glob("*.png"))
    assert len(pngs) >= 3
    with pytest.raises(Exception, match="budget"):
        write_report(csv_path, tmp_path / "rep2", budget=12345)


def test_grid_rerun_with_other_settings_is_refused(tiny_cfg, tmp_path):
    from ralis.config import apply_overrides
    from ralis.errors import ConfigError

    run_grid(tiny_cfg, tmp_path / "g", ["random"], [0], upper=False, progress=False)
    with pytest.raises(ConfigError, match="al.budgets"):
        run_grid(apply_overrides(tiny_cfg, ["al.budgets=8,12"]), tmp_path / "g", ["random"], [0],
                 upper=False, progress=False)


def test_final_training_settings_share_theta0_but_not_cells(tiny_cfg, tmp_path):
    """θ0 never reads the final-training fields, so a grid that only changes them reuses θ0
    (as camvid-cpu-v2 reuses camvid-cpu's); a changed pretraining setting is refused."""
    from ralis.config import apply_overrides
    from ralis.errors import ConfigError
    from ralis.loop.grid import check_reuse

    run_grid(tiny_cfg, tmp_path / "g", ["random"], [0], upper=False, progress=False)
    model = tmp_path / "g" / "theta0" / "model.safetensors"
    before = model.stat().st_mtime_ns
    v2 = apply_overrides(tiny_cfg, ["train.final_from=start", "train.final_lr=0.01",
                                    "train.final_schedule=cosine", "threads=1"])
    run_grid(v2, tmp_path / "g", ["entropy"], [0], upper=False, progress=False)
    assert model.stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match=r"threads|train\.final_"):
        check_reuse(tmp_path / "g" / "random-s0", v2, "simulate:random", ("seed", "preset"))
    with pytest.raises(ConfigError, match="train.pretrain_lr"):
        run_grid(apply_overrides(tiny_cfg, ["train.pretrain_lr=0.5"]), tmp_path / "g",
                 ["random"], [0], upper=False, progress=False)
