"""Does the head game's first-order lookahead rank candidates as an exact one-step lookahead does?

For an agent run folder (its start model and head game), at step 1 and at step ``--at`` after a
random prefix of ``--states`` episodes, takes ``--pools`` candidate pools and refits the head
once per candidate with that region alone added (what the game would pay if it were labelled
next): the exact drop of D_R's class-balanced cross-entropy and the exact D_R mIoU gain. The
lookahead oracle's scores (:mod:`ralis.game.influence`: one conjugate-gradient solve, no refit)
are compared with them: Spearman per pool, how often its pick is the exact best, and the exact
gain of the picks of lookahead, the error oracle, entropy and the pool's mean. Last line::

    lookahead_check: rho(CE) A, rho(mIoU) B; top-1 C of P pools; gain of pick (mIoU x100): ...

    .venv/bin/python benchmarks/lookahead_check.py runs/agents/v7-dqn-s20
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from ralis.agents.start import saved_game
from ralis.files.atomic import atomic_write_text
from ralis.game.heldout import random_prefix_states
from ralis.game.policies import FIXED_POLICIES
from ralis.provenance import git_revision
from ralis.run.session import step_seed

PICKS = ("lookahead", "oracle", "entropy")


def exact_gains(game, pools_row: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per candidate of one pool: (drop of D_R balanced CE, gain of D_R mIoU x100) when that
    region alone is labelled and the head refit."""
    base_miou, base_ce = game.scores("reward")
    ce_drop, miou_gain = [], []
    for r in pools_row:
        miou, ce = game.scores("reward", game.fit(r.view(1)))
        ce_drop.append(base_ce - ce)
        miou_gain.append(100.0 * (miou - base_miou))
    return ce_drop, miou_gain


def check_state(game, obs, pools: int, g: torch.Generator) -> list[dict]:
    rows = []
    t0 = time.perf_counter()
    scores = obs.lookahead
    la_wall = time.perf_counter() - t0
    picks = {p: FIXED_POLICIES.get(p)(obs, g) for p in PICKS}
    for k in range(min(pools, obs.pools.shape[0])):
        t0 = time.perf_counter()
        ce_drop, gain = exact_gains(game, obs.pools[k])
        rows.append({
            "step": obs.step, "pool": k,
            "rho_ce": float(spearmanr(scores[k], ce_drop).statistic),
            "rho_miou": float(spearmanr(scores[k], gain).statistic),
            "top1": int(scores[k].argmax()) == max(range(len(ce_drop)), key=ce_drop.__getitem__),
            "gain": {p: gain[int(picks[p][k])] for p in PICKS} | {
                "pool mean": statistics.fmean(gain), "best": max(gain)},
            "lookahead_wall": la_wall, "exact_wall": time.perf_counter() - t0})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="an agent run folder of the head game")
    ap.add_argument("--states", type=int, default=3, help="episodes probed")
    ap.add_argument("--pools", type=int, default=4, help="pools refit per state")
    ap.add_argument("--at", type=int, default=10, help="the later step (random prefix)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path,
                    default=Path("docs/results/agent-v6/round3/lookahead_check.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, _, _, game = saved_game(args.run)
    rows = []
    for state, obs in random_prefix_states(game, 700000, args.states, (1, args.at),
                                           "lookahead-check"):
        g = torch.Generator().manual_seed(step_seed(state, obs.step, "lookahead-check"))
        rows += check_state(game, obs, args.pools, g)
        r = rows[-1]
        print(f"state {state} step {obs.step}: rho(CE) {r['rho_ce']:+.2f} "
              f"rho(mIoU) {r['rho_miou']:+.2f} ({r['exact_wall']:.0f} s a pool)", flush=True)

    def mean(key, sel=lambda r: True):
        v = [r[key] for r in rows if sel(r)]
        return statistics.fmean(v) if v else float("nan")

    gains = {p: statistics.fmean(r["gain"][p] for r in rows) for p in (*PICKS, "pool mean",
                                                                         "best")}
    line = (f"lookahead_check: rho(CE) {mean('rho_ce'):+.2f}, rho(mIoU) {mean('rho_miou'):+.2f}; "
            f"top-1 {sum(r['top1'] for r in rows)} of {len(rows)} pools; gain of pick "
            f"(D_R mIoU x100, one region): " + ", ".join(f"{p} {v:+.3f}" for p, v in gains.items()))
    per_step = {at: {"rho_ce": mean("rho_ce", lambda r, a=at: r["step"] == a),
                     "rho_miou": mean("rho_miou", lambda r, a=at: r["step"] == a)}
                for at in (1, args.at)}
    result = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
              "git_revision": git_revision(), "run": str(args.run), "seed": cfg.seed,
              "preset": cfg.preset, "per_step": per_step, "gains": gains, "rows": rows,
              "line": line}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=1) + "\n", args.out)
    print(f"per step: {per_step}")
    print(line)


if __name__ == "__main__":
    main()
