"""Region kinds in the report (rect and slic series, slic minus rect paired by seed), the
agents' learning curve from run.sqlite, and superpixel drawings."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ralis.config import get_preset, save_config
from ralis.errors import RalisError
from ralis.report import (
    plots,
    read_csv,
    regions_figure,
    rows_from_run,
    write_csv,
    write_report,
)
from ralis.report.agents import (
    find_agent_dirs,
    moving_average,
    read_episodes,
    summarize,
)
from ralis.report.numbers import kind_fractions
from ralis.report.paired import kind_comparisons
from ralis.report.runs import find_run_dirs
from ralis.report.series import region_kind, region_kinds, series_rows, strategies
from ralis.report.table import COLUMNS
from ralis.run.store import RunStore

from .test_report import _acquisition_run, _is_png, _write_results, fake_loader, make_rows

# slic minus rect per seed, in mIoU fractions, at budgets 100, 200, 300
SLIC_DELTA = {
    "entropy": {0: [0.02, 0.03, 0.01], 1: [0.01, 0.03, 0.03]},
    "ralis": {0: [-0.01, 0.00, -0.02], 1: [0.01, -0.02, -0.04]},
}


def mixed_rows() -> list[dict]:
    """make_rows (rect, pixel fraction regions / 10000) plus slic runs of the same strategies
    and seeds (pixel fraction regions / 9000: 1.1%, 2.2%, 3.3%)."""
    rect = make_rows()
    slic = []
    for r in rect:
        if r["strategy"] == "full":
            continue
        i = (100, 200, 300).index(r["regions"])
        slic.append({**r, "region_kind": "slic", "pixel_fraction": r["regions"] / 9000,
                     "miou": r["miou"] + SLIC_DELTA[r["strategy"]][r["seed"]][i],
                     "run_dir": "slic/" + r["run_dir"]})
    return rect + slic


# ----------------------------------------------------------------------------- the table
def test_region_kind_column_and_old_tables(tmp_path):
    assert COLUMNS[COLUMNS.index("pixel_fraction") + 1] == "region_kind"
    run = tmp_path / "entropy-s0"
    _write_results(run, strategy="entropy", seed=0)
    assert {r["region_kind"] for r in rows_from_run(run)} == {"rect"}  # older results.json
    res = json.loads((run / "results.json").read_text())
    regions = {"kind": "slic", "superpixels": 24, "per_image": 22, "image_size": [48, 64]}
    (run / "results.json").write_text(json.dumps({**res, "region_kind": "slic",
                                                  "regions": regions}))
    rows = rows_from_run(run)
    assert {r["region_kind"] for r in rows} == {"slic"}
    path = write_csv(rows, tmp_path / "results.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[header.index("pixel_fraction") + 1] == "region_kind"
    assert read_csv(path) == rows

    old = tmp_path / "old.csv"  # written before the column existed
    with old.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in make_rows()[0] if c != "region_kind"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in make_rows())
    back = read_csv(old)
    assert "region_kind" not in back[0] and region_kind(back[0]) == "rect"
    assert region_kinds(back) == ["rect"] and series_rows(back) == back
    # the old table reports exactly as the new one does (but for the command line)
    new = write_csv(make_rows(), tmp_path / "new" / "old.csv")
    md_old = write_report(old, tmp_path / "r-old").read_text()
    md_new = write_report(new, tmp_path / "r-new").read_text()

    def body(md: str) -> list[str]:
        return [line for line in md.splitlines() if not line.startswith("- **Regenerate:**")]

    assert body(md_old) == body(md_new)
    assert "Region kind" not in md_old and " · " not in md_old


def test_series_keys_and_order():
    rows = mixed_rows()
    assert region_kinds(rows) == ["rect", "slic"]
    srows = series_rows(rows)
    assert strategies(srows) == ["entropy", "ralis", "entropy · slic", "ralis · slic"]
    assert {r["strategy"] for r in srows} >= {"full", "entropy · slic"}
    fractions = kind_fractions(rows)
    assert fractions["rect"][100] == pytest.approx(0.01)
    assert fractions["slic"][300] == pytest.approx(300 / 9000)
    colors = plots.strategy_colors(strategies(srows))
    assert colors["entropy · slic"] == colors["entropy"] == plots.KNOWN_COLORS["entropy"]
    assert plots.line_style("entropy") == "-" and plots.line_style("ralis · slic") == "--"
    # only slic runs: one kind, plain names
    slic_only = [r for r in rows if r["region_kind"] == "slic"]
    assert strategies(series_rows(slic_only)) == ["entropy", "ralis"]


def test_slic_minus_rect_paired_by_seed_known_numbers():
    ref, found = kind_comparisons(mixed_rows())
    assert ref == "rect"
    assert list(found) == [("entropy · slic", "entropy"), ("ralis · slic", "ralis")]
    e100, e200, e300 = found[("entropy · slic", "entropy")]
    assert e100.differences == {0: pytest.approx(2.0), 1: pytest.approx(1.0)}
    assert e100.mean == pytest.approx(1.5) and e100.verdict == "win"
    assert e100.interval == (pytest.approx(1.0), pytest.approx(2.0))  # two seeds: the range
    assert e300.differences == {0: pytest.approx(1.0), 1: pytest.approx(3.0)}
    r100, r200, r300 = found[("ralis · slic", "ralis")]
    assert r100.mean == pytest.approx(0.0) and r100.verdict == "tie"
    assert r300.mean == pytest.approx(-3.0) and r300.verdict == "loss"
    assert r200.interval == (pytest.approx(-2.0), pytest.approx(0.0)) and r200.verdict == "tie"
    assert kind_comparisons(make_rows()) == (None, {})


def test_report_of_mixed_kinds(tmp_path, monkeypatch):
    drawn = {}
    original = plots.save

    def capture(fig, path):
        if Path(path).name == "miou_curve.png":
            drawn.update({line.get_label(): (list(line.get_xdata()), line.get_linestyle())
                          for line in fig.axes[0].get_lines()})
        return original(fig, path)

    monkeypatch.setattr(plots, "save", capture)
    md = write_report(write_csv(mixed_rows(), tmp_path / "results.csv"),
                      tmp_path / "r").read_text()
    # the curves are against the % of pool pixels: each series at its own fractions
    assert drawn["entropy (n=2)"][0] == [pytest.approx(v) for v in (1.0, 2.0, 3.0)]
    assert drawn["entropy · slic (n=2)"][0] == [pytest.approx(100 * b / 9000)
                                                for b in (100, 200, 300)]
    assert drawn["entropy (n=2)"][1] == "-" and drawn["entropy · slic (n=2)"][1] == "--"
    assert "## Test mIoU vs labelled pixels" in md
    assert "- **Region kinds:** rect (" in md and "slic (SLIC superpixels" in md
    assert ("- **Budgets (nominal regions, % of pool pixels per region kind):** 100 (rect 1.0%, "
            "slic 1.1% px)") in md
    assert ("- **Strategies:** entropy (2 seeds), ralis (2 seeds), entropy · slic (2 seeds), "
            "ralis · slic (2 seeds); upper bound") in md
    # the budget table: rect rows keep their plain names and numbers, slic rows beside them
    assert ("| strategy | 100 (rect 1.0%, slic 1.1%) | 200 (rect 2.0%, slic 2.2%) "
            "| 300 (rect 3.0%, slic 3.3%) |") in md
    assert "| entropy | 41.0 ± 1.4 | 51.0 ± 1.4 | 59.0 ± 1.4 |" in md
    assert "| entropy · slic | 42.5 ± 0.7 | 54.0 ± 1.4 | 61.0 ± 0.0 |" in md
    # paired differences within each kind
    assert "## Paired differences, rect regions (RALIS minus each baseline)" in md
    assert "## Paired differences, slic regions (RALIS minus each baseline)" in md
    assert "### ralis − entropy (rect)" in md and "### ralis − entropy (slic)" in md
    rect = md.split("## Paired differences, rect regions")[1].split("\n## ")[0]
    assert "| 100 | 2 | +4.00 | [+4.00, +4.00] | win | 0: +4.00, 1: +4.00 |" in rect
    slic = md.split("## Paired differences, slic regions")[1].split("\n## ")[0]
    # ralis · slic − entropy · slic at 100: (44 - 1) - (40 + 2) = +1, (46 + 1) - (42 + 1) = +4
    assert "| 100 | 2 | +2.50 | [+1.00, +4.00] | win | 0: +1.00, 1: +4.00 |" in slic
    # slic minus rect per strategy, with each kind's pixel cost
    assert "## Region kinds: slic minus rect (paired by seed)" in md
    assert "### entropy · slic − entropy" in md and "### ralis · slic − ralis" in md
    assert ("| 100 | slic 1.1%, rect 1.0% | 2 | +1.50 | [+1.00, +2.00] | win "
            "| 0: +2.00, 1: +1.00 |") in md
    assert ("| 300 | slic 3.3%, rect 3.0% | 2 | -3.00 | [-4.00, -2.00] | loss "
            "| 0: -2.00, 1: -4.00 |") in md
    assert "In all, slic against rect has 3 wins, 2 ties and 1 loss in 6 comparisons" in md
    # labels needed and the verdict per kind; θ0 / full shared
    assert "## Labels needed to reach an mIoU level, rect regions" in md
    assert "## Labels needed to reach an mIoU level, slic regions" in md
    assert "**rect regions.** At 300 regions, ralis reaches 65.0% test mIoU" in md
    assert "**slic regions.** At 300 regions, ralis reaches 62.0% test mIoU" in md
    assert ("**Region kinds.** At 300 nominal regions, paired by seed: entropy · slic − entropy: "
            "+2.00 points, win (slic 3.3%, rect 3.0% px); ralis · slic − ralis: -3.00 points, "
            "loss") in md
    assert "| _full_ |" in md and "## Agent learning curve" not in md


# ------------------------------------------------------------------------------ agents
def _agent(root: Path, name: str, final: list[float], entropy: float = 1.0) -> Path:
    out = root / name
    out.mkdir(parents=True)
    store = RunStore.create(out, {"command": "train-agent"})
    for i, m in enumerate(final):
        store.add_episode({"episode": i, "return": m - 0.3, "final_miou": m, "start_miou": 0.3,
                           "epsilon": max(0.1, 1.0 - i / 20), "loss": 0.5, "dqn_lr": 1e-3,
                           "labelled": 48, "class_entropy": entropy + 0.01 * i, "wall": 1.0})
    store.close()
    return out


def test_agent_summary_known_answer():
    assert list(moving_average([1, 2, 3, 4, 5], window=2)) == [1.0, 1.5, 2.5, 3.5, 4.5]
    assert list(moving_average([2, 4, 6], window=10)) == [2.0, 3.0, 4.0]
    wiggle = [0.01 * (1 if i % 2 else -1) for i in range(25)]
    learning = [{"episode": i, "final_miou": (0.30 if i < 10 else 0.40) + w}
                for i, w in enumerate(wiggle)]
    sm = summarize(learning)
    assert sm.episodes == 25 and not sm.overlap
    assert sm.first == pytest.approx(30.0) and sm.last == pytest.approx(40.0)
    assert sm.spread == pytest.approx((10 / 9) ** 0.5, rel=0.05)
    assert sm.learned is True
    flat = summarize([{"episode": i, "final_miou": 0.3 + w} for i, w in enumerate(wiggle)])
    assert flat.learned is False and flat.difference == pytest.approx(0.0)
    one = summarize([{"episode": 0, "final_miou": 0.3}, {"episode": 1, "final_miou": None}])
    assert one.episodes == 1 and one.spread is None and one.learned is None and one.overlap
    assert one.start is None and one.loss_max is None
    assert summarize([]).first is None
    # start model and DQN loss: mean start, medians of the windows, the largest loss
    losses = [1.0] * 10 + [5.0, 7.0, 2000.0] + [9.0] * 9
    diverging = summarize([{"episode": i, "final_miou": 0.2, "start_miou": 0.25, "loss": v}
                           for i, v in enumerate(losses)])
    assert diverging.start == pytest.approx(25.0)
    assert diverging.loss_first == 1.0 and diverging.loss_last == 9.0
    assert diverging.loss_max == 2000.0


def test_agent_learning_curve_section(tmp_path):
    grid = tmp_path / "grid"
    wiggle = [0.01 * (1 if i % 2 else -1) for i in range(25)]
    a0 = _agent(grid, "agent-s0", [(0.30 if i < 10 else 0.40) + w for i, w in enumerate(wiggle)])
    a1 = _agent(grid, "agent-s1", [0.30 + w for w in wiggle])
    (grid / "agent-broken").mkdir()  # no run.sqlite: not an agent run
    other = tmp_path / "slic-grid"
    _agent(other, "agent-s0", [0.3, 0.32, 0.31])
    before = (a0 / "run.sqlite").read_bytes()
    episodes = read_episodes(a0)
    assert [e["episode"] for e in episodes] == list(range(25))
    assert episodes[3]["final_miou"] == pytest.approx(0.31) and episodes[3]["labelled"] == 48
    assert (a0 / "run.sqlite").read_bytes() == before  # read only
    assert find_agent_dirs([grid, other, grid]) == [a0.resolve(), a1.resolve(),
                                                     (other / "agent-s0").resolve()]
    with pytest.raises(RalisError):
        read_episodes(grid / "agent-broken")

    csv_path = write_csv(make_rows(), tmp_path / "results.csv")
    md = write_report(csv_path, tmp_path / "r", runs=[grid, other]).read_text()
    assert "## Agent learning curve" in md and "](agent_learning_curve.png)" in md
    assert f"--out {tmp_path / 'r'} --runs {grid} --runs {other}`" in md  # the Regenerate line
    assert _is_png(tmp_path / "r" / "agent_learning_curve.png")
    # two agents named agent-s0: their folders tell them apart
    assert "| grid/agent-s0 | 25 | 30.00 | 40.00 | +10.00 | 1.05 | 30.00 |" in md
    assert "| agent-s1 | 25 | 30.00 | 30.00 | +0.00 | 1.05 | 30.00 |" in md
    assert "| slic-grid/agent-s0 | 3 | 31.00 | 31.00 | +0.00 | 1.00 | 30.00 |" in md
    # the DQN's loss: medians of the first and last windows, the largest
    assert "| grid/agent-s0 | 0.5 | 0.5 | 0.5 |" in md
    assert ("Last-10 mean above the first-10 mean by more than the spread of the episodes: "
            "grid/agent-s0 yes (+10.00 > 1.05 points); agent-s1 no (+0.00 ≤ 1.05 points); "
            "slic-grid/agent-s0 no (+0.00 ≤ 1.00 points).") in md
    assert "the two windows overlap" in md  # slic-grid/agent-s0 has 3 episodes
    # a grid folder as input finds its agents by itself; a table alone has none
    write_csv(make_rows(), grid / "results.csv")
    assert "## Agent learning curve" in write_report(grid, tmp_path / "g", regions=False
                                                     ).read_text()
    assert "## Agent learning curve" not in write_report(csv_path, tmp_path / "n").read_text()


# ------------------------------------------------------------------------- superpixels
def test_superpixel_overlay_known_answer():
    seg = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 1]], dtype=np.int16)
    rgba = regions_figure.superpixel_overlay(seg, [0], "#ff0000", alpha=0.35)
    assert rgba.shape == (3, 3, 4)
    assert np.allclose(rgba[..., 3], [[0.35, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert np.allclose(rgba[0, 0, :3], [1, 0, 0])
    both = regions_figure.superpixel_overlay(seg, [0, 1], "#ff0000")
    assert both[0, 1, 3] == 1.0 and both[0, 2, 3] == 1.0  # each superpixel has its own outline


def _slic_run(root: Path, name: str, per_image: int, acquired: list[tuple[str, int, int]]
              ) -> Path:
    """A slic run: acquired = (image, index in pool, segment) -> region_id, row = col = -1."""
    run = root / name
    run.mkdir(parents=True)
    cfg = get_preset("synthetic-tiny")
    # data.superpixels left at None (the grid's count): the run's results.json says 12
    cfg = replace(cfg, data=replace(cfg.data, regions="slic"))
    save_config(cfg, run / "config.json")
    lines = ["position,step,region_id,image,row,col"]
    lines += [f"{i},{i // 4},{idx * per_image + seg},{img},-1,-1"
              for i, (img, idx, seg) in enumerate(acquired)]
    (run / "acquired_regions.csv").write_text("\n".join(lines) + "\n")
    (run / "results.json").write_text(json.dumps({
        "strategy": name.split("-")[0], "seed": 0, "budgets": [], "region_kind": "slic",
        "regions": {"kind": "slic", "superpixels": 12, "per_image": per_image,
                    "image_size": [48, 64]}}))
    return run


def test_regions_on_images_draws_superpixels(tmp_path, monkeypatch):
    monkeypatch.setenv("RALIS_CACHE_DIR", str(tmp_path / "cache"))
    rect = _acquisition_run(tmp_path / "rect", "entropy-s0", [("img_a", 0, 0), ("img_b", 1, 1)])
    slic = _slic_run(tmp_path / "slic", "entropy-s0", 20,
                     [("img_a", 0, 3), ("img_a", 0, 5), ("img_b", 1, 0)])
    titles, images = [], []
    original = plots.save

    def capture(fig, path):
        titles.extend(ax.get_title() for ax in fig.axes)
        images.extend(len(ax.get_images()) for ax in fig.axes)
        return original(fig, path)

    monkeypatch.setattr(plots, "save", capture)
    runs = {"entropy": rect, "entropy · slic": slic}
    path = regions_figure.regions_on_images(runs, tmp_path / "regions.png", num_images=2,
                                     load_images=fake_loader([]))
    assert _is_png(path)
    assert titles == ["entropy: 1 region", "entropy · slic: 2 superpixels",
                      "entropy: 1 region", "entropy · slic: 1 superpixel"]
    assert images == [1, 2, 1, 2]  # a slic cell: the picture and its superpixel overlay
    # the run's grid folders: each series finds its own kind's run
    rows = [{**r, "region_kind": k} for k in ("rect", "slic") for r in make_rows()
            if r["strategy"] == "entropy" and r["seed"] == 0]
    assert find_run_dirs(rows, [tmp_path / "rect", tmp_path / "slic"]) == runs
    assert find_run_dirs(rows, [tmp_path / "slic", tmp_path / "rect"]) == runs
    # one folder holding both kinds: the rows' run_dir (relative to the grid) names the runs
    both = tmp_path / "both"
    both_runs = {"entropy": _acquisition_run(both, "entropy-s0", [("img_a", 0, 0)]),
                 "entropy · slic": _slic_run(both, "entropy-slic-s0", 20, [("img_a", 0, 1)])}
    named = [{**r, "run_dir": "entropy-s0" if r["region_kind"] == "rect" else "entropy-slic-s0"}
             for r in rows]
    assert find_run_dirs(named, both) == both_runs
    # a slic run without regions.per_image cannot be drawn: one clear error
    res = json.loads((slic / "results.json").read_text())
    (slic / "results.json").write_text(json.dumps({**res, "regions": None}))
    with pytest.raises(RalisError, match="per_image"):
        regions_figure.regions_on_images(runs, tmp_path / "r2.png", load_images=fake_loader([]))
