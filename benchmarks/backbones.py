"""Backbones trained to convergence: fpn_small (from scratch) against fpn_effl0 (ImageNet encoder).

For each model, training set and seed, trains one network on camvid-cpu's data with the
pretraining recipe run to convergence (SGD lr 1e-2, momentum 0.95, one 112x112 crop per image
per epoch, at most 200 epochs, stopped 30 epochs after the best D_R score) and tests it:

    theta0   camvid-cpu's labelled start set D_T (100 images): the start model θ0
    full     every training image (367): full supervision, the upper bound

Each cell is a ralis run directory (``ralis pretrain`` for theta0, ``ralis upper-bound`` for
full) under ``--runs``, checkpointed every epoch: rerunning the same command skips finished
cells and continues an interrupted one where it stopped. After each cell ``results.csv`` and
``summary.md`` in ``--out`` are rewritten from every finished cell: model, train_set, seed,
epochs, best_epoch, test mIoU at the D_R-selected epoch (``test_miou``) and at the last epoch
(``test_miou_last``), their D_R scores, the median training seconds per epoch, inference
milliseconds per image (test images at 180x240, batches of 16, this process's threads), wall
seconds, and the git revision, command and config of the cell.

Usage (one thread, as every published CPU number here)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/backbones.py --probe 2   # timing probe
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/backbones.py --timing 5  # interleaved cost
    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/backbones.py > runs/backbones.log 2>&1 &

``--cells`` orders and limits the cells (``model:train_set`` pairs); seeds run innermost.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ralis.config import RunConfig, apply_overrides, get_preset, validate
from ralis.data.protocol import Protocol, load_protocol
from ralis.files.atomic import atomic_write_text
from ralis.loop.grid import UPPER_IGNORE
from ralis.loop.pretrain import pretrain, upper_bound
from ralis.models import load_model
from ralis.provenance import git_revision
from ralis.run.names import MODEL_NAME
from ralis.training.train import evaluate

RECIPE = ["train.pretrain_epochs=200", "train.pretrain_patience=30", "threads=1"]
CELLS = "fpn_small:theta0,fpn_effl0:theta0,fpn_small:full,fpn_effl0:full"
COLUMNS = ["model", "train_set", "seed", "epochs", "best_epoch", "test_miou", "test_miou_last",
           "val_miou", "val_miou_last", "train_s_per_epoch", "val_s_per_epoch",
           "infer_ms_per_image", "wall_s", "threads", "git_revision", "command", "config",
           "run_dir"]


def cell_config(model: str, seed: int, sets: list[str]) -> RunConfig:
    cfg = apply_overrides(get_preset("camvid-cpu"), [*RECIPE, f"model.name={model}", *sets])
    return validate(replace(cfg, seed=seed))


@torch.no_grad()
def infer_ms_per_image(model_path: Path, proto: Protocol, cfg: RunConfig, repeats: int = 3
                       ) -> float:
    """Best of ``repeats`` timed passes over the test images (eval mode, batches of
    ``train.eval_batch_size``), in milliseconds per image."""
    model, _ = load_model(model_path)
    images = proto.test.images_u8
    evaluate(model, images[:16], proto.test.masks[:16], proto.num_classes, proto.ignore_index,
             cfg.train.eval_batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(model, images, proto.test.masks, proto.num_classes, proto.ignore_index,
                 cfg.train.eval_batch_size)
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best / len(images)


def run_cell(model: str, train_set: str, seed: int, run_dir: Path, proto: Protocol,
             sets: list[str]) -> dict:
    cfg = cell_config(model, seed, sets)
    done = run_dir / "row.json"
    if done.exists():
        return json.loads(done.read_text())
    train = pretrain if train_set == "theta0" else upper_bound
    train(cfg, run_dir, resume=True, progress=False, proto=proto, ignore=UPPER_IGNORE)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = metrics["history"]
    row = {
        "model": model, "train_set": train_set, "seed": seed, "epochs": metrics["epochs"],
        "best_epoch": metrics["best_epoch"], "test_miou": metrics["test_miou"],
        "test_miou_last": metrics["test_miou_last"], "val_miou": metrics["val_miou"],
        "val_miou_last": metrics["val_miou_last"],
        "train_s_per_epoch": statistics.median(r["t_train"] for r in history),
        "val_s_per_epoch": statistics.median(r["t_val"] for r in history if "t_val" in r),
        "infer_ms_per_image": infer_ms_per_image(run_dir / MODEL_NAME, proto, cfg),
        "wall_s": metrics["wall"], "threads": torch.get_num_threads(),
        "git_revision": git_revision(),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "config": str(run_dir / "config.json"), "run_dir": str(run_dir),
    }
    atomic_write_text(json.dumps(row, indent=2) + "\n", done)
    return row


def earlier_rows(path: Path, cells: list[tuple[str, ...]], seeds: list[int]) -> list[dict]:
    """The rows of an earlier ``results.csv`` that this invocation does not run again, so
    that runs of a few cells at a time add up to one table."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f)
                if not ((r["model"], r["train_set"]) in cells and int(r["seed"]) in seeds)]


