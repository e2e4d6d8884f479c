"""The agents' held-out learning curve, read from their run directories for the report.

Learners that choose their policy on held-out selection episodes (``agent.mode`` credit and
search) record every judgement in the ``heldout`` table of their ``run.sqlite``: at training
episode (or search generation) ``e``, the greedy policy's final mIoU on each selection
episode, per split role; the random and entropy baselines are the rows of episode 0. The
curve is the paired advantage over each baseline on the selection split, mean ± standard
error over the selection episodes.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ralis.errors import RalisError  # noqa: E402
from ralis.report.agents import read_rows  # noqa: E402

__all__ = ["read_heldout", "heldout_curve", "heldout_section"]


def read_heldout(agent_dir: Path) -> list[dict[str, Any]]:
    """The ``heldout`` rows of ``agent_dir/run.sqlite`` (read-only; none in older records)."""
    return read_rows(agent_dir, "heldout", "episode, policy, role, seed")


def heldout_curve(rows: Sequence[dict[str, Any]], role: str = "selection"
                  ) -> dict[str, list[dict[str, float]]]:
    """``{"random": [...], "entropy": [...]}``: per judged episode, the agent's paired
    advantage (mIoU points) over that baseline: ``{"episode", "mean", "se", "n"}``."""
    rows = [r for r in rows if r["role"] == role]
    out: dict[str, list[dict[str, float]]] = {}
    for base in ("random", "entropy"):
        ref = {r["seed"]: r["miou"] for r in rows if r["episode"] == 0 and r["policy"] == base}
        points = []
        for ep in sorted({r["episode"] for r in rows if r["policy"] == "agent"}):
            d = [100.0 * (r["miou"] - ref[r["seed"]]) for r in rows
                 if r["episode"] == ep and r["policy"] == "agent" and r["seed"] in ref]
            if d:
                se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
                points.append({"episode": ep, "mean": statistics.fmean(d), "se": se,
                               "n": len(d)})
        out[base] = points
    return out


def _figure(curves: dict[str, dict[str, list[dict[str, float]]]], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    for ax, base in zip(axes, ("random", "entropy"), strict=True):
        for name, curve in curves.items():
            pts = curve[base]
            ax.errorbar([p["episode"] for p in pts], [p["mean"] for p in pts],
                        yerr=[p["se"] for p in pts], marker="o", capsize=3, label=name)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(f"agent − {base}")
        ax.set_xlabel("training episode (search: generation)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # judgements fall on episodes
    axes[0].set_ylabel("selection-split mIoU points (mean ± SE)")
    axes[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def heldout_section(agent_dirs: Sequence[Path], labels: dict[Path, str], out_dir: Path
                    ) -> list[str]:
    """Markdown lines (and ``heldout_curve.png``) for the agents that judged themselves on
    held-out selection episodes; ``[]`` when none did."""
    curves = {}
    for d in agent_dirs:
        try:
            rows = read_heldout(d)
        except RalisError:
            continue
        if any(r["policy"] == "agent" for r in rows):
            curves[labels[d]] = heldout_curve(rows)
    if not curves:
        return []
    _figure(curves, Path(out_dir) / "heldout_curve.png")
    lines = ["### Held-out learning curve", "", "![held-out learning curve](heldout_curve.png)",
             "", "Each judgement of the greedy policy on the held-out selection episodes "
             "(never used in training), scored on the selection split: its paired advantage "
             "over random and over entropy on the same episodes (mean ± standard error). The "
             "policy handed out is the best of these judgements, or entropy itself at episode "
             "0.", "", "| agent | episode | − random | − entropy |", "|---|---:|---:|---:|"]
    for name, c in curves.items():
        for r, e in zip(c["random"], c["entropy"], strict=True):
            lines.append(f"| {name} | {r['episode']} | {r['mean']:+.2f} ± {r['se']:.2f} | "
                         f"{e['mean']:+.2f} ± {e['se']:.2f} |")
    return [*lines, ""]
