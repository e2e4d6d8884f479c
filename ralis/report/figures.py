"""Paper-style figures (matplotlib, Agg backend). Each function writes one PNG, returns its path.

* :func:`miou_curve` - test mIoU vs labelled regions, mean ± std over seeds (Figure 4);
* :func:`class_distribution` - share of labelled pixels per class at a budget (Figure 3 / C.1);
* :func:`regions_on_images` - the regions each strategy acquired, drawn on pool images
  (Appendix D).

Styling is deterministic: one fixed colour per strategy (:func:`strategy_colors`), the upper
bound (strategy ``full``) as a dashed black horizontal line, the start model (strategy ``theta0``)
as a black star at 0 regions where every strategy's line begins. Sample names are shortened for
labels by :func:`short_names`.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ralis.errors import RalisError  # noqa: E402
from ralis.report.table import (  # noqa: E402
    FULL,
    SPECIAL,
    THETA0,
    aggregate,
    class_names,
    order_strategies,
    pixel_fractions,
    reference,
    strategies,
)

KNOWN_COLORS = {
    "random": "#7f7f7f", "entropy": "#1f77b4", "bald": "#2ca02c", "ralis": "#d62728",
}
EXTRA_COLORS = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
MARKERS = {"random": "s", "entropy": "^", "bald": "D", "ralis": "o"}
ImageLoader = Callable[[Path, list[str]], dict[str, Any]]
"""``(run_dir, image names) -> {name: image}``; an image is uint8 ``[3,H,W]`` or ``[H,W,3]``."""


def strategy_colors(names: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the paper's strategies; others get the next palette colour, sorted."""
    out = {n: KNOWN_COLORS[n] for n in names if n in KNOWN_COLORS}
    others = [n for n in order_strategies(names) if n not in out and n not in SPECIAL]
    for i, name in enumerate(others):
        out[name] = EXTRA_COLORS[i % len(EXTRA_COLORS)]
    out[FULL] = "black"
    out[THETA0] = "black"
    return out


def ellipsize(text: str, max_len: int) -> str:
    """``text`` cut to ``max_len`` characters with "…" in the middle (both ends kept)."""
    if len(text) <= max_len:
        return text
    keep = max(1, max_len - 1)
    head = keep // 3
    return text[:head] + "…" + text[len(text) - (keep - head):]


def short_names(names: Sequence[str], max_len: int = 24) -> dict[str, str]:
    """Short, still distinct labels for sample names that may be long relative paths.

    Each name keeps the shortest suffix of its path components (split at ``/`` or ``\\``) that
    no other name ends with; a suffix of three or more components keeps only its first and last
    (``seq01/…/0001_image``) when that stays distinct. Labels longer than ``max_len`` are cut in
    the middle (:func:`ellipsize`) unless that would make two of them equal.
    """
    unique = list(dict.fromkeys(names))
    parts = {n: [p for p in re.split(r"[\\/]", n) if p] or [n] for n in unique}
    suffixes = {}
    for name, comps in parts.items():
        for k in range(1, len(comps) + 1):
            tail = comps[-k:]
            if not any(other[-k:] == tail for o, other in parts.items() if o != name):
                break
        suffixes[name] = tail
    labels = {n: "/".join(t) for n, t in suffixes.items()}
    short = {n: (f"{t[0]}/…/{t[-1]}" if len(t) > 2 else labels[n]) for n, t in suffixes.items()}
    for candidate in (short, {n: ellipsize(v, max_len) for n, v in short.items()}):
        counts = Counter(candidate.values())
        labels = {n: (candidate[n] if counts[candidate[n]] == 1 else labels[n]) for n in unique}
    return labels


