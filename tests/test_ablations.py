"""benchmarks/ablations.py on synthetic-tiny: every study, the summary files, resuming, errors."""

import importlib.util
import sys
from pathlib import Path

import pytest

from ralis.report import read_csv

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablations.py"


@pytest.fixture(scope="module")
def ablations():
    spec = importlib.util.spec_from_file_location("ablations_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def tiny_args(out):
    # budgets are multiples of the 12 regions per image, so whole images are 1 and 2
    return ["--preset", "synthetic-tiny", "--seeds", "0", "--budgets", "12,24", "--out", str(out),
            "--set", "agent.episodes=1", "--set", "train.final_epochs=1",
            "--set", "train.pretrain_epochs=1", "--set", "al.eval_every=0",
            "--k-values", "1,48", "--quiet"]


def test_every_study_then_resume_skips_finished_cells(ablations, tmp_path, monkeypatch):
    out = tmp_path / "abl"
    assert ablations.main(tiny_args(out)) == 0
    rows = read_csv(out / "ablations.csv")
    for col in ("study", "variant", "unit", "strategy", "seed", "regions_per_step",
                "region_budget", "budget_pixels_fraction", "miou", "run_dir"):
        assert col in rows[0]
    cells = {(r["study"], r["variant"], r["strategy"], r["region_budget"]) for r in rows}
    expected = {("features", v, "ralis", b) for v in ("max", "3H", "3H+KL") for b in (12, 24)}
    expected |= {("features", "entropy", "entropy", b) for b in (12, 24)}
    expected |= {("image_vs_region", u, s, b) for u in ("region", "image")
                 for s in ("random", "entropy", "bald") for b in (12, 24)}
    expected |= {("regions_per_step", f"K={k}", "entropy", b) for k in (1, 48) for b in (12, 24)}
    assert cells == expected and len(rows) == len(expected)
    assert all(r["seed"] == 0 and 0 <= r["miou"] <= 1 for r in rows)

    image = [r for r in rows if r["unit"] == "image"]
    region = [r for r in rows if r["study"] == "image_vs_region" and r["unit"] == "region"]
    assert {r["regions"] for r in image} == {1, 2}  # whole images
    assert {r["regions_per_step"] for r in image} == {1}
    px = {r["region_budget"]: r["budget_pixels_fraction"] for r in region}
    for r in image:  # equal pixel budgets
        assert r["budget_pixels_fraction"] == pytest.approx(px[r["region_budget"]])
    assert {r["regions_per_step"] for r in rows if r["study"] == "regions_per_step"} == {1, 48}
    # identical cells run once: region/entropy is the features study's entropy baseline
    shared = {r["run_dir"] for r in rows if r["strategy"] == "entropy" and r["unit"] == "region"
              and r["study"] != "regions_per_step"}
    assert shared == {"features/entropy-s0"}

    from ralis.rl.policy import load_policy

    for name, poolings, use_kl in (("max", ("max",), False), ("3h", ("min", "mean", "max"), False),
                                   ("3h-kl", ("min", "mean", "max"), True)):
        _, spec, _ = load_policy(out / "features" / f"agent-ralis-{name}" / "policy.safetensors")
        assert spec.poolings == poolings and spec.use_kl == use_kl

    md = (out / "ablations.md").read_text()
    for text in ("features", "image_vs_region", "regions_per_step", "3H+KL", "git revision",
                 "--preset synthetic-tiny", "K = 1 is slow", "RALIS runs under region"):
        assert text in md

    def boom(*a, **k):
        raise AssertionError("a finished cell or agent was run again")

    monkeypatch.setattr(ablations, "simulate", boom)
    monkeypatch.setattr(ablations, "train_agent", boom)
    assert ablations.main(tiny_args(out)) == 0
    assert len(read_csv(out / "ablations.csv")) == len(rows)

    # another setting in the same directory is refused, not silently reused
    changed = [*tiny_args(out), "--set", "train.lr=0.5"]
    assert ablations.main(changed) == 2


@pytest.mark.parametrize("extra, message", [
    (["--study", "features,colour"], "unknown study 'colour'"),
    (["--strategy", "ralis"], "--policy"),
])
def test_user_mistakes_exit_2_with_one_line(ablations, tmp_path, capsys, extra, message):
    args = ["--preset", "synthetic-tiny", "--out", str(tmp_path / "x"), "--quiet", *extra]
    assert ablations.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "x").exists()
