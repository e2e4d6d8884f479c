"""`ralis demo`: what labels do, on built-in synthetic street scenes, in a few minutes.

One θ0 (pretrained on the labelled start set D_T), one AL run per strategy (random, entropy,
BALD) from it, and the full-supervision bound, all with the ``synthetic-demo`` preset. The
result is one table (:func:`demo_table`: θ0 at 0 regions, every strategy at every budget, full
supervision, with the labelled share of the pool's pixels) and one figure (:func:`demo_plot`:
test mIoU vs labelled regions, each strategy's line starting at θ0, full supervision dashed).

Everything is resumable: rerunning the demo in the same directory reuses what finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rich.table import Table

from ralis.config import MACHINE_FIELDS, RunConfig, config_diff, load_config
from ralis.data.protocol import Protocol, load_protocol
from ralis.errors import ConfigError
from ralis.loop.pretrain import pretrain, upper_bound
from ralis.loop.simulate import simulate
from ralis.report.runs import collect
from ralis.report.series import FULL, THETA0, order_strategies
from ralis.report.table import write_csv

STRATEGIES: tuple[str, ...] = ("random", "entropy", "bald")
"""The strategies the demo compares (RALIS needs a trained agent; see `ralis train-agent`)."""


def run_demo(cfg: RunConfig, out: Path, strategies: Sequence[str] = STRATEGIES,
             progress: bool = True, proto: Protocol | None = None,
             say: Callable[[str], None] | None = None, workers: int = 1) -> dict[str, Any]:
    """Pretrain θ0, run each strategy from it, train the full-supervision bound; write
    ``out/results.csv`` (readable by ``ralis report``) and ``out/demo.png``.

    With ``workers > 1`` every run uses one torch thread, and the bound and then the AL runs go
    to that many worker processes (without progress bars): the bound trains beside θ0, the AL
    runs start once θ0 is there. The numbers equal those of one-thread runs in a row.

    Returns ``{"rows": [...], "csv": Path, "plot": Path}``; the rows are those of
    :func:`ralis.report.runs.collect` (strategy ``theta0`` first, ``full`` last).
    """
    out = Path(out)
    say = say or (lambda _: None)
    _check_reusable(cfg, out, ["pretrain", *strategies, FULL])
    if workers > 1:
        cfg = replace(cfg, threads=1)
    proto = proto or load_protocol(cfg.data, progress)
    budgets = ", ".join(str(b) for b in cfg.al.budgets)
    steps = (f"then {', '.join(strategies)} from θ0, a final training at {budgets} labelled "
             "regions")
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        try:
            futures = [pool.submit(_job, cfg, out, FULL, None, False, None)]
            say(f"pretraining θ0 on D_T ({len(proto.dqn_train)} fully labelled images) beside "
                f"full supervision (every training image labelled); {steps}, {workers} at a time")
            theta0 = pretrain(cfg, out / "pretrain", resume=True, progress=progress, proto=proto)
            say(_theta0_done(theta0))
            futures += [pool.submit(_job, cfg, out, name, theta0, False, None)
                        for name in strategies]
            for future in as_completed(futures):
                say(_done(*future.result()))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # finished runs stay; rerun resumes
            raise
        pool.shutdown()
    else:
        say(f"pretraining θ0 on D_T ({len(proto.dqn_train)} fully labelled images); {steps}; "
            "then full supervision (every training image labelled)")
        theta0 = pretrain(cfg, out / "pretrain", resume=True, progress=progress, proto=proto)
        say(_theta0_done(theta0))
        for name in [*strategies, FULL]:
            say(_done(*_job(cfg, out, name, theta0, progress, proto)))
    rows = collect([*(out / s for s in strategies), out / FULL], base=out,
                   theta0_dir=out / "pretrain")
    csv_path = write_csv(rows, out / "results.csv")
    plot = demo_plot(rows, out / "demo.png")
    return {"rows": rows, "csv": csv_path, "plot": plot}


def _job(cfg: RunConfig, out: Path, name: str, theta0: Path | None, progress: bool,
         proto: Protocol | None) -> tuple[str, list[tuple[int, float]]]:
    """One AL run from θ0 (``name`` = its strategy) or the bound (``name`` = ``full``)."""
    if name == FULL:
        res = upper_bound(cfg, out / FULL, resume=True, progress=progress, proto=proto)
    else:
        res = simulate(cfg, name, out / name, pretrained=theta0, resume=True, progress=progress,
                       proto=proto)
    return name, [(b["regions"], b["miou"]) for b in res["budgets"]]


def _done(name: str, budgets: list[tuple[int, float]]) -> str:
    what = "full supervision" if name == FULL else name
    return f"  {what} done: test mIoU " + ", ".join(
        f"{100 * m:.2f}% at {r} regions" for r, m in budgets)


def _theta0_done(model: Path) -> str:
    """θ0's score, said as soon as it is trained (the AL runs start from it)."""
    m = json.loads((Path(model).parent / "metrics.json").read_text())
    return (f"  θ0 done: test mIoU {100 * m['test_miou']:.2f}% (val {100 * m['val_miou']:.2f}%, "
            f"{m['epochs']} epochs)")


