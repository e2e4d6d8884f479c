"""Time of one AL step per strategy, split into network forwards, scoring/selection, training of
the segmentation net and evaluation on D_R.

    python benchmarks/step_cost.py                       # camvid-cpu on ../shared/datasets/camvid
    python benchmarks/step_cost.py --preset synthetic-demo --steps 3

The last line reads ``overhead: random <p>%, entropy <p>%, bald/entropy <r>x``:
* entropy: scoring+selection time as a % of its forward time;
* random runs no network, so its selection time is given as a % of entropy's forward time
  (what a step that needed predictions would pay);
* bald/entropy: BALD's whole AL step over entropy's (the target: at most 1.5x); the line before
  it also gives the ratio of the acquisition part alone (forward + MC samples + scoring).
Results (with command, config, seed and git revision) go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from ralis.config import apply_overrides, get_preset, to_dict
from ralis.data.protocol import load_protocol
from ralis.loop.simulate import Simulation
from ralis.provenance import git_revision
from ralis.training.supervised import build_model

PHASES = ("forward", "score", "train", "eval")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="camvid-cpu")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per strategy (after 1 warm-up)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    cfg = apply_overrides(get_preset(args.preset), [f"seed={args.seed}", "al.eval_every=1", *args.sets])
    print(f"step_cost: preset {cfg.preset}, model {cfg.model.name}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, revision {git_revision()}")
    proto = load_protocol(cfg.data, progress=False)
    print(f"pool {len(proto.pool)} images x {proto.grid.per_image} regions, "
          f"D_R {len(proto.reward)} images at {proto.grid.image_size}, K={cfg.al.regions_per_step}")
    rows = {}
    for strategy in ("random", "entropy", "bald"):
        torch.manual_seed(0)
        model = build_model(cfg, proto.num_classes)
        with tempfile.TemporaryDirectory() as tmp:
            sim = Simulation(cfg, strategy, Path(tmp), proto, model, progress=False)
            sim.do_step(cfg.al.regions_per_step)  # warm-up
            start = time.perf_counter()
            steps = [sim.do_step(cfg.al.regions_per_step) for _ in range(args.steps)]
            wall = (time.perf_counter() - start) / args.steps
            sim.rundir.close()
        rows[strategy] = {p: sum(s[f"t_{p}"] for s in steps) / args.steps for p in PHASES}
        rows[strategy]["step"] = wall
        rows[strategy]["pool_size"] = cfg.pool_size(strategy)

    print(f"\n{'strategy':<9} {'N':>3} " + " ".join(f"{p:>9}" for p in (*PHASES, "step")) + "  (s)")
    for name, r in rows.items():
        print(f"{name:<9} {r['pool_size']:>3} " + " ".join(f"{r[p]:9.3f}" for p in (*PHASES, "step")))
    ent_fwd = rows["entropy"]["forward"]
    over_random = 100 * rows["random"]["score"] / ent_fwd
    over_entropy = 100 * rows["entropy"]["score"] / ent_fwd
    bald_acq = (rows["bald"]["forward"] + rows["bald"]["score"]) / (
        rows["entropy"]["forward"] + rows["entropy"]["score"])
    bald_ratio = rows["bald"]["step"] / rows["entropy"]["step"]
    record = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "preset": cfg.preset,
        "seed": cfg.seed, "git_revision": git_revision(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "machine": platform.machine(),
        "config": to_dict(cfg), "seconds_per_step": rows,
        "overhead": {"random_pct": over_random, "entropy_pct": over_entropy,
                     "bald_over_entropy_step": bald_ratio,
                     "bald_over_entropy_acquisition": bald_acq},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"step_cost-{cfg.preset}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwritten to {path}")
    print(f"acquisition only (forward + scoring): bald/entropy {bald_acq:.2f}x")
    print(f"overhead: random {over_random:.1f}%, entropy {over_entropy:.1f}%, "
          f"bald/entropy {bald_ratio:.2f}x")


if __name__ == "__main__":
    main()
