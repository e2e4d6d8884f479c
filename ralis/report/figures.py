"""Paper-style figures (matplotlib, Agg backend). Each function writes one PNG, returns its path.

* :func:`miou_curve` - test mIoU vs labelled regions, mean ± std over seeds (Figure 4);
* :func:`class_distribution` - share of labelled pixels per class at a budget (Figure 3 / C.1);
* :func:`regions_on_images` - the regions each strategy acquired, drawn on pool images
  (Appendix D): rectangles, or the outlines of the acquired SLIC superpixels;
* :func:`agent_learning_curve` - the RALIS agent's training game, episode by episode.

Styling is deterministic: one fixed colour per strategy (:func:`strategy_colors`), the upper
bound (strategy ``full``) as a dashed black horizontal line, the start model (strategy ``theta0``)
as a black star at 0 regions where every strategy's line begins. A series of another region kind
(``entropy · slic``, see :func:`ralis.report.table.series_rows`) has its strategy's colour and a
dashed line (:func:`line_style`). Sample names are shortened for labels by :func:`short_names`.
"""

from __future__ import annotations

import csv
import json
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
    run_region_kind,
    split_series,
    strategies,
)

KNOWN_COLORS = {
    "random": "#7f7f7f", "entropy": "#1f77b4", "bald": "#2ca02c", "ralis": "#d62728",
}
EXTRA_COLORS = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
MARKERS = {"random": "s", "entropy": "^", "bald": "D", "ralis": "o"}
ImageLoader = Callable[[Path, list[str]], dict[str, Any]]
"""``(run_dir, image names) -> {name: image}``; an image is uint8 ``[3,H,W]`` or ``[H,W,3]``."""


KIND_LINES = {None: "-", "slic": "--"}
"""Line style per region kind of a series (None: a plain name); other kinds are dotted."""