SEED_NOISE = 2.9
"""Points of test mIoU by which one demo cell moved between seeds 0, 1 and 2 (the largest
spread of a strategy-budget cell over the three: BALD at 48 regions, 33.66-36.54; the table per
seed is in docs/results/README.md)."""


def demo_notes(rows: Sequence[dict[str, Any]], pool_images: int, seed: int) -> list[str]:
    """What the table's numbers can and cannot say: their base and their noise."""
    _, _, full = _ordered(rows)
    lines = [f"labelled px %: share of the pool's pixels ({pool_images} images); every model "
             "also has D_T's labels"]
    if full is not None:
        lines[0] += (f"; full supervision labels every training image ({full['regions']} "
                     "regions: the pool, D_T and the rest of the train split)")
    lines.append(f"one seed ({seed}): a cell moved by up to {SEED_NOISE:.1f} points between seeds "
                 "0, 1 and 2, so smaller gaps between strategies are noise (try --seed 1)")
    return lines


def _check_reusable(cfg: RunConfig, out: Path, parts: Sequence[str]) -> None:
    """A demo directory left by another recipe (an older ``synthetic-demo`` preset) cannot be
    resumed: say so in one line, before any work, instead of one error per setting."""
    for part in parts:
        path = out / part / "config.json"
        if not path.exists():
            continue
        try:
            diff = config_diff(load_config(path), cfg, ignore=MACHINE_FIELDS)
        except ConfigError:
            diff = [("config.json", None, None)]
        if diff:
            names = ", ".join(k for k, _, _ in diff[:4]) + (", ..." if len(diff) > 4 else "")
            raise ConfigError(f"{out} holds a demo made with other settings ({names} differ; an "
                              f"older synthetic-demo preset?); delete it (rm -r {out}) or pass "
                              "--out NEW_DIR")


def _ordered(rows: Sequence[dict[str, Any]]) -> tuple[dict | None, list[dict], dict | None]:
    """(θ0 row, AL rows by strategy in report order then by budget, full row)."""
    theta0 = next((r for r in rows if r["strategy"] == THETA0), None)
    full = next((r for r in rows if r["strategy"] == FULL), None)
    order = [s for s in order_strategies({r["strategy"] for r in rows}) if s not in (THETA0, FULL)]
    al = sorted((r for r in rows if r["strategy"] in order),
                key=lambda r: (order.index(r["strategy"]), r["regions"]))
    return theta0, al, full


