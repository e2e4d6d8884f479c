"""The labelling loop, measured: a CamVid project answered by the file annotator in every format,
and the memory of ``label init`` / ``label next`` on large synthetic projects.

    python benchmarks/label_loop.py camvid            # ../shared/datasets/camvid, ~10 min
    python benchmarks/label_loop.py scale --images 1000,10000   # ~15 min at 10,000

``camvid``: a project of the 367 CamVid train images (native 480x360, working 240x180, regions
of 40x45 = 24 per image), 20 images fully labelled as start labels; model version 1 trains on
them, then 4 rounds of 48 entropy regions, each exported in another format (labelstudio, cvat,
coco, png), answered from the ground truth by the file annotator, imported, and trained on.
Every command runs as the CLI in its own process; wall time and peak RSS per command, and each
model version's mIoU on CamVid val (101 images), go to ``docs/results/labelling/``.
``scale``: N synthetic 480x360 images; ``label init`` (caching) and ``label next --regions 48
--strategy entropy`` scoring every region, peak RSS of each. Last line:
``label_loop: <what> ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "labelling"


def run_measured(args: list[str]) -> dict:
    """``ralis ARGS`` in a child process: wall seconds, peak RSS (GB, from ``wait4``), stdout."""
    start = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "ralis", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         env={**os.environ, "RALIS_PROGRESS_INTERVAL": "60"})
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"ralis {' '.join(args)} failed:\n{err}")
    return {"command": "ralis " + " ".join(args), "wall_s": round(wall, 2),
            "peak_rss_gb": round(usage.ru_maxrss / 1024 ** 2, 3), "stdout": out.strip()}


def header() -> dict:
    from ralis.provenance import git_revision

    return {"git_revision": git_revision(), "command": " ".join(sys.argv), "date":
            time.strftime("%Y-%m-%d %H:%M:%S")}


# ------------------------------------------------------------------------------------ camvid
def camvid(args) -> None:
    import torch

    from ralis.config import get_preset
    from ralis.data.camvid import default_root
    from ralis.data.masks import read_ids
    from ralis.data.protocol import dataset_for, load_images
    from ralis.labelling.annotator import answer_round
    from ralis.labelling.project import open_project
    from ralis.metrics import mean_iou
    from ralis.models import load_model
    from ralis.training.train import evaluate

    data = default_root()
    names = sorted(p.stem for p in (data / "train").glob("*.png"))
    work = Path(tempfile.mkdtemp(prefix="ralis-label-camvid-"))
    images, start = work / "images", work / "start"
    images.mkdir()
    start.mkdir()
    for n in names:
        (images / f"{n}.png").symlink_to(data / "train" / f"{n}.png")
    rng = np.random.default_rng(args.seed)
    for n in rng.choice(names, args.start_images, replace=False):
        (start / f"{n}.png").symlink_to(data / "trainannot" / f"{n}.png")
    classes = work / "classes.yaml"
    cv = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
          "Pedestrian", "Bicyclist"]
    colors = [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
              [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
              [0, 128, 192]]
    import yaml

    classes.write_text(yaml.safe_dump({"classes": [{"name": n, "id": i, "color": c} for i, (n, c)
                                                   in enumerate(zip(cv, colors, strict=True))],
                                       "ignore_index": 11}))
    proj = work / "proj"
    cfg = get_preset("camvid-cpu")
    val = load_images(dataset_for(cfg.data, "val"), "val", progress=False)

    def miou(version: int) -> float:
        model, _ = load_model(proj / "models" / f"v{version:04d}.safetensors")
        conf = evaluate(model, val.images_u8, val.masks, 11, 11, 16)
        return round(100 * mean_iou(conf), 2)

    log = []
    log.append(run_measured(["label", "init", str(proj), "--images", str(images), "--classes",
                             str(classes), "--resolution", "180x240", "--start-labels",
                             str(start), "--seed", str(args.seed), "--quiet"]))
    log.append(run_measured(["label", "train", str(proj), "--epochs", str(args.start_epochs),
                             "--quiet"]))
    log[-1]["val_miou"] = miou(1)
    for r, fmt in enumerate(["labelstudio", "cvat", "coco", "png"], start=1):
        log.append(run_measured(["label", "next", str(proj), "--regions", str(args.regions),
                                 "--strategy", "entropy", "--format", fmt, "--quiet"]))
        ext = {"png": "", "labelstudio": ".json", "cvat": ".xml", "coco": ".json"}[fmt]
        with open_project(proj, "benchmark") as p:
            answer = answer_round(p, r, lambda name: read_ids(data / "trainannot" / name),
                                  fmt, work / f"answer-{r}{ext}")
        log.append(run_measured(["label", "import", str(proj), str(answer)]))
        log.append(run_measured(["label", "train", str(proj), "--epochs", str(args.epochs),
                                 "--quiet"]))
        log[-1]["val_miou"] = miou(r + 1)
        if r == 1:
            OUT.mkdir(parents=True, exist_ok=True)
            shutil.copy(proj / "rounds" / "1" / "preview.png", OUT / "camvid-round1-preview.png")
    status = json.loads(run_measured(["label", "status", str(proj), "--json"])["stdout"])
    result = {**header(), "dataset": str(data), "images": len(names),
              "start_images": args.start_images, "regions_per_round": args.regions,
              "epochs": args.epochs, "start_epochs": args.start_epochs, "seed": args.seed,
              "torch_threads": torch.get_num_threads(), "commands": log,
              "status": {k: status[k] for k in ("requested", "labelled", "pending",
                                                "pixels_per_class", "models", "rounds")}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "camvid.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    for c in log:
        extra = f", val mIoU {c['val_miou']}" if "val_miou" in c else ""
        print(f"{c['command'].split()[2]:>7}: {c['wall_s']:7.1f} s, peak RSS "
              f"{c['peak_rss_gb']:.2f} GB{extra}")
    print(f"label_loop: camvid {len(names)} images, {status['labelled']} regions labelled in "
          f"{len(status['rounds'])} rounds, val mIoU " +
          " -> ".join(str(c["val_miou"]) for c in log if "val_miou" in c))


# ------------------------------------------------------------------------------------- scale
def synthetic_images(folder: Path, n: int, size=(360, 480), seed: int = 0) -> None:
    """``n`` street-like images (blocks of colour with noise) as PNG files."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (64, 3), dtype=np.uint8)
    for i in range(n):
        rows = rng.integers(0, 64, (6, 8))
        img = base[rows].repeat(size[0] // 6, 0).repeat(size[1] // 8, 1)
        img = np.clip(img.astype(np.int16) + rng.integers(-20, 20, img.shape), 0, 255)
        sub = folder / f"{i // 1000:02d}"  # sub-folders, as big projects have them
        sub.mkdir(exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(sub / f"{i:05d}.png")


def scale(args) -> None:
    import yaml

    work = Path(tempfile.mkdtemp(prefix="ralis-label-scale-"))
    classes = work / "classes.yaml"
    classes.write_text(yaml.safe_dump({"classes": [{"name": f"c{i}", "id": i} for i in range(11)],
                                       "ignore_index": 255}))
    rows = []
    for n in [int(v) for v in args.images.split(",")]:
        images = work / f"images-{n}"
        t = time.perf_counter()
        synthetic_images(images, n)
        made = time.perf_counter() - t
        proj = work / f"proj-{n}"
        init = run_measured(["label", "init", str(proj), "--images", str(images), "--classes",
                             str(classes), "--resolution", "180x240", "--quiet"])
        # entropy needs a trained model: version 0 is a fresh network, so train it once on a
        # random first round answered with a constant label (the model's quality is not measured)
        first = run_measured(["label", "next", str(proj), "--regions", "48", "--strategy",
                              "random", "--quiet"])
        from ralis.labelling.annotator import answer_round
        from ralis.labelling.project import open_project

        with open_project(proj, "benchmark") as p:
            answer = answer_round(p, 1, lambda name: np.full((360, 480), 3, np.int64), "png",
                                  work / f"answer-{n}")
        run_measured(["label", "import", str(proj), str(answer)])
        run_measured(["label", "train", str(proj), "--quiet"])
        scored = run_measured(["label", "next", str(proj), "--regions", "48", "--strategy",
                               "entropy", "--quiet"])
        rows.append({"images": n, "make_images_s": round(made, 1), "init": init,
                     "first_round": first, "next_entropy_all": scored})
        print(f"{n} images: init {init['wall_s']} s / {init['peak_rss_gb']} GB, next (entropy, "
              f"{n * 24} regions scored) {scored['wall_s']} s / {scored['peak_rss_gb']} GB",
              flush=True)
        shutil.rmtree(images, ignore_errors=True)
        shutil.rmtree(proj, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps({**header(), "rows": rows}, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print("label_loop: scale " + ", ".join(
        f"{r['images']} images init {r['init']['peak_rss_gb']} GB next "
        f"{r['next_entropy_all']['peak_rss_gb']} GB" for r in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("camvid")
    c.add_argument("--regions", type=int, default=48)
    c.add_argument("--start-images", type=int, default=20)
    c.add_argument("--start-epochs", type=int, default=30)
    c.add_argument("--epochs", type=int, default=5)
    c.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("scale")
    s.add_argument("--images", default="1000,10000")
    args = ap.parse_args()
    camvid(args) if args.what == "camvid" else scale(args)


if __name__ == "__main__":
    main()
