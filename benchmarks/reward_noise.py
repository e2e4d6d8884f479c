"""How much of the RALIS reward is signal? One labelling step of the agent's game, repeated.

The agent's reward for a step is 100 x (D_R mIoU after - before) when the segmentation net is
trained one pass on the K regions just labelled. Two things move it: *which* regions were
labelled (the signal the agent should learn from) and the SGD randomness of that one pass (crop
positions, flips, order: noise). This script plays the first step of an episode from the agent's
start model many times: ``--region-sets`` different random sets of K regions of D_T, each trained
``--train-seeds`` times with different SGD randomness, for each number of passes in ``--passes``.

It reports, per number of passes: the noise (mean over region sets of the std over training
seeds), the signal (std over region sets of the mean reward) and their ratio. A ratio below 1
means two equally good region sets get rewards further apart than a good and a bad one.

    .venv/bin/python benchmarks/reward_noise.py --preset camvid-cpu \\
        --start-model runs/grid-camvid-cpu/agent-s20/start_model.safetensors
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from ralis.config import apply_overrides, get_preset
from ralis.data.protocol import load_protocol
from ralis.files.atomic import atomic_write_text
from ralis.loop.simulate import miou_on
from ralis.models import load_model
from ralis.provenance import git_revision
from ralis.run.session import set_threads
from ralis.training.oracle import Oracle
from ralis.training.train import LabelledData, make_optimizer, train_pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="camvid-cpu")
    ap.add_argument("--set", action="append", default=[], help="config override sec.field=value")
    ap.add_argument("--start-model", type=Path, required=True,
                    help="the agent's start model (agent-s<seed>/start_model.safetensors)")
    ap.add_argument("--region-sets", type=int, default=6)
    ap.add_argument("--train-seeds", type=int, default=4)
    ap.add_argument("--passes", default="1,4", help="SGD passes over the K regions, e.g. 1,4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/reward_noise.json"))
    args = ap.parse_args(argv)
    cfg = apply_overrides(get_preset(args.preset), args.set)
    set_threads(cfg)
    proto = load_protocol(cfg.data, progress=False)
    model, _ = load_model(args.start_model)
    start_state = copy.deepcopy(model.state_dict())
    images = proto.dqn_train
    K = cfg.al.regions_per_step
    n_regions = len(images) * proto.grid.per_image

    def d_r(m: torch.nn.Module) -> float:
        return miou_on(m, proto.reward, proto, cfg)[0]

    before = d_r(model)
    t0 = time.perf_counter()
    rows = []
    for passes in [int(p) for p in args.passes.split(",")]:
        for s in range(args.region_sets):
            g = torch.Generator().manual_seed(args.seed * 1000 + s)
            ids = torch.randperm(n_regions, generator=g)[:K]
            oracle = Oracle(images.masks, proto.grid, proto.ignore_index, K)
            oracle.label(ids)
            data = LabelledData(images.images_u8, oracle.partial_masks, proto.grid,
                                proto.ignore_index)
            for t in range(args.train_seeds):
                model.load_state_dict(start_state)
                opt = make_optimizer(model, cfg.train.lr, cfg.train)
                torch.manual_seed(args.seed * 1000 + 100 + t)
                gt = torch.Generator().manual_seed(args.seed * 1000 + 100 + t)
                for _ in range(passes):
                    train_pass(model, opt, data, ids, cfg.train, gt, cfg.device)
                reward = 100.0 * (d_r(model) - before)
                rows.append({"passes": passes, "region_set": s, "train_seed": t,
                             "reward": reward})
                print(f"passes {passes} set {s} seed {t}: reward {reward:+.3f}", flush=True)
    summary = {}
    for passes in sorted({r["passes"] for r in rows}):
        by_set: dict[int, list[float]] = {}
        for r in rows:
            if r["passes"] == passes:
                by_set.setdefault(r["region_set"], []).append(r["reward"])
        noise = statistics.mean(statistics.stdev(v) for v in by_set.values())
        signal = statistics.stdev(statistics.mean(v) for v in by_set.values())
        summary[str(passes)] = {"noise_std": noise, "signal_std": signal,
                                "signal_to_noise": signal / noise if noise > 0 else None,
                                "mean_reward": statistics.mean(
                                    x for v in by_set.values() for x in v)}
        print(f"passes {passes}: noise {noise:.3f}, signal {signal:.3f}, "
              f"ratio {summary[str(passes)]['signal_to_noise']:.2f}")
    result = {
        "command": shlex.join([sys.executable, *sys.argv]), "git_revision": git_revision(),
        "preset": args.preset, "overrides": args.set, "seed": args.seed,
        "start_model": str(args.start_model), "start_d_r_miou": before, "K": K,
        "lr": cfg.train.lr, "summary": summary, "rows": rows,
        "wall": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=2) + "\n", args.out)


if __name__ == "__main__":
    main()