def demo_table(rows: Sequence[dict[str, Any]], title: str = "test mIoU (%)") -> Table:
    """One row per model: θ0 (0 regions), each strategy at each budget, full supervision.

    Columns: labelled pool regions, their share of the pool's pixels, test mIoU (%) and the
    change from θ0 (points). Every model also has D_T's labels (θ0 was trained on them).
    """
    theta0, al, full = _ordered(rows)
    base = theta0["miou"] if theta0 is not None else None
    table = Table(title=title)
    table.add_column("model")
    table.add_column("labelled regions", justify="right")
    table.add_column("labelled px %", justify="right")
    table.add_column("test mIoU", justify="right")
    table.add_column("vs θ0", justify="right")

    def add(name: str, row: dict, regions: str, end_section: bool = False) -> None:
        delta = "" if base is None or row is theta0 else f"{100 * (row['miou'] - base):+.2f}"
        table.add_row(name, regions, f"{100 * (row.get('pixel_fraction') or 0.0):.1f}",
                      f"{100 * row['miou']:.2f}", delta, end_section=end_section)

    if theta0 is not None:
        add("θ0 (start model)", theta0, "0", end_section=True)
    for i, row in enumerate(al):
        last = i + 1 == len(al) or al[i + 1]["strategy"] != row["strategy"]
        add(row["strategy"], row, str(row["regions"]), end_section=last)
    if full is not None:
        add("full supervision", full, f"all ({full['regions']})")
    return table


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def demo_figure(rows: Sequence[dict[str, Any]],
                title: str = "What labels do: test mIoU vs labelled regions (one seed)") -> Any:
    """The figure of :func:`demo_plot` (a matplotlib ``Figure``, Agg backend): test mIoU (%) vs
    labelled pool regions, one line per strategy from θ0's point (0 regions), full supervision
    as a dashed horizontal line."""
    from ralis.report.plots import MARKERS, strategy_colors

    plt = _pyplot()
    theta0, al, full = _ordered(rows)
    names = list(dict.fromkeys(r["strategy"] for r in al))
    colors = strategy_colors(names)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name in names:
        pts = [(r["regions"], 100 * r["miou"]) for r in al if r["strategy"] == name]
        if theta0 is not None:
            pts = [(0, 100 * theta0["miou"]), *pts]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors[name], lw=1.8,
                marker=MARKERS.get(name, "o"), ms=5, label=name)
    if theta0 is not None:
        ax.plot([0], [100 * theta0["miou"]], ls="none", marker="*", ms=13, color="black",
                zorder=5, label=f"θ0, start model ({100 * theta0['miou']:.1f})")
    if full is not None:
        ax.axhline(100 * full["miou"], color="black", ls="--", lw=1.3,
                   label=f"full supervision ({100 * full['miou']:.1f})")
    ticks = {0: 0.0, **{r["regions"]: r.get("pixel_fraction") or 0.0 for r in al}}
    ax.set_xticks(sorted(ticks), [f"{b}\n({100 * ticks[b]:.0f}%)" for b in sorted(ticks)])
    ax.set_xlabel("labelled pool regions (% of the pool's pixels); every model also has D_T")
    ax.set_ylabel("test mIoU (%)")
    ax.set_title(title)
    ax.text(0.99, 0.01, f"one seed: gaps under ~{SEED_NOISE:.0f} points are seed noise",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="0.35")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    return fig


def demo_plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write :func:`demo_figure` as a PNG at ``path``; returns ``path``."""
    fig = demo_figure(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    return path


def summary_line(rows: Sequence[dict[str, Any]]) -> str:
    """``largest budget (480 regions) vs θ0: random +2.9, ...; full supervision +14.9``."""
    theta0, al, full = _ordered(rows)
    if theta0 is None or not al:
        return ""
    last: dict[str, dict] = {}
    for row in al:
        last[row["strategy"]] = row  # sorted by budget: the largest one wins
    budgets = sorted({r["regions"] for r in last.values()})
    text = (f"largest budget ({'/'.join(map(str, budgets))} regions) vs θ0: "
            + ", ".join(f"{n} {100 * (r['miou'] - theta0['miou']):+.1f}" for n, r in last.items()))
    if full is not None:
        text += f"; full supervision {100 * (full['miou'] - theta0['miou']):+.1f} points"
    return text
