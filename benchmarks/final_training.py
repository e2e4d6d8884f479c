"""Does the final training turn more labels into more mIoU? Replay finished AL runs' labels.

Takes the regions that finished ``ralis simulate`` runs acquired (their ``run.sqlite``), and at
each budget trains θ0 again on that prefix of the acquisition sequence under several final-training
recipes, then tests. The acquisitions are fixed, so only the recipe changes between columns; this
isolates "is the final training budget-sensitive?" from "did the strategy pick good regions?".

Recipes (``--recipes``; each is a set of ``train.*`` overrides on the run's own config)::

    authors      final_from=start, lr 1e-3, one crop per labelled image per epoch, the preset's
                 epochs and patience (as the grid, but from θ0: the AL-phase model at each
                 budget is not kept)
    start-mid    from θ0, fresh SGD at lr 3e-3, 256 crops per epoch, 40 epochs, patience 15
    start-hi     as start-mid at lr 1e-2
    dt-mid       as start-mid, and D_T's full labels are trained on too
    dt-hi        as dt-mid at lr 1e-2
    dt-cosine    from θ0 on D_T and the acquired regions, lr 1e-2 annealed to 0 (cosine) over
                 20 epochs of 256 crops, no early stop, the best epoch on D_R
    start-cosine as dt-cosine on the acquired regions only
    as-run       the run's own final training, unchanged (must repeat the run's test mIoU)
    epochs-x2    as-run with twice the epochs (and the cosine schedule stretched to them): a
                 converged final training moves test mIoU by less than the seed std

Usage::

    .venv/bin/python benchmarks/final_training.py runs/grid-camvid-cpu/random-s20 \\
        runs/grid-camvid-cpu/entropy-s20 --pretrained runs/grid-camvid-cpu/theta0/model.safetensors \\
        --budgets 480,1920 --out benchmarks/results/final_training.json

Writes one JSON with the command, git revision, each recipe's overrides, and a row per
(run, recipe, budget): test mIoU, best D_R mIoU, epochs, wall seconds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from ralis.config import apply_overrides, load_config
from ralis.data.protocol import load_protocol
from ralis.files.atomic import atomic_write_text
from ralis.loop.simulate import Simulation
from ralis.provenance import git_revision
from ralis.run.session import set_threads
from ralis.run.store import RunStore
from ralis.training.supervised import load_start_model

_FRESH = ["train.final_from=start", "train.final_epochs=40", "train.final_patience=15",
          "train.final_samples_per_epoch=256"]
RECIPES: dict[str, list[str]] = {
    "authors": ["train.final_from=start", "train.final_lr=0.001"],
    "start-mid": _FRESH + ["train.final_lr=0.003"],
    "start-hi": _FRESH + ["train.final_lr=0.01"],
    "dt-mid": _FRESH + ["train.final_lr=0.003", "train.final_with_start_set=true"],
    "dt-hi": _FRESH + ["train.final_lr=0.01", "train.final_with_start_set=true"],
    "dt-cosine": ["train.final_from=start", "train.final_epochs=20", "train.final_patience=20",
                  "train.final_samples_per_epoch=256", "train.final_lr=0.01",
                  "train.final_with_start_set=true", "train.final_schedule=cosine"],
    "start-cosine": ["train.final_from=start", "train.final_epochs=20",
                     "train.final_patience=20", "train.final_samples_per_epoch=256",
                     "train.final_lr=0.01", "train.final_schedule=cosine"],
    "as-run": [],
    "epochs-x2": ["train.final_epochs=40", "train.final_patience=40"],
}


def replay(run_dir: Path, pretrained: Path, recipe: list[str], budgets: list[int],
           extra: list[str], threads: int | None) -> list[dict]:
    cfg = load_config(run_dir / "config.json")
    cfg = apply_overrides(cfg, recipe + extra)
    if threads:
        cfg = apply_overrides(cfg, [f"threads={threads}"])
    set_threads(cfg)
    proto = load_protocol(cfg.data, progress=False)
    store = RunStore(run_dir)
    acquired = store.acquisitions()
    store.close()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulation(cfg, "replay", Path(tmp), proto, load_start_model(pretrained, cfg, proto),
                         progress=False, strategy_impl=object())  # never selects
        labelled = 0
        for budget in budgets:
            ids = [rid for _, rid in acquired[labelled:budget]]
            if len(ids) < budget - labelled:
                raise SystemExit(f"{run_dir} acquired only {len(acquired)} regions, not {budget}")
            sim._label(torch.tensor(ids), budget)
            labelled = budget
            row = sim.final_train(budget)
            rows.append({"run": str(run_dir), "regions": budget, "miou": row["miou"],
                         "val_miou": row["val_miou"], "epochs": row["epochs"],
                         "wall": row["wall"]})
            print(f"{run_dir.name} {budget}: test {row['miou']:.4f} val {row['val_miou']:.4f} "
                  f"epochs {row['epochs']} ({row['wall']:.0f} s)", flush=True)
        sim.rundir.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished `ralis simulate` run directories")
    ap.add_argument("--pretrained", type=Path, required=True, help="θ0 the runs started from")
    ap.add_argument("--budgets", default="480,1920", help="comma-separated region budgets")
    ap.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipe names")
    ap.add_argument("--set", action="append", default=[], help="extra overrides, sec.field=value")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/final_training.json"))
    args = ap.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    names = args.recipes.split(",")
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipe {unknown[0]!r}; valid: {', '.join(RECIPES)}")
    start = time.perf_counter()
    rows = []
    for name in names:
        for run in args.runs:
            for row in replay(run, args.pretrained, RECIPES[name], budgets, args.set, args.threads):
                rows.append({"recipe": name, **row})
    result = {
        "command": shlex.join([sys.executable, *sys.argv]), "git_revision": git_revision(),
        "recipes": {n: RECIPES[n] + args.set for n in names}, "budgets": budgets,
        "wall": time.perf_counter() - start, "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=2) + "\n", args.out)


if __name__ == "__main__":
    main()