def strategy_colors(names: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the paper's strategies; others get the next palette colour, sorted.

    A series ``"<strategy> · <kind>"`` gets its strategy's colour.
    """
    bases = {split_series(n)[0] for n in names}
    by_base = {b: KNOWN_COLORS[b] for b in bases if b in KNOWN_COLORS}
    others = [b for b in order_strategies(bases) if b not in by_base and b not in SPECIAL]
    for i, name in enumerate(others):
        by_base[name] = EXTRA_COLORS[i % len(EXTRA_COLORS)]
    out = {n: by_base[split_series(n)[0]] for n in names if n not in SPECIAL}
    out[FULL] = "black"
    out[THETA0] = "black"
    return out


def line_style(name: str) -> str:
    """Solid for a plain strategy name, dashed for a slic series, dotted for another kind."""
    return KIND_LINES.get(split_series(name)[1], ":")


def marker(name: str) -> str:
    return MARKERS.get(split_series(name)[0], "o")


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
    with plt.rc_context(_style()):
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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class _Superpixels:
    """The SLIC segments of a slic run's pool images, recomputed one image at a time.

    The segment count and ``per_image`` from the run's results.json (``regions``), the
    compactness and cache folder from its config.json: a
    region id is ``image_index_in_pool * per_image + segment``, so the segment is the id
    modulo ``per_image``.
    """

    def __init__(self, run_dir: Path) -> None:
        from ralis.config import load_config

        data = load_config(Path(run_dir) / "config.json").data
        self.compactness, self.cache_dir = data.slic_compactness, data.cache_dir
        regions = _read_json(Path(run_dir) / "results.json").get("regions")
        regions = regions if isinstance(regions, dict) else {}
        if not regions.get("per_image"):
            raise RalisError(f"{run_dir}/results.json has no regions.per_image, so its "
                             "superpixel ids cannot be mapped to segments; is the run finished?")
        self.per_image = int(regions["per_image"])
        # the segment count the run used (data.superpixels=None means the grid's count)
        self.superpixels = regions.get("superpixels") or data.superpixels
        if not self.superpixels:
            raise RalisError(f"{run_dir}/results.json has no regions.superpixels; is the run "
                             "finished?")
        size = regions.get("image_size")
        self.image_size = tuple(size) if size else None

    def segments(self, picture: np.ndarray) -> np.ndarray:
        """``[H, W]`` segment ids of one ``[H, W, 3]`` uint8 picture."""
        import torch

        from ralis.regions.superpixels import superpixel_labels

        if self.image_size is not None and picture.shape[:2] != self.image_size:
            raise RalisError(f"the pool image is {picture.shape[0]}x{picture.shape[1]}, but the "
                             f"run's superpixels were computed at {self.image_size[0]}x"
                             f"{self.image_size[1]}")
        chw = torch.from_numpy(np.ascontiguousarray(picture.transpose(2, 0, 1)))
        return np.asarray(superpixel_labels(chw[None], self.superpixels, self.compactness,
                                            cache_dir=self.cache_dir, progress=False)[0])


def superpixel_overlay(segments: np.ndarray, chosen: Sequence[int], color: str,
                       alpha: float = 0.35) -> np.ndarray:
    """``[H, W, 4]`` RGBA: the ``chosen`` segments shaded, each one outlined (opaque)."""
    from matplotlib.colors import to_rgb
    from skimage.segmentation import find_boundaries

    inside = np.isin(segments, np.asarray(list(chosen), dtype=segments.dtype))
    outline = find_boundaries(np.where(inside, segments.astype(np.int64) + 1, 0),
                              mode="inner") & inside
    rgba = np.zeros((*segments.shape, 4), dtype=float)
    rgba[..., :3] = to_rgb(color)
    rgba[..., 3] = np.where(outline, 1.0, np.where(inside, alpha, 0.0))
    return rgba


def regions_on_images(
    run_dirs_by_strategy: dict[str, Path],
    path: Path,
    num_images: int = 3,
    budget: int | None = None,
    load_images: ImageLoader | None = None,
) -> Path:
    """Regions acquired by each strategy (its first ``budget`` acquisitions) on a few pool images.

    Rows: the ``num_images`` images with the most acquisitions over all strategies; columns:
    strategies (or series ``entropy · slic``). The images are loaded once, from the first
    strategy's run directory, by ``load_images(run_dir, names)`` (default:
    :func:`load_pool_images`, which reads the run's config.json and its dataset). A rect run
    draws its rectangles (region sizes from its config.json); a slic run
    (:func:`ralis.report.table.run_region_kind`) shades and outlines its acquired superpixels,
    the image's SLIC segments recomputed with the run's settings (needs scikit-image).
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
    kinds = {s: run_region_kind(run_dirs_by_strategy[s]) for s in names}
    superpixels = {s: _Superpixels(run_dirs_by_strategy[s]) for s in names if kinds[s] == "slic"}
    if superpixels:
        try:
            import skimage.segmentation  # noqa: F401
        except ImportError:
            raise RalisError("drawing superpixel regions needs scikit-image: pip install "
                             "'ralis[superpixels]'") from None
    loader = load_images or load_pool_images
    pictures = loader(Path(run_dirs_by_strategy[names[0]]), images)
    sizes = {s: _region_size(run_dirs_by_strategy[s]) for s in names if s not in superpixels}
    segments: dict[tuple[int, float, str], np.ndarray] = {}
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
                mine = [r for r in acquired[s] if r["image"] == image]
                if s in superpixels:
                    sp = superpixels[s]
                    key = (sp.superpixels, sp.compactness, image)
                    if key not in segments:
                        segments[key] = sp.segments(picture)
                    ax.imshow(superpixel_overlay(segments[key],
                                                 [r["region_id"] % sp.per_image for r in mine],
                                                 colors[s]), interpolation="nearest")
                else:
                    h, w = sizes[s]
                    for r in mine:
                        ax.add_patch(Rectangle(
                            (r["col"] * w - 0.5, r["row"] * h - 0.5), w, h,
                            facecolor=colors[s], alpha=0.35, edgecolor="none",
                        ))
                        ax.add_patch(Rectangle(
                            (r["col"] * w - 0.5, r["row"] * h - 0.5), w, h, fill=False,
                            edgecolor=colors[s], lw=1.5,
                        ))
                ax.set_xticks([])
                ax.set_yticks([])
                plural = "" if len(mine) == 1 else "s"
                what = "superpixel" if s in superpixels else "region"
                ax.set_title(f"{s}: {len(mine)} {what}{plural}", fontsize=9, pad=3,
                             color=colors[s], fontweight="bold")
                if j == 0:
                    ax.set_ylabel(labels[image], fontsize=8)
        upto = f"first {budget} acquisitions" if budget is not None else "all acquisitions"
        fig.suptitle(f"Acquired regions ({upto})", fontsize=11)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        return _save(fig, path)


# ------------------------------------------------------------------ agent learning curve
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
    from ralis.report.agents import moving_average, summarize

    names = list(curves)
    palette = [KNOWN_COLORS["ralis"], *EXTRA_COLORS, KNOWN_COLORS["entropy"],
               KNOWN_COLORS["bald"]]
    has_loss = any(e.get("loss") is not None and e.get("final_miou") is not None
                   for eps in curves.values() for e in eps)
    with plt.rc_context(_style()):
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
        return _save(fig, path)
