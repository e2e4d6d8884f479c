"""Report inputs beyond a results.csv (a run, its results.json, a grid folder), θ0 rows, the
dataset's display name, the gap closed and short sample names in figures."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from cli_helpers import run_cli

from ralis.config import get_preset, save_config
from ralis.errors import RalisError
from ralis.report import (
    collect,
    load_results,
    plots,
    read_csv,
    regions_figure,
    rows_from_theta0,
    write_csv,
    write_report,
)
from ralis.report.needed import labels_needed
from ralis.report.numbers import aggregate, gap_closed, gaps_closed, pixel_fractions
from ralis.report.series import budgets, common_budget, strategies

from .test_report import (
    _acquisition_run,
    _is_png,
    _write_results,
    fake_loader,
    make_rows,
)

THETA0_ROW = {
    "strategy": "theta0", "seed": 7, "regions": 0, "pixel_fraction": 0.0, "miou": 0.30,
    "val_miou": 0.32, "class_entropy": None, "wall_time": 5.0, "preset": "synthetic-tiny",
    "dataset": "synthetic", "dataset_name": "synthetic", "git_revision": "0123abc",
    "config": "theta0/config.json", "run_dir": "theta0",
    "iou_road": 0.7, "iou_sky": 0.6, "iou_car": 0.1,
}


# ------------------------------------------------------------------------- pure helpers
def test_short_names_known_answer():
    names = ["seq01/images/0001_image", "seq02/images/0001_image", "seq01/images/0002_image",
             "Tile 3/images/x"]
    assert regions_figure.short_names(names) == {
        "seq01/images/0001_image": "seq01/…/0001_image",
        "seq02/images/0001_image": "seq02/…/0001_image",
        "seq01/images/0002_image": "0002_image",
        "Tile 3/images/x": "x",
    }
    # a two-component suffix stays whole; first/…/last only while it stays distinct
    assert regions_figure.short_names(["a/x/f", "a/y/f", "b/x/f"]) == {
        "a/x/f": "a/…/f", "a/y/f": "y/f", "b/x/f": "b/…/f"}
    assert regions_figure.short_names(["a/b", "x/a/b", "c\\d\\e"]) == {
        "a/b": "a/b", "x/a/b": "x/…/b", "c\\d\\e": "e"}
    # long labels are cut in the middle: 7 head + "…" + 16 tail characters = 24
    long = ["0001_a_really_long_name_from_camera_left", "0002_a_really_long_name_from_camera_left"]
    assert regions_figure.short_names(long) == {
        long[0]: "0001_a_…from_camera_left", long[1]: "0002_a_…from_camera_left"}
    assert all(len(v) == 24 for v in regions_figure.short_names(long).values())
    # ... unless the cut makes two labels equal: then they stay whole
    same_ends = ["aaaaaaaa_1_zzzzzzzzzzzzzzzzzz", "aaaaaaaa_2_zzzzzzzzzzzzzzzzzz"]
    assert regions_figure.short_names(same_ends, max_len=20) == {n: n for n in same_ends}
    assert regions_figure.short_names(["img_a", "img_a", "img_b"]) == {"img_a": "img_a", "img_b": "img_b"}
    assert regions_figure.ellipsize("abcdefghij", 7) == "ab…ghij"
    assert regions_figure.ellipsize("abc", 7) == "abc"


def test_gap_closed_known_answer():
    assert gap_closed(65.0, 30.0, 80.0) == pytest.approx(70.0)
    assert gap_closed(59.0, 30.0, 80.0) == pytest.approx(58.0)
    assert gap_closed(30.0, 30.0, 80.0) == 0.0
    assert gap_closed(25.0, 30.0, 80.0) == pytest.approx(-10.0)  # below θ0
    assert gap_closed(50.0, 30.0, 30.0) is None  # no gap to close
    assert gap_closed(None, 30.0, 80.0) is None and gap_closed(50.0, None, 80.0) is None

    stats = aggregate([THETA0_ROW, *make_rows()], "miou", 100.0)
    # largest budget 300: entropy 59, ralis 65; θ0 30, full 80
    gaps = gaps_closed(stats)
    assert list(gaps) == ["entropy", "ralis"]
    assert gaps["entropy"] == (300, pytest.approx(58.0))
    assert gaps["ralis"] == (300, pytest.approx(70.0))
    assert gaps_closed(aggregate(make_rows(), "miou", 100.0)) == {}  # no θ0: nothing


# ------------------------------------------------------------------------------- θ0 rows
def _theta0_dir(root: Path, metrics: bool = True, seed: int = 7) -> Path:
    out = root / "theta0"
    out.mkdir(parents=True)
    save_config(replace(get_preset("synthetic-tiny"), seed=seed), out / "config.json")
    (out / "command.json").write_text(json.dumps({"command": "pretrain",
                                                  "git_revision": "cafe123"}))
    if metrics:
        (out / "metrics.json").write_text(json.dumps({
            "val_miou": 0.25, "best_epoch": 3, "epochs": 5, "test_miou": 0.2,
            "iou": {"bg": 0.3, "disc": 0.1}, "images": 6, "wall": 4.5, "history": [],
        }))
    return out


def test_rows_from_theta0_and_collect(tmp_path):
    theta0 = _theta0_dir(tmp_path)
    [row] = rows_from_theta0(theta0, base=tmp_path)
    assert row["strategy"] == "theta0" and row["regions"] == 0 and row["pixel_fraction"] == 0.0
    assert row["miou"] == 0.2 and row["val_miou"] == 0.25
    assert row["iou_bg"] == 0.3 and row["iou_disc"] == 0.1 and row["share_bg"] is None
    assert row["seed"] == 7 and row["preset"] == "synthetic-tiny"
    assert row["dataset"] == "synthetic" and row["dataset_name"] == "synthetic"
    assert row["git_revision"] == "cafe123" and row["wall_time"] == 4.5  # from command.json
    assert row["run_dir"] == "theta0" and row["config"] == str(Path("theta0/config.json"))

    run = tmp_path / "ralis-s1"
    _write_results(run)
    res = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**res, "dataset_name": "tiny streets"}))
    rows = collect([run], base=tmp_path, theta0_dir=theta0)
    assert [(r["strategy"], r["regions"]) for r in rows] == [("theta0", 0), ("ralis", 8),
                                                              ("ralis", 16)]
    assert rows[0]["dataset_name"] == "tiny streets"  # the runs' display name, same dataset
    back = read_csv(write_csv(rows, tmp_path / "results.csv"))
    assert back == rows
    assert collect([run], base=tmp_path) == rows[1:]
    metrics = json.loads((theta0 / "metrics.json").read_text())
    (theta0 / "metrics.json").write_text(json.dumps({**metrics, "git_revision": "beef456"}))
    assert rows_from_theta0(theta0)[0]["git_revision"] == "beef456"  # the code that trained θ0

    with pytest.raises(RalisError, match="has no metrics.json") as exc:
        rows_from_theta0(_theta0_dir(tmp_path / "unfinished", metrics=False))
    assert "\n" not in str(exc.value)
    with pytest.raises(RalisError, match="no metrics.json"):
        collect([run], theta0_dir=tmp_path / "unfinished" / "theta0")


def test_theta0_is_the_start_point_not_a_strategy(tmp_path, monkeypatch):
    rows = [THETA0_ROW, *make_rows()]
    assert strategies(rows) == ["entropy", "ralis"]
    assert strategies(rows, include_full=True) == ["entropy", "ralis", "full"]
    assert budgets(rows) == [100, 200, 300] and common_budget(rows) == 300
    assert 0 not in pixel_fractions(rows)
    stats = aggregate(rows, "miou", 100.0)
    assert labels_needed(stats, ["theta0", "entropy", "ralis"], [46.0])[0]["needed"] == {
        "entropy": pytest.approx(150.0), "ralis": pytest.approx(108.333, abs=1e-3)}

    drawn = {}
    original = plots.save

    def capture(fig, path):
        lines = fig.axes[0].get_lines()
        drawn[(Path(path).parent.parent.name, Path(path).name)] = {
            line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in lines}
        return original(fig, path)

    monkeypatch.setattr(plots, "save", capture)
    with_t0 = write_report(write_csv(rows, tmp_path / "a" / "results.csv"), tmp_path / "a" / "r")
    without = write_report(write_csv(make_rows(), tmp_path / "b" / "results.csv"),
                           tmp_path / "b" / "r")
    md, md0 = with_t0.read_text(), without.read_text()

    # every curve starts at (0, θ0) and θ0 is a star, not a strategy line
    curve = drawn[("a", "miou_curve.png")]
    assert curve["entropy (n=2)"] == ([0.0, 100.0, 200.0, 300.0],
                                      [pytest.approx(v) for v in (30.0, 41.0, 51.0, 59.0)])
    assert curve["ralis (n=2)"][0][0] == 0.0 and curve["ralis (n=2)"][1][0] == pytest.approx(30.0)
    assert curve["θ0, start model (30.0)"] == ([0], [pytest.approx(30.0)])
    assert not any(label.startswith("theta0") for label in curve)
    assert drawn[("a", "val_miou_curve.png")]["ralis (n=2)"][1][0] == pytest.approx(32.0)
    assert drawn[("b", "miou_curve.png")]["entropy (n=2)"][0] == [100.0, 200.0, 300.0]

    # the tables show a θ0 line (its own 0-regions column), never ranked
    assert "| strategy | 0 (θ0) | 100 (1.0%) | 200 (2.0%) | 300 (3.0%) |" in md
    assert "| _θ0 (start)_ | _30.0 (n=1)_ | – | – | – |" in md
    assert "| entropy | – | 41.0 ± 1.4 | 51.0 ± 1.4 | 59.0 ± 1.4 |" in md
    assert "| _θ0 (start)_ | _32.0 (n=1)_ | – | – | – |" in md  # D_R table
    assert "| _θ0 (start)_ | _70.0_ | _60.0_ | _10.0_ | _30.0_ |" in md  # per-class
    assert "| ralis | **85.0** | 70.0 | **45.0** | **65.0** |" in md  # bold unchanged by θ0
    # the gap closed: (59 - 30) / (80 - 30) and (65 - 30) / (80 - 30)
    assert ("Gap closed between θ0 (30.0%) and full supervision (80.0%) at each strategy's "
            "largest budget, (mIoU − θ0) / (full − θ0) on mean mIoU: entropy 58% (300 regions), "
            "ralis 70% (300 regions).") in md
    assert "Gap closed" not in md0
    # labels needed and the verdict's comparisons are those of the report without θ0
    section = md.split("## Labels needed")[1].split("##")[0]
    assert section == md0.split("## Labels needed")[1].split("##")[0]
    assert "theta0 (regions)" not in md and "points above theta0" not in md
    assert "It started from θ0 at 30.0% (+35.0 points) and closes 70% of the gap" in md
    assert "6.0 points above entropy" in md
    # header: θ0 is a reference; its seed (7) is not an AL seed
    assert "- **Strategies:** entropy (2 seeds), ralis (2 seeds); start model θ0" in md
    assert "- **Seeds:** 0, 1\n" in md
    assert "- **Budgets (labelled regions, % of pool pixels):** 100 (1.0% px)," in md


# ---------------------------------------------------------------------- dataset display name
def test_dataset_name_in_header_and_old_tables(tmp_path):
    rows = [{**r, "dataset": "folder", "dataset_name": "my-streets"} for r in make_rows()]
    md = write_report(write_csv(rows, tmp_path / "new.csv"), tmp_path / "n").read_text()
    assert "- **Dataset:** my-streets (`folder`)\n" in md

    old = tmp_path / "old.csv"  # written before the column existed
    with old.open("w", newline="") as f:
        header = [k for k in make_rows()[0] if k != "dataset_name"]
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in make_rows())
    back = read_csv(old)
    assert "dataset_name" not in back[0] and back[0]["dataset"] == "synthetic"
    md = write_report(old, tmp_path / "o").read_text()
    assert "- **Dataset:** synthetic\n" in md

    run = tmp_path / "run"
    _write_results(run)
    res = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**res, "dataset": "folder",
                                                  "dataset_name": "my-streets"}))
    [first, _] = load_results(run).rows
    assert first["dataset"] == "folder" and first["dataset_name"] == "my-streets"


# ------------------------------------------------------------------------ one run as input
def _simulate_run(root: Path, name: str = "ralis-s1", strategy: str = "ralis", seed: int = 1,
                  images: tuple[str, ...] = ("seq01/images/0001_image", "seq02/images/0001_image",
                                             "seq01/images/0002_image")) -> Path:
    run = _acquisition_run(root, name, [(img, i % 3, i % 4) for i, img in enumerate(images)])
    _write_results(run, strategy=strategy, seed=seed)
    return run


def _without(md: str, heading: str) -> str:
    """``md`` without the section that starts at ``heading`` (up to the next ``## ``)."""
    if heading not in md:
        return md
    before, after = md.split(heading, 1)
    rest = after.split("\n## ", 1)
    return before + ("## " + rest[1] if len(rest) > 1 else "")


def test_report_on_a_single_simulate_run(tmp_path, monkeypatch):
    run = _simulate_run(tmp_path)
    ylabels = []
    original = plots.save

    def capture(fig, path):
        if Path(path).name == "regions_on_images.png":
            ylabels.extend(ax.get_ylabel() for ax in fig.axes if ax.get_ylabel())
        return original(fig, path)

    monkeypatch.setattr(plots, "save", capture)
    calls: list = []
    md = write_report(run, tmp_path / "r", load_images=fake_loader(calls)).read_text()
    assert calls == [("ralis-s1", ["seq01/images/0001_image", "seq01/images/0002_image",
                                   "seq02/images/0001_image"])]
    assert ylabels == ["seq01/…/0001_image", "0002_image", "seq02/…/0001_image"]
    assert "## Acquired regions on pool images" in md and _is_png(tmp_path / "r" /
                                                                 "regions_on_images.png")
    assert "- **Runs:** 1 (2 rows of `results.json`, a single run)" in md
    assert "- **Strategies:** ralis (1 seed)\n" in md
    assert "| ralis | 31.0 (n=1) | 42.0 (n=1) |" in md
    # one strategy: nothing ranked, no savings, no comparison; said in a sentence
    assert "one strategy, so nothing is ranked" in md and "**" not in md.split("## Per-class")[1]
    assert "This table has only ralis, so there is no baseline to compare with" in md
    assert "| mIoU level | ralis (regions) | ralis 95% interval |\n" in md
    assert "best baseline" not in md and "| one seed |" in md  # no interval from one seed
    assert "## Paired differences" not in md  # nothing to pair with
    assert ("At 16 regions, ralis reaches 42.0% test mIoU. Only ralis is in this table (1 seed), "
            "so nothing is compared between strategies; the numbers describe this run.") in md
    assert "| |" not in md  # no empty table

    # the results.json itself is the same input; --no-regions (regions=False) skips the figure
    md_json = write_report(run / "results.json", tmp_path / "j", regions=False).read_text()
    assert "## Acquired regions" not in md_json
    body = md.split("## Test mIoU", 1)[1]
    assert md_json.split("## Test mIoU", 1)[1] == _without(body, "## Acquired regions")


def test_report_on_an_upper_bound_run(tmp_path):
    run = tmp_path / "full"
    _write_results(run, strategy="full")
    res = json.loads((run / "results.json").read_text())
    last = {k: v for k, v in res["budgets"][-1].items() if k != "class_distribution"}
    (run / "results.json").write_text(json.dumps({**res, "budgets": [{**last, "regions": 144}]}))
    md = write_report(run, tmp_path / "r").read_text()
    assert "- **Strategies:** none; upper bound (`full`): 1 run(s)" in md
    assert "This table holds no active-learning run, so there is no curve" in md
    assert "Upper bound (`full`, all training labels, 144 regions): **42.0 (n=1)** mIoU." in md
    assert "the upper bound: 40.0 (n=1)" in md  # D_R, as a sentence
    assert "| _full_ | _60.0_ | _24.0_ | _42.0_ |" in md
    for absent in ("## Verdict", "## Labels needed", "## Class distribution", ".png",
                   "## Acquired regions"):
        assert absent not in md
    assert not list((tmp_path / "r").glob("*.png"))


def _grid(tmp_path: Path) -> Path:
    grid = tmp_path / "grid"
    runs = [_simulate_run(grid, f"{s}-s{seed}", s, seed, images=(f"img_{s}_{seed}", "img_shared"))
            for s in ("entropy", "ralis") for seed in (0, 1)]
    full = grid / "full"
    _write_results(full, strategy="full")
    write_csv(collect([*runs, full], base=grid, theta0_dir=_theta0_dir(grid)),
              grid / "results.csv")
    return grid


def test_report_on_a_grid_folder(tmp_path):
    grid = _grid(tmp_path)
    calls: list = []
    md = write_report(grid, tmp_path / "r", load_images=fake_loader(calls)).read_text()
    assert calls == [("entropy-s0", ["img_shared", "img_entropy_0", "img_ralis_0"])]
    assert ("one run each: entropy = `" + str(grid / "entropy-s0") + "`, ralis = `"
            + str(grid / "ralis-s0") + "`") in md
    assert "- **Runs:** 6 (" in md and "a grid folder)" in md
    assert "| _θ0 (start)_ | _20.0 (n=1)_ | – | – |" in md

    def broken(run_dir, names):
        raise RalisError("the dataset root /nowhere does not exist")

    md = write_report(grid, tmp_path / "b", load_images=broken).read_text()
    assert ("Not drawn: the pool images could not be loaded (the dataset root /nowhere does not "
            "exist).") in md
    assert "## Verdict" in md
    with pytest.raises(RalisError, match="nowhere"):  # asked for explicitly: a real error
        write_report(grid / "results.csv", tmp_path / "c", load_images=broken,
                     run_dirs={"ralis": grid / "ralis-s0"})
    md = write_report(grid / "results.csv", tmp_path / "d").read_text()  # a table: no images
    assert "## Acquired regions" not in md

    with pytest.raises(RalisError, match="neither results.json"):
        load_results(tmp_path / "r")
    with pytest.raises(RalisError, match="not found"):
        load_results(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------ CLI
def test_cli_report_on_a_run_draws_its_pool_images(monkeypatch, capsys, tmp_path):
    from ralis.config import load_config
    from ralis.data.protocol import load_protocol

    scratch = tmp_path / "cfg.json"
    save_config(get_preset("synthetic-tiny"), scratch)
    pool = load_protocol(load_config(scratch).data, progress=False).pool
    run = _simulate_run(tmp_path, images=(pool.names[2], pool.names[5], pool.names[2]))
    code, text = _joined(monkeypatch, capsys, "report", str(run), "--out", str(tmp_path / "r"))
    assert code == 0, text
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Acquired regions on pool images" in md and "Not drawn" not in md
    assert _is_png(tmp_path / "r" / "regions_on_images.png")

    code, text = _joined(monkeypatch, capsys, "report", str(run / "results.json"), "--out",
                      str(tmp_path / "n"), "--no-regions")
    assert code == 0 and "## Acquired regions" not in (tmp_path / "n" / "report.md").read_text()

    code, text = _joined(monkeypatch, capsys, "report", str(tmp_path / "nothing"), "--out",
                      str(tmp_path / "x"))
    assert code == 2 and "not found" in text and "Traceback" not in text


def _joined(monkeypatch, capsys, *args):
    code, out, err = run_cli(monkeypatch, capsys, *args)
    return code, out + err
