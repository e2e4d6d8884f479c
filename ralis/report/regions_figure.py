"""The regions each strategy acquired, drawn on a few pool images (the paper's Appendix D):
rectangles, or the outlines of the acquired SLIC superpixels.

Rows: the images with the most acquisitions over all strategies; columns: strategies (or series
``entropy · slic``). Sample names are shortened for labels by :func:`short_names`.
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

from ralis.config import load_config  # noqa: E402
from ralis.errors import RalisError  # noqa: E402
from ralis.report import plots  # noqa: E402
from ralis.report.plots import strategy_colors  # noqa: E402
from ralis.report.runs import run_region_kind  # noqa: E402
from ralis.report.series import order_strategies  # noqa: E402

ImageLoader = Callable[[Path, list[str]], dict[str, Any]]
"""``(run_dir, image names) -> {name: image}``; an image is uint8 ``[3,H,W]`` or ``[H,W,3]``."""


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
    from ralis.data.protocol import load_protocol  # the dataset only when images are drawn

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
    (:func:`ralis.report.runs.run_region_kind`) shades and outlines its acquired superpixels,
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
        return plots.save(fig, path)
