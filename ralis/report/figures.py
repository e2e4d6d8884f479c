"""Paper-style figures (matplotlib, Agg backend). Each function writes one PNG, returns its path.

* :func:`miou_curve` - test mIoU vs labelled regions, mean ± std over seeds (Figure 4);
* :func:`class_distribution` - share of labelled pixels per class at a budget (Figure 3 / C.1);
* :func:`agent_learning_curve` - the RALIS agent's training game, episode by episode.

The regions each strategy acquired, drawn on pool images (Appendix D), are
:mod:`ralis.report.regions_figure`. Styling is deterministic (:mod:`ralis.report.plots`): one
fixed colour per strategy, the upper bound (strategy ``full``) as a dashed black horizontal line,
the start model (strategy ``theta0``) as a black star at 0 regions where every strategy's line
begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ralis.report import plots  # noqa: E402
from ralis.report.agents import moving_average, summarize  # noqa: E402
from ralis.report.numbers import aggregate, pixel_fractions, reference  # noqa: E402
from ralis.report.plots import EXTRA_COLORS, KNOWN_COLORS, line_style, marker, strategy_colors  # noqa: E402
from ralis.report.series import FULL, SPECIAL, THETA0, split_series, strategies  # noqa: E402
from ralis.report.table import class_names  # noqa: E402


def miou_curve(rows: Sequence[dict[str, Any]], path: Path, key: str = "miou",
               label: str = "test mIoU (%)", x: str = "regions") -> Path:
    """mIoU (%) vs labelled regions: mean line ± std band per strategy, upper bound dashed.

    ``key`` picks the column (``miou`` on test, ``val_miou`` on D_R) and ``label`` names it.
    The top axis gives the same budgets as % of the pool's pixels (from ``pixel_fraction``).
    With ``x="pixel_fraction"`` the x axis is the % of pool pixels itself (each point at its
    series' mean ``pixel_fraction`` at that budget): the axis on which region kinds of
    different pixel cost compare. With a ``theta0`` row, every strategy's line starts at
    (0, θ0's mIoU), marked by a black star: the shared start model.
    """
    if x not in ("regions", "pixel_fraction"):
        raise ValueError(f"x must be regions or pixel_fraction, not {x!r}")
    stats = aggregate(rows, key, scale=100.0)
    spent = aggregate(rows, "pixel_fraction", scale=100.0)
    names = strategies(rows)
    colors = strategy_colors(names)
    start = reference(stats, THETA0)
    by_pixels = x == "pixel_fraction"
    with plt.rc_context(plots.style()):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for name in names:
            pts = sorted((b, s) for (n, b), s in stats.items() if n == name)
            if by_pixels:
                pts = [(spent[(name, b)].mean, s) for b, s in pts if (name, b) in spent]
            if not pts:
                continue
            if start is not None:
                pts = [(0, start), *pts]
            xs = np.array([b for b, _ in pts], dtype=float)
            y = np.array([s.mean for _, s in pts])
            sd = np.array([s.std or 0.0 for _, s in pts])
            seeds = max(s.n for _, s in pts)
            marked = list(range(1 if start is not None else 0, len(pts)))  # θ0 has its star
            ax.plot(xs, y, color=colors[name], marker=marker(name), ms=5, lw=1.8,
                    ls=line_style(name), markevery=marked, label=f"{name} (n={seeds})")
            ax.fill_between(xs, y - sd, y + sd, color=colors[name], alpha=0.18, lw=0)
        if start is not None:
            ax.plot([0], [start.mean], ls="none", marker="*", ms=13, color="black", zorder=5,
                    label=f"θ0, start model ({start.mean:.1f})")
        full = [s for (n, _), s in stats.items() if n == FULL]
        if full:
            ub = full[0]
            ax.axhline(ub.mean, color="black", ls="--", lw=1.3,
                       label=f"full supervision ({ub.mean:.1f})")
        short = label.split(" (")[0]
        if by_pixels:
            ax.set_xlabel("% of pool pixels labelled (mean over seeds)")
            ax.set_title(f"{short} vs % of pool pixels labelled (mean ± std over seeds)",
                         pad=10)
        else:
            ax.set_xlabel("labelled regions")
            ax.set_title(f"{short} vs labelled regions (mean ± std over seeds)", pad=10)
        ax.set_ylabel(label)
        fractions = pixel_fractions(rows)
        ratios = [f / b for b, f in fractions.items() if b > 0 and f > 0]
        if ratios and not by_pixels:
            per_region = 100.0 * float(np.median(ratios))
            top = ax.secondary_xaxis(
                "top", functions=(lambda r: r * per_region, lambda p: p / per_region)
            )
            top.set_xlabel("% of pool pixels labelled")
        if names or full or start is not None:
            ax.legend(loc="best", fontsize=9, framealpha=0.9)
        fig.tight_layout()
        return plots.save(fig, path)


def class_distribution(rows: Sequence[dict[str, Any]], budget: int, path: Path) -> Path:
    """Grouped bars: % of labelled pixels per class per strategy at ``budget`` (mean over seeds).

    The legend gives each strategy's mean class entropy (nats) of those labelled pixels.
    """
    at = [r for r in rows if r["regions"] == budget and r["strategy"] not in SPECIAL]
    classes = class_names(at)
    names = [s for s in strategies(at)
             if any(r.get(f"share_{c}") is not None for r in at if r["strategy"] == s
                    for c in classes)]
    colors = strategy_colors(names)
    with plt.rc_context(plots.style()):
        fig, ax = plt.subplots(
            figsize=(min(11.0, max(6.4, 0.18 * len(classes) * max(1, len(names)) + 3.0)), 4.2)
        )
        width = 0.8 / max(1, len(names))
        x = np.arange(len(classes))
        for i, name in enumerate(names):
            mine = [r for r in at if r["strategy"] == name]
            share = [100.0 * float(np.mean([r.get(f"share_{c}") or 0.0 for r in mine]))
                     for c in classes]
            ent = [r["class_entropy"] for r in mine if r.get("class_entropy") is not None]
            label = f"{name} (H={np.mean(ent):.2f})" if ent else name
            other_kind = ({} if split_series(name)[1] is None
                          else {"hatch": "//", "edgecolor": "white", "lw": 0})
            ax.bar(x - 0.4 + width * (i + 0.5), share, width, color=colors[name], label=label,
                   **other_kind)
        ax.set_xticks(x)
        ax.set_xticklabels(classes, rotation=40 if len(classes) > 6 else 0,
                           ha="right" if len(classes) > 6 else "center")
        ax.set_ylabel("% of labelled pixels")
        ax.set_title(f"Class distribution of labelled pixels at {budget} regions")
        ax.grid(axis="x", visible=False)
        if names:
            ax.legend(fontsize=9, title="strategy (class entropy)", title_fontsize=9,
                      loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        return plots.save(fig, path)


def agent_learning_curve(curves: dict[str, Sequence[dict[str, Any]]], path: Path,
                         window: int = 10) -> Path:
    """The agents' training game per episode: final D_R mIoU and labelled-class entropy.

    ``curves``: agent label -> its episodes (rows of ``run.sqlite``'s ``episodes`` table,
    :func:`ralis.report.agents.read_episodes`). Left axis: the final D_R mIoU (%) of every
    episode as a light line per agent, with its moving average over ``window`` episodes
    (:func:`ralis.report.agents.moving_average`) in full colour. Right axis: the class
    entropy (nats) of the labelled pixels, dashed (moving average, light raw). ε of the
    ε-greedy policy, faint and dotted, on a third axis (0 to 1); the start model's D_R mIoU as a
    dash-dotted line. Below, when the episodes
    record it: the DQN's Huber loss per episode on a log scale.
    """
    names = list(curves)
    palette = [KNOWN_COLORS["ralis"], *EXTRA_COLORS, KNOWN_COLORS["entropy"],
               KNOWN_COLORS["bald"]]
    has_loss = any(e.get("loss") is not None and e.get("final_miou") is not None
                   for eps in curves.values() for e in eps)
    with plt.rc_context(plots.style()):
        if has_loss:
            fig, (ax, loss_ax) = plt.subplots(2, 1, figsize=(7.2, 6.0), sharex=True,
                                              gridspec_kw={"height_ratios": [3, 1.3]})
        else:
            fig, ax = plt.subplots(figsize=(7.2, 4.4))
            loss_ax = None
        right = ax.twinx()
        right.grid(False)
        eps_ax = ax.twinx()
        eps_ax.grid(False)
        eps_ax.spines["right"].set_position(("axes", 1.12))
        eps_ax.set_ylim(0, 1.05)
        handles = []
        any_entropy = any_eps = False
        for i, name in enumerate(names):
            color = palette[i % len(palette)]
            eps = [e for e in curves[name] if e.get("final_miou") is not None]
            if not eps:
                continue
            x = np.array([e["episode"] for e in eps], dtype=float)
            y = 100.0 * np.array([e["final_miou"] for e in eps], dtype=float)
            ax.plot(x, y, color=color, lw=0.8, alpha=0.3)
            handles += ax.plot(x, moving_average(y, window), color=color, lw=2.0,
                               label=f"{name}: final D_R mIoU ({window}-episode mean)")
            start = summarize(eps, window).start
            if start is not None:
                handles.append(ax.axhline(start, color=color, lw=0.9, ls="-.", alpha=0.7,
                                          label=f"{name}: start model"))
            ent = [(e["episode"], e["class_entropy"]) for e in eps
                   if e.get("class_entropy") is not None]
            if ent:
                any_entropy = True
                ex = np.array([a for a, _ in ent], dtype=float)
                ey = np.array([b for _, b in ent], dtype=float)
                right.plot(ex, ey, color=color, lw=0.7, alpha=0.25, ls="--")
                handles += right.plot(ex, moving_average(ey, window), color=color, lw=1.4,
                                      ls="--", label=f"{name}: class entropy")
            greedy = [(e["episode"], e["epsilon"]) for e in eps if e.get("epsilon") is not None]
            if greedy:
                any_eps = True
                handles += eps_ax.plot([a for a, _ in greedy], [b for _, b in greedy],
                                       color=color, lw=1.0, alpha=0.35, ls=":",
                                       label=f"{name}: ε")
            loss = [(e["episode"], e["loss"]) for e in eps
                    if e.get("loss") is not None and e["loss"] > 0]
            if loss_ax is not None and loss:
                loss_ax.plot([a for a, _ in loss], [b for _, b in loss], color=color, lw=1.0)
        if loss_ax is not None:
            loss_ax.set_yscale("log")
            loss_ax.set_ylabel("DQN loss")
            loss_ax.set_xlabel("episode")
        else:
            ax.set_xlabel("episode")
        ax.set_ylabel("final D_R mIoU (%)")
        right.set_ylabel("class entropy of labelled pixels (nats)" if any_entropy else "")
        if not any_entropy:
            right.set_yticks([])
        if any_eps:
            eps_ax.set_ylabel("ε (exploration)", color="0.5")
            eps_ax.tick_params(axis="y", colors="0.5")
        else:
            eps_ax.set_yticks([])
            eps_ax.spines["right"].set_visible(False)
        ax.set_title("RALIS agent training: final D_R mIoU per episode", pad=10)
        bottom = 0.0
        if handles:  # under the axes, so long agent names never squeeze them
            ncol = min(2, len(handles))
            rows = -(-len(handles) // ncol)
            bottom = min(0.45, (0.03 * rows + 0.02) * (4.4 / fig.get_figheight()))
            fig.legend(handles=handles, fontsize=7.5, framealpha=0.9, loc="lower center",
                       ncol=ncol)
        fig.tight_layout(rect=(0, bottom, 1, 1))
        return plots.save(fig, path)
