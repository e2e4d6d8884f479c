"""A cheap signal before whole episodes: how close do label-free picks come to the lookahead's?

For an agent run folder of the head game (its start model and game), at step 1 and at step
``--at`` after a random prefix of ``--states`` episodes, computes the ground-truth lookahead
score of every candidate of every pool (:mod:`ralis.game.influence`: each candidate's
predicted drop of D_R's class-balanced cross-entropy if labelled next) and asks where each
policy's pick lands in its pool: ``(L[pick] - mean L) / (max L - mean L)``, 1 for the
lookahead's own pick, 0 on average for random (mean and median over pools; the ratio is
bounded by 1 above only, so low-spread pools pull the mean). Also the Spearman correlation of
each label-free score with the ground-truth score, per pool. No refits, no episodes played to
the end: minutes, where gate 1 takes hours. A screen, not a verdict. Last line (means)::

    label_free_check: GAME step1 / stepN: entropy A / B, lookahead-expected C / D, ...

    .venv/bin/python benchmarks/label_free_check.py runs/agents/v7-search-s50
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
from pathlib import Path

import torch
from scipy.stats import spearmanr

from ralis.agents.start import saved_game
from ralis.files.atomic import atomic_write_text
from ralis.game.heldout import random_prefix_states
from ralis.game.influence import UNLABELLED
from ralis.game.policies import FIXED_POLICIES
from ralis.provenance import git_revision
from ralis.run.session import step_seed

POLICIES = ("random", "entropy", "oracle", *(f"lookahead-{k}" for k in UNLABELLED))


def pick_quality(truth: torch.Tensor, picks: torch.Tensor) -> list[float]:
    """``[K, N]`` ground-truth lookahead scores, ``[K]`` picks: per pool, where the pick lands
    between the pool's mean (0) and its best (1)."""
    mean, best = truth.mean(1), truth.max(1).values
    chosen = truth.gather(1, picks[:, None]).squeeze(1)
    return ((chosen - mean) / (best - mean).clamp_min(1e-12)).tolist()


def probe(obs, g: torch.Generator) -> dict:
    truth = obs.lookahead
    quality = {p: pick_quality(truth, FIXED_POLICIES.get(p)(obs, g)) for p in POLICIES}
    rho = {k: [float(spearmanr(obs.lookahead_of(k)[i], truth[i]).statistic)
               for i in range(truth.shape[0])] for k in UNLABELLED}
    rho = {k: [None if math.isnan(r) else r for r in v] for k, v in rho.items()}  # tied pools
    return {"step": obs.step, "quality": quality, "rho": rho}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="an agent run folder of the head game")
    ap.add_argument("--states", type=int, default=4, help="episodes probed")
    ap.add_argument("--at", type=int, default=10, help="the later step (random prefix)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default=None, help="the game's name in the last line")
    ap.add_argument("--out", type=Path, required=True, help="JSON with every pool")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, _, _, game = saved_game(args.run)
    rows = []
    for state, obs in random_prefix_states(game, 710000, args.states, (1, args.at),
                                           "label-free-play"):
        g = torch.Generator().manual_seed(step_seed(state, obs.step, "label-free-probe"))
        rows.append(probe(obs, g))
        print(f"state {state} step {obs.step}: " + ", ".join(
            f"{p} {statistics.fmean(q):+.2f}" for p, q in rows[-1]["quality"].items()),
            flush=True)
    steps = (1, args.at)
    if not any(r["step"] == args.at for r in rows):
        sys.exit(f"label_free_check: error: the episodes end before step {args.at}; "
                 "give a smaller --at")

    def values(key: str, name: str, step: int) -> list[float]:
        # a pool of equal scores has no rank correlation (None): left out
        return [v for r in rows if r["step"] == step for v in r[key][name] if v is not None]

    def mean(key: str, name: str, step: int) -> float:
        return statistics.fmean(values(key, name, step))

    summary = {"quality": {p: [mean("quality", p, s) for s in steps] for p in POLICIES},
               "quality_median": {p: [statistics.median(values("quality", p, s))
                                      for s in steps] for p in POLICIES},
               "rho": {k: [mean("rho", k, s) for s in steps] for k in UNLABELLED}}
    name = args.name or f"{cfg.preset} {cfg.model.name}"
    line = (f"label_free_check: {name} step1 / step{args.at}: " + ", ".join(
        f"{p} {a:+.2f} / {b:+.2f}" for p, (a, b) in summary["quality"].items()))
    result = {"command": shlex.join([sys.executable, *sys.argv]), "git_revision": git_revision(),
              "run": str(args.run), "seed": cfg.seed, "preset": cfg.preset,
              "model": cfg.model.name, "steps": steps, "summary": summary, "rows": rows,
              "line": line}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=1) + "\n", args.out)
    print("median pick position: " + ", ".join(
        f"{p} {a:+.2f} / {b:+.2f}" for p, (a, b) in summary["quality_median"].items()))
    print("rho with the ground-truth lookahead: " + ", ".join(
        f"{k} {a:+.2f} / {b:+.2f}" for k, (a, b) in summary["rho"].items()))
    print(line)


if __name__ == "__main__":
    main()