def write_tables(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()}
                     for r in rows)
    atomic_write_text(text.getvalue(), out / "results.csv")
    atomic_write_text(summary(rows), out / "summary.md")


def summary(rows: list[dict]) -> str:
    """Mean ± sample std over seeds per model and training set (mIoU in %)."""
    out = ["| model | train set | seeds | test mIoU (D_R epoch) | test mIoU (last epoch) | "
           "D_R mIoU | epochs | train s/epoch | infer ms/image | compute min |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({(r["model"], r["train_set"]) for r in rows})
    for model, train_set in keys:
        cell = [{**r, "compute_s": compute_s(r)} for r in rows
                if r["model"] == model and r["train_set"] == train_set]

        def ms(key, scale=1.0, digits=1, cell=cell):
            vals = [scale * float(r[key]) for r in cell]
            sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
            return f"{statistics.mean(vals):.{digits}f} ± {sd:.{digits}f}"

        out.append(f"| {model} | {train_set} | {len(cell)} | {ms('test_miou', 100)} | "
                   f"{ms('test_miou_last', 100)} | {ms('val_miou', 100)} | {ms('epochs', 1, 0)} "
                   f"| {ms('train_s_per_epoch', 1, 2)} | {ms('infer_ms_per_image', 1, 1)} | "
                   f"{ms('compute_s', 1 / 60, 1)} |")
    out.append("\ncompute min: epochs x (median train + validation s per epoch), one thread; "
               "unlike wall_s it does not depend on how often a cell was interrupted.")
    return "\n".join(out) + "\n"


def compute_s(row: dict) -> float:
    return int(row["epochs"]) * (float(row["train_s_per_epoch"]) + float(row["val_s_per_epoch"]))


def probe(epochs: int, proto: Protocol, runs: Path, sets: list[str], models: list[str]) -> dict:
    """Train each model for ``epochs`` epochs on both training sets; seconds per epoch."""
    found = {}
    for model in models:
        for train_set in ("theta0", "full"):
            cfg = cell_config(model, 0, [*sets, f"train.pretrain_epochs={epochs}"])
            run_dir = runs / f"probe-{model}-{train_set}"
            fn = pretrain if train_set == "theta0" else upper_bound
            start = time.perf_counter()
            fn(cfg, run_dir, resume=True, progress=False, proto=proto, ignore=UPPER_IGNORE)
            wall = time.perf_counter() - start
            hist = json.loads((run_dir / "metrics.json").read_text())["history"]
            found[f"{model}:{train_set}"] = {
                "train_s_per_epoch": statistics.median(r["t_train"] for r in hist),
                "val_s_per_epoch": statistics.median(r["t_val"] for r in hist),
                "wall_s": wall, "epochs": len(hist),
                "infer_ms_per_image": infer_ms_per_image(run_dir / MODEL_NAME, proto, cfg),
                "first_loss": hist[0]["loss"], "val_miou": [r["val_miou"] for r in hist]}
            print(model, train_set, json.dumps(found[f"{model}:{train_set}"]), flush=True)
    return found


def timing(proto: Protocol, sets: list[str], models: list[str], repeats: int) -> dict:
    """Interleaved cost: per repeat, each model trains one epoch on D_T (one crop per image)
    and infers 64 test images, so every model sees the same machine load; medians."""
    from ralis.training.supervised import build_model
    from ralis.training.train import LabelledData, make_optimizer, train_pass

    data = LabelledData(proto.dqn_train.images_u8, proto.dqn_train.masks, proto.grid,
                        proto.ignore_index)
    regions = torch.arange(len(proto.dqn_train)) * proto.grid.per_image
    nets = {m: build_model(cell_config(m, 0, sets), proto.num_classes) for m in models}
    opts = {m: make_optimizer(n, 1e-2, cell_config(m, 0, sets).train) for m, n in nets.items()}
    times: dict[str, dict[str, list[float]]] = {m: {"train": [], "infer": []} for m in models}
    images, masks = proto.test.images_u8[:64], proto.test.masks[:64]
    for r in range(repeats):
        for m in models:
            cfg = cell_config(m, 0, sets)
            start = time.perf_counter()
            train_pass(nets[m], opts[m], data, regions, cfg.train, torch.Generator().manual_seed(r))
            mid = time.perf_counter()
            evaluate(nets[m], images, masks, proto.num_classes, proto.ignore_index,
                     cfg.train.eval_batch_size)
            times[m]["train"].append(mid - start)
            times[m]["infer"].append(1000 * (time.perf_counter() - mid) / len(images))
    found = {m: {"train_s_per_theta0_epoch": statistics.median(t["train"]),
                 "infer_ms_per_image": statistics.median(t["infer"])} for m, t in times.items()}
    for m in models:
        print(m, json.dumps(found[m]), flush=True)
    return {"repeats": repeats, "threads": torch.get_num_threads(), "models": found,
            "git_revision": git_revision(), "command": " ".join(sys.argv)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results/backbones"))
    parser.add_argument("--runs", type=Path, default=Path("runs/backbones"))
    parser.add_argument("--cells", default=CELLS, help=f"model:train_set pairs (default {CELLS})")
    parser.add_argument("--seeds", default="20,50,82")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="extra config overrides for every cell, e.g. data.root=PATH")
    parser.add_argument("--probe", type=int, default=0,
                        help="timing probe: train each model this many epochs and stop")
    parser.add_argument("--timing", type=int, default=0,
                        help="interleaved cost of the models (this many repeats) and stop")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = cell_config("fpn_small", 0, args.sets)
    proto = load_protocol(cfg.data, progress=False)
    cells = [tuple(c.split(":")) for c in args.cells.split(",") if c.strip()]
    if args.timing:
        models = list(dict.fromkeys(m for m, _ in cells))
        found = timing(proto, args.sets, models, args.timing)
        atomic_write_text(json.dumps(found, indent=2) + "\n", args.out / "timing.json")
        return
    if args.probe:
        models = list(dict.fromkeys(m for m, _ in cells))
        found = probe(args.probe, proto, args.runs, args.sets, models)
        atomic_write_text(json.dumps(found, indent=2) + "\n", args.out / "probe.json")
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = earlier_rows(args.out / "results.csv", cells, seeds)  # other invocations' cells
    for model, train_set in cells:
        for seed in seeds:
            run_dir = (args.runs / f"{model}-{train_set}-s{seed}").absolute()
            print(f"{time.strftime('%H:%M:%S')} {model} {train_set} seed {seed} -> {run_dir}",
                  flush=True)
            row = run_cell(model, train_set, seed, run_dir, proto, args.sets)
            print(f"  test {100 * row['test_miou']:.2f} (last {100 * row['test_miou_last']:.2f}),"
                  f" D_R {100 * row['val_miou']:.2f}, {row['epochs']} epochs, "
                  f"{row['wall_s'] / 60:.1f} min", flush=True)
            rows.append(row)
            write_tables(rows, args.out)


if __name__ == "__main__":
    main()
