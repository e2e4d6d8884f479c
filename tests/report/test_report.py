"""Results table, number helpers, figures and the Markdown report, on synthetic rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ralis.config import get_preset, save_config
from ralis.errors import RalisError
from ralis.report import (
    collect,
    figures,
    plots,
    read_csv,
    regions_figure,
    rows_from_run,
    write_csv,
    write_report,
)
from ralis.report.numbers import (
    Stat,
    aggregate,
    best_baseline,
    bold_best,
    default_levels,
    mean_curve,
    mean_std,
    pooled_std,
    regions_needed,
    savings,
)
from ralis.report.series import common_budget
from ralis.report.table import COLUMNS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["road", "sky", "car"]
# strategy -> seed -> mIoU at budgets 100, 200, 300
MIOU = {
    "entropy": {0: [0.40, 0.50, 0.60], 1: [0.42, 0.52, 0.58]},
    "ralis": {0: [0.44, 0.56, 0.66], 1: [0.46, 0.58, 0.64]},
}
# per-class IoU at every budget: ralis best on road and car, entropy best on sky
IOU = {"entropy": {"road": 0.80, "sky": 0.90, "car": 0.30},
       "ralis": {"road": 0.85, "sky": 0.70, "car": 0.45}}
SHARE = {"entropy": {"road": 0.5, "sky": 0.3, "car": 0.2},
         "ralis": {"road": 0.3, "sky": 0.3, "car": 0.4}}


def make_rows() -> list[dict]:
    rows = []
    for strategy, by_seed in MIOU.items():
        for seed, curve in by_seed.items():
            for regions, miou in zip((100, 200, 300), curve, strict=True):
                row = {
                    "strategy": strategy, "seed": seed, "regions": regions,
                    "pixel_fraction": regions / 10000, "region_kind": "rect", "miou": miou,
                    "val_miou": miou + 0.01, "miou_last": miou - 0.01, "regressed": 0,
                    "class_entropy": 1.0 if strategy == "entropy" else 1.09, "wall_time": 12.5,
                    "preset": "synthetic-tiny", "dataset": "synthetic",
                    "dataset_name": "synthetic", "git_revision": "0123abc",
                    "config": f"runs/{strategy}-s{seed}/config.json",
                    "run_dir": f"runs/{strategy}-s{seed}",
                }
                row.update({f"iou_{c}": IOU[strategy][c] for c in CLASSES})
                row.update({f"share_{c}": SHARE[strategy][c] for c in CLASSES})
                rows.append(row)
    full = {
        "strategy": "full", "seed": 0, "regions": 5000, "pixel_fraction": 1.0,
        "region_kind": "rect", "miou": 0.80,
        "val_miou": 0.81, "miou_last": 0.8, "regressed": None, "class_entropy": None,
        "wall_time": 30.0, "preset": "synthetic-tiny",
        "dataset": "synthetic", "dataset_name": "synthetic", "git_revision": "0123abc",
        "config": "runs/full/config.json",
        "run_dir": "runs/full",
    }
    full.update({f"iou_{c}": 0.9 for c in CLASSES})
    full.update({f"share_{c}": None for c in CLASSES})
    return rows + [full]


# ------------------------------------------------------------------------- number helpers
def test_mean_std_and_aggregate_known_answer():
    stat = mean_std([0.5, 0.7, None])
    assert stat.n == 2 and stat.mean == pytest.approx(0.6)
    assert stat.std == pytest.approx(math.sqrt(0.02))
    assert mean_std([3.0]) == Stat(3.0, None, 1)
    assert mean_std([None]) is None

    stats = aggregate(make_rows(), "miou", scale=100.0)
    assert stats[("entropy", 100)].mean == pytest.approx(41.0)
    assert stats[("entropy", 100)].std == pytest.approx(math.sqrt(2.0))
    assert stats[("ralis", 300)].mean == pytest.approx(65.0)
    assert stats[("ralis", 300)].n == 2
    assert stats[("full", 5000)] == Stat(pytest.approx(80.0), None, 1)
    assert mean_curve(stats, "entropy") == [
        (100, pytest.approx(41.0)), (200, pytest.approx(51.0)), (300, pytest.approx(59.0))]
    assert common_budget(make_rows()) == 300
    assert pooled_std(Stat(0, 1.0, 2), Stat(0, 3.0, 2)) == pytest.approx(math.sqrt(5.0))
    assert pooled_std(Stat(0, None, 1), Stat(0, 3.0, 2)) is None


def test_regions_needed_interpolation():
    entropy = [(100, 41.0), (200, 51.0), (300, 59.0)]
    ralis = [(100, 45.0), (200, 57.0), (300, 65.0)]
    assert regions_needed(entropy, 55.0) == pytest.approx(250.0)
    assert regions_needed(ralis, 55.0) == pytest.approx(100 + 10 * 100 / 12)
    assert regions_needed(ralis, 60.0) == pytest.approx(237.5)
    assert regions_needed(entropy, 60.0) is None  # not reached
    assert regions_needed(entropy, 40.0) == 100.0  # reached at the first budget
    assert regions_needed(entropy, 59.0) == pytest.approx(300.0)
    assert regions_needed([], 10.0) is None
    # non-monotone curve: the first crossing counts
    assert regions_needed([(1, 0.0), (2, 10.0), (3, 5.0), (4, 20.0)], 5.0) == pytest.approx(1.5)


def test_savings_vs_best_baseline():
    needed = {"random": 200.0, "entropy": 250.0, "bald": None, "ralis": 150.0}
    assert best_baseline(needed) == ("random", 200.0)
    s = savings(needed)
    assert s["ralis"] == pytest.approx(25.0)
    assert s["random"] == pytest.approx(0.0)
    assert s["entropy"] == pytest.approx(-25.0)
    assert s["bald"] is None
    assert savings({"entropy": 250.0, "ralis": 100 + 1000 / 12})["ralis"] == pytest.approx(
        100 * (250 - (100 + 1000 / 12)) / 250)
    none = savings({"entropy": None, "ralis": 120.0})
    assert none == {"entropy": None, "ralis": None}
    assert best_baseline({"ralis": 1.0}) is None


def test_default_levels_and_bold():
    assert default_levels([41.0, 51.0, 65.0]) == [46.0, 50.5, 55.5, 60.0]
    assert default_levels([50.0, 50.0]) == [50.0]
    assert default_levels([]) == []
    assert bold_best({"a": 80.04, "b": 85.0, "c": None}) == {"a": "80.0", "b": "**85.0**", "c": "–"}
    assert bold_best({"a": 85.04, "b": 85.0}) == {"a": "**85.0**", "b": "**85.0**"}  # tie
    assert bold_best({"a": 1.0}) == {"a": "1.0"}  # nothing to rank


# ------------------------------------------------------------------------------- table/CSV
def test_csv_round_trip_types(tmp_path):
    rows = make_rows()
    path = write_csv(rows, tmp_path / "results.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[: len(COLUMNS)] == COLUMNS
    assert header[len(COLUMNS):] == [f"iou_{c}" for c in CLASSES] + [f"share_{c}" for c in CLASSES]
    back = read_csv(path)
    assert len(back) == len(rows)
    for a, b in zip(rows, back, strict=True):
        assert a == b
    first, full = back[0], back[-1]
    assert isinstance(first["seed"], int) and isinstance(first["regions"], int)
    assert isinstance(first["miou"], float) and isinstance(first["iou_road"], float)
    assert isinstance(first["git_revision"], str) and first["git_revision"] == "0123abc"
    assert full["share_road"] is None and full["class_entropy"] is None
    assert first["regressed"] == 0 and isinstance(first["regressed"], int)
    with pytest.raises(RalisError):
        read_csv(tmp_path / "missing.csv")


def _write_results(run: Path, strategy: str = "ralis", seed: int = 1) -> None:
    run.mkdir(parents=True, exist_ok=True)
    save_config(get_preset("synthetic-tiny"), run / "config.json")
    budgets = [
        {"regions": 8, "pixel_fraction": 0.0347, "miou": 0.31, "val_miou": 0.3,
         "iou": {"bg": 0.5, "disc": None}, "class_distribution": {"bg": 0.75, "disc": 0.25},
         "class_entropy": 0.56, "epochs": 2, "wall": 1.5},
        {"regions": 16, "pixel_fraction": 0.0694, "miou": 0.42, "val_miou": 0.4,
         "iou": {"bg": 0.6, "disc": 0.24}, "class_distribution": {"bg": 0.6, "disc": 0.4},
         "class_entropy": 0.67, "epochs": 2, "wall": 1.7},
    ]
    (run / "results.json").write_text(json.dumps({
        "strategy": strategy, "seed": seed, "dataset": "synthetic", "preset": "synthetic-tiny",
        "git_revision": "deadbee", "classes": ["bg", "disc"], "budgets": budgets,
        "steps": [], "wall_time": 9.0,
    }))


def test_rows_from_run(tmp_path):
    run = tmp_path / "runs" / "ralis-s1"
    _write_results(run)
    rows = rows_from_run(run, base=tmp_path)
    assert [r["regions"] for r in rows] == [8, 16]
    r = rows[0]
    assert r["strategy"] == "ralis" and r["seed"] == 1 and r["wall_time"] == 9.0
    assert r["dataset_name"] == "synthetic"  # no dataset_name in this results.json: dataset
    assert r["config"] == str(Path("runs/ralis-s1/config.json"))
    assert r["run_dir"] == str(Path("runs/ralis-s1"))
    assert r["iou_bg"] == 0.5 and r["iou_disc"] is None
    assert r["share_disc"] == 0.25 and r["class_entropy"] == 0.56
    assert collect([run, run], base=tmp_path) == rows + rows
    back = read_csv(write_csv(rows, tmp_path / "t.csv"))
    assert back == rows
    with pytest.raises(RalisError):
        rows_from_run(tmp_path / "nothing")


# ----------------------------------------------------------------------------- figures
def _is_png(path: Path) -> bool:
    data = Path(path).read_bytes()
    return len(data) > 1000 and data[:8] == PNG_MAGIC


def test_curve_and_distribution_figures(tmp_path):
    rows = make_rows()
    assert _is_png(figures.miou_curve(rows, tmp_path / "curve.png"))
    assert _is_png(figures.class_distribution(rows, 300, tmp_path / "dist.png"))
    colors = plots.strategy_colors(["zeta", "ralis", "alpha", "full"])
    assert colors["ralis"] == plots.KNOWN_COLORS["ralis"] and colors["full"] == "black"
    assert colors == plots.strategy_colors(["full", "alpha", "zeta", "ralis"])


def _acquisition_run(root: Path, name: str, regions: list[tuple[str, int, int]]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    save_config(get_preset("synthetic-tiny"), run / "config.json")  # 48x64, 16x16 regions
    lines = ["position,step,region_id,image,row,col"]
    lines += [f"{i},{i // 4},{i},{img},{r},{c}" for i, (img, r, c) in enumerate(regions)]
    (run / "acquired_regions.csv").write_text("\n".join(lines) + "\n")
    return run


def fake_loader(calls: list):
    def load(run_dir: Path, names: list[str]) -> dict:
        calls.append((Path(run_dir).name, list(names)))
        rng = np.random.default_rng(0)
        return {n: rng.integers(0, 256, (3, 48, 64), dtype=np.uint8) for n in names}
    return load


def test_regions_on_images_with_fake_loader(tmp_path):
    runs = {
        "ralis": _acquisition_run(tmp_path, "ralis", [
            ("img_a", 0, 0), ("img_a", 1, 1), ("img_b", 2, 3), ("img_c", 0, 3), ("img_d", 1, 2)]),
        "entropy": _acquisition_run(tmp_path, "entropy", [
            ("img_b", 0, 0), ("img_b", 2, 2), ("img_a", 1, 3), ("img_d", 0, 1), ("img_c", 2, 0)]),
    }
    acquired = {s: regions_figure.read_acquisitions(p) for s, p in runs.items()}
    assert regions_figure.pick_images(acquired, 2) == ["img_a", "img_b"]  # 3 each, name order
    calls: list = []
    path = regions_figure.regions_on_images(runs, tmp_path / "regions.png", num_images=2,
                                     load_images=fake_loader(calls))
    assert _is_png(path)
    assert calls == [("entropy", ["img_a", "img_b"])]  # loaded once, baselines first
    # a budget keeps only the first acquisitions: img_a (2 + 0) and img_b (0 + 2) tie, then name
    calls.clear()
    regions_figure.regions_on_images(runs, tmp_path / "r2.png", num_images=3, budget=2,
                              load_images=fake_loader(calls))
    assert calls == [("entropy", ["img_a", "img_b"])]


def test_default_loader_reads_the_runs_pool(tmp_path):
    from ralis.config import load_config
    from ralis.data.protocol import load_protocol

    save_config(get_preset("synthetic-tiny"), tmp_path / "config.json")
    pool = load_protocol(load_config(tmp_path / "config.json").data, progress=False).pool
    names = [pool.names[3], pool.names[1]]
    images = regions_figure.load_pool_images(tmp_path, names)
    assert list(images) == names
    assert images[names[0]].shape == (48, 64, 3) and images[names[0]].dtype == np.uint8
    assert np.array_equal(images[names[0]], pool.images_u8[3].permute(1, 2, 0).numpy())
    with pytest.raises(RalisError):
        regions_figure.load_pool_images(tmp_path, ["no-such-image"])


# ------------------------------------------------------------------------------ report
def test_write_report_sections(tmp_path):
    csv_path = write_csv(make_rows(), tmp_path / "results.csv")
    runs = {
        "ralis": _acquisition_run(tmp_path / "runs", "ralis", [("img_a", 0, 0), ("img_b", 1, 1)]),
        "entropy": _acquisition_run(tmp_path / "runs", "entropy", [("img_a", 2, 3)]),
    }
    out = tmp_path / "report"
    md_path = write_report(csv_path, out, run_dirs=runs, load_images=fake_loader([]))
    assert md_path == out / "report.md"
    md = md_path.read_text()
    for heading in ("# Region-based active learning", "## Test mIoU vs labelled regions",
                    "## Per-class IoU at 300 regions", "## Class distribution of labelled pixels",
                    "## Labels needed", "## Acquired regions", "## Verdict",
                    "## D_R mIoU vs labelled regions"):
        assert heading in md
    assert f"ralis report {csv_path} --out {out}" in md
    assert "**Runs:** 5" in md and "0123abc" in md
    for name in ("miou_curve.png", "class_distribution.png", "regions_on_images.png",
                 "val_miou_curve.png"):
        assert f"]({name})" in md  # relative links
        assert _is_png(out / name)
    # the mIoU table: mean ± std, and the upper bound
    assert "41.0 ± 1.4" in md and "65.0 ± 1.4" in md and "80.0 (n=1)" in md
    # the D_R table: val_miou is miou + 0.01 in make_rows
    assert "| ralis | 46.0 ± 1.4 | 58.0 ± 1.4 | 66.0 ± 1.4 |" in md
    assert "Upper bound on D_R: 81.0 (n=1)." in md
    # per-class table: ralis best on road and car, entropy on sky, mIoU bold for ralis
    ralis_row = next(line for line in md.splitlines() if line.startswith("| ralis | **85.0**"))
    assert ralis_row == "| ralis | **85.0** | 70.0 | **45.0** | **65.0** |"
    assert "| entropy | 80.0 | **90.0** | 30.0 | 59.0 |" in md
    # labels needed: default levels 46, 50.5, 55.5, 60 (from means 41..65)
    # with the 95% bootstrap interval over seeds beside each strategy: entropy's seeds cross
    # 55.5 at 255 and 258.3 (mean curve: 256), ralis's at 195.8 and 179.2
    assert "| 55.5 | 256 | [255, 258] | 188 | [179, 196] | entropy (256) | +26.8% |" in md
    # entropy's seed 0 reaches 60 at 300, seed 1 never: a quarter of the resamples reach it
    assert ("| 60.0 | not reached | [300, > 300] (24% reached) | 238 | [233, 240] | none reached "
            "| – |") in md
    assert "| 46.0 | 150 | [140, 160] | 108 | [≤ 100, 117] | entropy (150) | +27.8% |" in md
    # ralis − entropy is +4 / +6 / +6 points on both seeds: zero-width intervals, three wins
    assert "## Paired differences (RALIS minus each baseline)" in md
    assert "| 100 | 2 | +4.00 | [+4.00, +4.00] | win | 0: +4.00, 1: +4.00 |" in md
    assert "In all, ralis has 3 wins, 0 ties and 0 losses in 3 comparisons" in md
    assert "the 95% bootstrap intervals of ralis minus each baseline give: entropy win" in md
    assert "6.0 points above entropy" in md and "2 seed(s) per strategy" in md
    assert "not a significance test" in md


def test_write_report_budget_and_levels(tmp_path):
    csv_path = write_csv(make_rows(), tmp_path / "results.csv")
    md = write_report(csv_path, tmp_path / "out", budget=200, levels=[40.0, 44.0, 55.0]).read_text()
    assert "## Per-class IoU at 200 regions" in md and "--budget 200" in md
    assert "| 55.0 | 250 | [250, 250] | 183 | [175, 192] | entropy (250) | +26.7% |" in md
    assert ("| 44.0 | 130 | [120, 140] | ≤ 100 | [≤ 100, ≤ 100] | entropy (130) | ≥ +23.1% |"
            in md)  # ralis at its first budget
    assert ("| 40.0 | ≤ 100 | [≤ 100, ≤ 100] | ≤ 100 | [≤ 100, ≤ 100] | entropy (100) "
            "| ≥ +0.0%* |") in md  # both at their first
    assert "## Acquired regions" not in md
    with pytest.raises(RalisError):
        write_report(csv_path, tmp_path / "out", budget=123)
