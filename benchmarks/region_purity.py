"""How pure are a dataset's regions? Rectangles against SLIC superpixels.

For every region of the pool, the share of its labelled (non-void) pixels that belong to its
majority class. Pixel-weighted, that is the share of pixels that one-click (dominant-class)
labelling would get right; per region, it says how often a region straddles two objects. Also
the region sizes and the number of classes a region holds.

    python benchmarks/region_purity.py --preset camvid-cpu-v5 \\
        --out docs/results/camvid-cpu-v5/region_purity.json

Each kind is read through the same protocol as a run (``--set data.regions=KIND``), so the
superpixels are exactly the ones a run uses (and come from the same cache).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from ralis.config import apply_overrides, get_preset
from ralis.data.protocol import load_protocol
from ralis.files.atomic import atomic_write_text
from ralis.provenance import git_revision
from ralis.regions.histograms import void_as_last_bin


def purity_stats(counts: torch.Tensor, valid: torch.Tensor, pure: float = 0.9) -> dict:
    """Purity of regions from their class counts.

    Args:
        counts: ``[M, C + 1]`` pixel counts per region and class, the last bin void.
        valid: ``[M]`` bool, the ids that are regions (padding ids of superpixels are not).
        pure: the purity from which a region counts as pure.

    Returns:
        ``pixel_purity``: majority-class pixels / labelled pixels over all regions;
        ``region_purity``: the mean over regions of the same ratio; ``pure_share``: the share of
        regions at or above ``pure``; ``classes_per_region``: mean count of classes present;
        ``void_share``: void pixels / all pixels; ``size_mean`` / ``size_std``: pixels per
        region; ``regions``: regions counted (valid ones with a labelled pixel).
    """
    counts = counts[valid].double()
    labelled = counts[:, :-1]
    total = labelled.sum(dim=1)
    keep = total > 0
    majority = labelled.max(dim=1).values[keep]
    ratio = majority / total[keep]
    sizes = counts.sum(dim=1)
    return {
        "pixel_purity": float(majority.sum() / total[keep].sum()),
        "region_purity": float(ratio.mean()),
        "pure_share": float((ratio >= pure).double().mean()),
        "pure_threshold": pure,
        "classes_per_region": float((labelled[keep] > 0).sum(dim=1).double().mean()),
        "void_share": float(counts[:, -1].sum() / sizes.sum()),
        "size_mean": float(sizes.mean()),
        "size_std": float(sizes.std()),
        "regions": int(keep.sum()),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="camvid-cpu-v5")
    ap.add_argument("--set", action="append", default=[], help="config override sec.field=value")
    ap.add_argument("--kinds", default="rect,slic", help="region kinds, comma-separated")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/region_purity.json"))
    args = ap.parse_args(argv)
    result: dict = {"command": shlex.join([sys.executable, *sys.argv]),
                    "git_revision": git_revision(), "preset": args.preset, "kinds": {}}
    for kind in args.kinds.split(","):
        cfg = apply_overrides(get_preset(args.preset), [*args.set, f"data.regions={kind}"])
        start = time.perf_counter()
        proto = load_protocol(cfg.data, progress=False)
        pool = proto.pool
        regions = proto.regions_of(pool)
        ids = void_as_last_bin(pool.masks.long(), proto.num_classes, proto.ignore_index)
        counts = regions.bincount(ids, proto.num_classes + 1).reshape(-1, proto.num_classes + 1)
        stats = purity_stats(counts, regions.valid(len(pool)))
        stats.update(images=len(pool), describe=regions.describe(),
                     wall=time.perf_counter() - start)
        result["kinds"][kind] = stats
        print(f"{kind}: pixel purity {stats['pixel_purity']:.3f}, region purity "
              f"{stats['region_purity']:.3f}, ≥{stats['pure_threshold']:.0%} pure "
              f"{stats['pure_share']:.1%}, classes/region {stats['classes_per_region']:.2f}, "
              f"size {stats['size_mean']:.0f} ± {stats['size_std']:.0f} px "
              f"({stats['regions']} regions)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=2) + "\n", args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