def _style() -> dict[str, Any]:
    return {"font.size": 10, "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 120}


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------ mIoU curve
def miou_curve(rows: Sequence[dict[str, Any]], path: Path, key: str = "miou",
               label: str = "test mIoU (%)") -> Path:
    """mIoU (%) vs labelled regions: mean line ± std band per strategy, upper bound dashed.

    ``key`` picks the column (``miou`` on test, ``val_miou`` on D_R) and ``label`` names it.
    The top axis gives the same budgets as % of the pool's pixels (from ``pixel_fraction``).
    With a ``theta0`` row, every strategy's line starts at (0 regions, θ0's mIoU), marked by a
    black star: the shared start model.
    """
    stats = aggregate(rows, key, scale=100.0)
    names = strategies(rows)
    colors = strategy_colors(names)
    start = reference(stats, THETA0)
    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for name in names:
            pts = sorted((b, s) for (n, b), s in stats.items() if n == name)
            if not pts:
                continue
            if start is not None:
                pts = [(0, start), *pts]
            x = np.array([b for b, _ in pts], dtype=float)
            y = np.array([s.mean for _, s in pts])
            sd = np.array([s.std or 0.0 for _, s in pts])
            seeds = max(s.n for _, s in pts)
            marked = list(range(1 if start is not None else 0, len(pts)))  # θ0 has its star
            ax.plot(x, y, color=colors[name], marker=MARKERS.get(name, "o"), ms=5, lw=1.8,
                    markevery=marked, label=f"{name} (n={seeds})")
            ax.fill_between(x, y - sd, y + sd, color=colors[name], alpha=0.18, lw=0)
        if start is not None:
            ax.plot([0], [start.mean], ls="none", marker="*", ms=13, color="black", zorder=5,
                    label=f"θ0, start model ({start.mean:.1f})")
        full = [s for (n, _), s in stats.items() if n == FULL]
        if full:
            ub = full[0]
            ax.axhline(ub.mean, color="black", ls="--", lw=1.3,
                       label=f"full supervision ({ub.mean:.1f})")
        ax.set_xlabel("labelled regions")
        ax.set_ylabel(label)
        ax.set_title(f"{label.split(' (')[0]} vs labelled regions (mean ± std over seeds)",
                     pad=10)
        fractions = pixel_fractions(rows)
        ratios = [f / b for b, f in fractions.items() if b > 0 and f > 0]
        if ratios:
            per_region = 100.0 * float(np.median(ratios))
            top = ax.secondary_xaxis(
                "top", functions=(lambda r: r * per_region, lambda p: p / per_region)
            )
            top.set_xlabel("% of pool pixels labelled")
        if names or full or start is not None:
            ax.legend(loc="best", fontsize=9, framealpha=0.9)
        fig.tight_layout()
        return _save(fig, path)


# --------------------------------------------------------------------- class distribution
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
    with plt.rc_context(_style()):
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
            ax.bar(x - 0.4 + width * (i + 0.5), share, width, color=colors[name], label=label)
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
        return _save(fig, path)


# ----------------------------------------------------------------------- regions on images
def read_acquisitions(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``run_dir/acquired_regions.csv`` (position, step, region_id, row, col as ints)."""
    path = Path(run_dir) / "acquired_regions.csv"
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise RalisError(f"{run_dir} has no acquired_regions.csv; is it a finished AL run?") from None
    for r in rows:
        for k in ("position", "step", "region_id", "row", "col"):
            r[k] = int(r[k])
    return sorted(rows, key=lambda r: r["position"])


def pick_images(acquired: dict[str, list[dict[str, Any]]], num_images: int) -> list[str]:
    """Images with the most acquisitions summed over strategies (ties: name order)."""
    counts = Counter(r["image"] for rows in acquired.values() for r in rows)
    return [n for n, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:num_images]


def load_pool_images(run_dir: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The default loader: the run's pool images (via its config.json), ``[H, W, 3]`` uint8."""
    from ralis.config import load_config
    from ralis.data.protocol import load_protocol

    cfg = load_config(Path(run_dir) / "config.json")
    pool = load_protocol(cfg.data, progress=False).pool
    index = {n: i for i, n in enumerate(pool.names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise RalisError(f"images {missing[:3]} are not in the pool of {run_dir}'s dataset")
    return {n: pool.images_u8[index[n]].permute(1, 2, 0).numpy() for n in names}


def _hwc(image: Any) -> np.ndarray:
    arr = np.asarray(image.numpy() if hasattr(image, "numpy") else image)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    return arr


def _region_size(run_dir: Path) -> tuple[int, int]:
    from ralis.config import load_config

    return tuple(load_config(Path(run_dir) / "config.json").data.region_size)


def regions_on_images(
    run_dirs_by_strategy: dict[str, Path],
    path: Path,
    num_images: int = 3,
    budget: int | None = None,
    load_images: ImageLoader | None = None,
) -> Path:
    """Regions acquired by each strategy (its first ``budget`` acquisitions) on a few pool images.

    Rows: the ``num_images`` images with the most acquisitions over all strategies; columns:
    strategies. The images are loaded once, from the first strategy's run directory, by
    ``load_images(run_dir, names)`` (default: :func:`load_pool_images`, which reads the run's
    config.json and its dataset); region sizes come from each run's config.json.
    """
    if not run_dirs_by_strategy:
        raise RalisError("regions_on_images needs at least one run directory")
    names = order_strategies(run_dirs_by_strategy)
    acquired = {}
    for s in names:
        rows = read_acquisitions(run_dirs_by_strategy[s])
        acquired[s] = [r for r in rows if budget is None or r["position"] < budget]
    images = pick_images(acquired, num_images)
    if not images:
        raise RalisError("no acquired regions to draw")
    loader = load_images or load_pool_images
    pictures = loader(Path(run_dirs_by_strategy[names[0]]), images)
    sizes = {s: _region_size(run_dirs_by_strategy[s]) for s in names}
    colors = strategy_colors(names)
    labels = short_names(images)
    first = _hwc(pictures[images[0]])
    aspect = first.shape[0] / first.shape[1]
    cell = 3.0
    with plt.rc_context({"font.size": 9}):
        fig, axes = plt.subplots(
            len(images), len(names), squeeze=False,
            figsize=(cell * len(names), (cell * aspect + 0.4) * len(images) + 0.3),
        )
        for i, image in enumerate(images):
            picture = _hwc(pictures[image])
            for j, s in enumerate(names):
                ax = axes[i, j]
                ax.imshow(picture, interpolation="nearest")
                h, w = sizes[s]
                mine = [r for r in acquired[s] if r["image"] == image]
                for r in mine:
                    ax.add_patch(Rectangle(
                        (r["col"] * w - 0.5, r["row"] * h - 0.5), w, h, facecolor=colors[s],
                        alpha=0.35, edgecolor="none",
                    ))
                    ax.add_patch(Rectangle(
                        (r["col"] * w - 0.5, r["row"] * h - 0.5), w, h, fill=False,
                        edgecolor=colors[s], lw=1.5,
                    ))
                ax.set_xticks([])
                ax.set_yticks([])
                plural = "" if len(mine) == 1 else "s"
                ax.set_title(f"{s}: {len(mine)} region{plural}", fontsize=9, pad=3,
                             color=colors[s], fontweight="bold")
                if j == 0:
                    ax.set_ylabel(labels[image], fontsize=8)
        upto = f"first {budget} acquisitions" if budget is not None else "all acquisitions"
        fig.suptitle(f"Acquired regions ({upto})", fontsize=11)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        return _save(fig, path)
