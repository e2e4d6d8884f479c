"""Paired differences, bootstrap intervals, verdicts and the labels-needed bootstrap: known
answers, and the report's "Paired differences" section on small synthetic tables."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from ralis.report import write_csv, write_report
from ralis.report.numbers import regions_needed
from ralis.report.paired import paired_plan
from ralis.report.stats import (
    ONE_SEED,
    bootstrap_interval,
    compare,
    crossings,
    needed_interval,
    paired_differences,
    range_is_interval,
    seed_curves,
    verdict,
)


def row(strategy: str, seed: int, regions: int, miou: float | None) -> dict:
    return {"strategy": strategy, "seed": seed, "regions": regions,
            "pixel_fraction": regions / 1000, "miou": miou, "val_miou": miou,
            "preset": "synthetic-tiny", "dataset": "synthetic", "dataset_name": "synthetic",
            "git_revision": "0123abc", "run_dir": f"runs/{strategy}-s{seed}"}


def table(values: dict[str, dict[int, list[float | None]]], bs=(100, 200)) -> list[dict]:
    """strategy -> seed -> mIoU (fraction) per budget in ``bs``."""
    return [row(s, seed, b, v) for s, by_seed in values.items() for seed, curve in by_seed.items()
            for b, v in zip(bs, curve, strict=True)]


# ------------------------------------------------------------------------------ bootstrap
def test_bootstrap_degenerate_cases():
    assert bootstrap_interval([]) is None
    assert bootstrap_interval([3.5]) == (3.5, 3.5)  # one value: the point itself
    low, high = bootstrap_interval([0.1] * 5)  # constant: zero width
    assert low == high == pytest.approx(0.1)
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, 2.0], level=1.0)
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, 2.0], resamples=0)
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, float("nan")])


def test_bootstrap_known_answers():
    # two values: resampled means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_interval([0.0, 1.0]) == (0.0, 1.0)
    assert bootstrap_interval([0.0, 1.0], level=0.4) == (0.5, 0.5)  # 30% .. 70%: all 0.5
    # three values: all-min and all-max resamples have probability 1/27 > 2.5%: the range
    assert bootstrap_interval([1.0, 5.0, 2.0]) == (1.0, 5.0)
    assert range_is_interval(2) and range_is_interval(3)
    assert not range_is_interval(4) and not range_is_interval(1)
    # [0, 0, 0, 4]: the mean is k, k ~ Binomial(4, 1/4); P(k <= 2) = 243/256 = 94.9% and
    # P(k <= 3) = 99.6%, so the 97.5% quantile is 3 and the 2.5% quantile 0
    assert bootstrap_interval([0.0, 0.0, 0.0, 4.0]) == (0.0, 3.0)


def test_bootstrap_is_the_documented_vectorised_draw():
    values = [0.3, -1.2, 2.5, 0.7, 1.1]
    rng = np.random.default_rng(7)
    index = rng.integers(0, 5, size=(200, 5))
    means = sorted(sum(values[i] for i in r) / 5 for r in index)  # a plain loop
    expected = np.quantile(means, [0.05, 0.95])
    assert bootstrap_interval(values, level=0.9, resamples=200, seed=7) == pytest.approx(
        tuple(expected))
    # deterministic for a seed; another seed draws another matrix
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    assert bootstrap_interval(values, resamples=50, seed=3) != bootstrap_interval(
        values, resamples=50, seed=4)


def test_bootstrap_symmetry_and_shift():
    values = [0.3, -1.2, 2.5, 0.7, 1.1, -0.4]
    low, high = bootstrap_interval(values, seed=5)
    assert low < np.mean(values) < high
    neg = bootstrap_interval([-v for v in values], seed=5)  # same draw, mirrored
    assert neg == pytest.approx((-high, -low))
    shifted = bootstrap_interval([v + 10 for v in values], seed=5)
    assert shifted == pytest.approx((low + 10, high + 10))
    # symmetric values give an interval symmetric around their mean (here 0), up to the draw
    sym = bootstrap_interval([-2.0, -1.0, 1.0, 2.0])
    assert sym[0] == pytest.approx(-sym[1], abs=0.15)


def test_verdict_reads_the_interval_not_the_mean():
    assert verdict((0.1, 2.0)) == "win"
    assert verdict((-2.0, -0.1)) == "loss"
    assert verdict((-0.1, 5.0)) == "tie"  # mean far above 0, still a tie
    assert verdict((0.0, 1.0)) == "tie" and verdict((-1.0, 0.0)) == "tie"  # touching 0
    assert verdict((0.5, 0.5)) == "win"
    assert verdict(None) == "no data"


# ------------------------------------------------------------------------------- pairing
def test_paired_differences_by_seed():
    rows = table({
        "ralis": {1: [0.50, 0.60], 2: [0.40, 0.55], 3: [0.45, None]},
        "random": {1: [0.48, 0.57], 2: [0.41, 0.50], 4: [0.30, 0.30]},
    })
    # seed 3 has no random run and seed 4 no ralis run: both dropped; points, sorted by seed
    diffs = paired_differences(rows, "ralis", "random", 100)
    assert list(diffs) == [1, 2]
    assert diffs[1] == pytest.approx(2.0) and diffs[2] == pytest.approx(-1.0)
    assert paired_differences(reversed(rows), "random", "ralis", 100) == {
        1: pytest.approx(-2.0), 2: pytest.approx(1.0)}
    # ralis seed 3 has no value at 200 (None): dropped too
    assert paired_differences(rows, "ralis", "random", 200) == {
        1: pytest.approx(3.0), 2: pytest.approx(5.0)}
    assert paired_differences(rows, "ralis", "random", 999) == {}
    assert paired_differences(rows, "ralis", "random", 100, scale=1.0)[1] == pytest.approx(0.02)

    two = compare(rows, "ralis", "random", 200)
    assert two.n == 2 and two.mean == pytest.approx(4.0)
    assert two.interval == pytest.approx((3.0, 5.0)) and two.verdict == "win"
    one = compare([r for r in rows if r["seed"] != 2], "ralis", "random", 100)
    assert one.n == 1 and one.mean == pytest.approx(2.0)
    assert one.interval is None and one.verdict == ONE_SEED == "tie (one seed)"
    none = compare(rows, "ralis", "bald", 100)
    assert none.n == 0 and none.mean is None and none.verdict == "no data"


def test_paired_plan():
    assert paired_plan(["random", "entropy", "bald", "ralis"]) == (
        [("ralis", "random"), ("ralis", "entropy"), ("ralis", "bald")], None)
    assert paired_plan(["random", "entropy", "bald"]) == (
        [("entropy", "random"), ("bald", "random")], "random")
    assert paired_plan(["entropy", "bald"]) == ([("bald", "entropy")], "entropy")
    assert paired_plan(["ralis"]) == ([], None)
    assert paired_plan(["theta0", "ralis", "full"]) == ([], None)


# ---------------------------------------------------------------------- labels needed
def test_crossings_match_regions_needed():
    x = [100, 200, 300, 400]
    known = np.array([[41.0, 51.0, 59.0, 60.0], [45.0, 57.0, 65.0, 66.0],
                      [56.0, 57.0, 58.0, 59.0], [0.0, 10.0, 5.0, 20.0]])
    assert crossings(x, known, 55.0)[:3] == pytest.approx([250.0, 100 + 1000 / 12, 100.0])
    assert np.isnan(crossings(x, known[:1], 61.0)[0])
    rng = np.random.default_rng(0)
    curves = rng.uniform(0, 10, size=(300, 4))
    curves[rng.uniform(size=curves.shape) < 0.25] = np.nan  # missing budgets
    got = crossings(x, curves, 6.0)
    for curve, value in zip(curves, got, strict=True):
        want = regions_needed([(b, y) for b, y in zip(x, curve, strict=True)
                               if not math.isnan(y)], 6.0)
        assert (math.isnan(value) if want is None else value == pytest.approx(want))


def test_needed_interval_known_answers():
    # seed 0: 40/50/60, seed 1: 44/54/64 at 100/200/300 regions
    rows = table({"ralis": {0: [0.40, 0.50, 0.60], 1: [0.44, 0.54, 0.64]}}, bs=(100, 200, 300))
    seeds, bs, values = seed_curves(rows, "ralis")
    assert seeds == [0, 1] and bs == [100, 200, 300]
    assert values == pytest.approx(np.array([[40, 50, 60], [44, 54, 64]]))
    # level 50: seed 0 alone 200, seed 1 alone 160, both 180 (probabilities 1/4, 1/4, 1/2)
    ni = needed_interval(rows, "ralis", 50.0)
    assert (ni.n, ni.point, ni.reached) == (2, pytest.approx(180.0), 1.0)
    assert (ni.low, ni.high) == (pytest.approx(160.0), pytest.approx(200.0))
    assert (ni.first_budget, ni.last_budget) == (100, 300)
    # level 62: seed 0 alone never (a quarter of resamples), seed 1 at 280, both at 300
    ni = needed_interval(rows, "ralis", 62.0)
    assert ni.point == pytest.approx(300.0) and ni.reached == pytest.approx(0.75, abs=0.02)
    assert ni.low == pytest.approx(280.0) and ni.high == math.inf
    # level 70: never
    ni = needed_interval(rows, "ralis", 70.0)
    assert ni.point is None and ni.reached == 0.0 and ni.low == ni.high == math.inf
    # one seed: every resample is that seed, so the interval is the point itself
    ni = needed_interval([r for r in rows if r["seed"] == 1], "ralis", 50.0)
    assert ni.n == 1 and ni.low == ni.high == ni.point == pytest.approx(160.0)
    assert needed_interval(rows, "bald", 50.0) is None
    assert needed_interval(rows, "ralis", 50.0) == needed_interval(rows, "ralis", 50.0)


def test_needed_interval_with_a_missing_budget():
    # seed 1 has no run at 200: the all-seed mean curve is 42 / 50 / 62 and resamples of seed
    # 1 alone leave 200 out (no warning about the empty mean)
    rows = table({"ralis": {0: [0.40, 0.50, 0.60], 1: [0.44, None, 0.64]}}, bs=(100, 200, 300))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ni = needed_interval(rows, "ralis", 50.0)
    assert ni.point == pytest.approx(200.0)
    # seed 0 alone 200, seed 1 alone 100 + 6/20 * 200 = 160, both 200
    assert (ni.low, ni.high, ni.reached) == (pytest.approx(160.0), pytest.approx(200.0), 1.0)


# ------------------------------------------------------------------------------- report
def _section(md: str, heading: str) -> str:
    return md.split(heading, 1)[1].split("\n## ", 1)[0]


def test_report_paired_section(tmp_path):
    # ralis − random at 100: +3, +1, -1 (a tie); at 200: +1, +2, +3 (a win);
    # ralis − entropy: entropy has no seed 3, so two pairs; at 100: -1, -2 (a loss)
    rows = table({
        "random": {1: [0.40, 0.50], 2: [0.42, 0.50], 3: [0.45, 0.50]},
        "entropy": {1: [0.44, 0.50], 2: [0.45, 0.51]},
        "ralis": {1: [0.43, 0.51], 2: [0.43, 0.52], 3: [0.44, 0.53]},
    })
    md = write_report(write_csv(rows, tmp_path / "results.csv"), tmp_path / "r").read_text()
    section = _section(md, "## Paired differences (RALIS minus each baseline)")
    assert "### ralis − random" in section and "### ralis − entropy" in section
    assert "| 100 | 3 | +1.00 | [-1.00, +3.00] | tie | 1: +3.00, 2: +1.00, 3: -1.00 |" in section
    assert "| 200 | 3 | +2.00 | [+1.00, +3.00] | win | 1: +1.00, 2: +2.00, 3: +3.00 |" in section
    assert "| 100 | 2 | -1.50 | [-2.00, -1.00] | loss | 1: -1.00, 2: -2.00 |" in section
    assert "| 200 | 2 | +1.00 | [+1.00, +1.00] | win | 1: +1.00, 2: +1.00 |" in section
    assert "In all, ralis has 2 wins, 1 tie and 1 loss in 4 comparisons" in section
    # by chance: 2 x 0.5^3 = 25% per 3-seed comparison, 50% per 2-seed one: 0.25 * 2 + 0.5 * 2
    assert "50% of 2-seed comparisons and 25% of 3-seed comparisons: about 1.5 of these 4" in md
    assert "not a significance test" in section
    # the verdict quotes the paired verdicts at the common budget (200)
    assert ("the 95% bootstrap intervals of ralis minus each baseline give: random win, "
            "entropy win") in md


def test_report_paired_without_ralis_and_with_one_seed(tmp_path):
    rows = table({"random": {1: [0.40, 0.50]}, "bald": {1: [0.43, 0.49]}})
    md = write_report(write_csv(rows, tmp_path / "results.csv"), tmp_path / "r").read_text()
    assert "## Paired differences (RALIS minus each baseline)" not in md
    section = _section(md, "## Paired differences (each strategy minus random)")
    assert "There is no ralis run in this table, so each strategy is compared with random" in section
    assert "no interval can be computed from one seed" in section
    assert "| 100 | 1 | +3.00 | – (one seed) | tie (one seed) | 1: +3.00 |" in section
    assert "| 200 | 1 | -1.00 | – (one seed) | tie (one seed) | 1: -1.00 |" in section
    assert ("In all, the strategies against random have 0 wins, 2 ties and 0 losses in 2 "
            "comparisons (budgets × strategies); 2 of the ties from one seed only.") in section
    assert "by chance" not in section
    labels = _section(md, "## Labels needed")
    assert "| random 95% interval |" in labels and "| one seed |" in labels
