"""Gate 2: does a trained agent beat random and entropy on episodes it never saw?

For each agent run directory (``ralis train-agent --out DIR``) the agent's own game is rebuilt
(its start model, its config) and its handed-out policy plays greedily on ``--seeds`` gate
episodes (:data:`ralis.game.heldout.GATE_EPISODES`: never a training or selection episode), as
do random and entropy on the same episodes (the same candidate pools). Every episode is scored
at its end on D_R (the reward split), the selection split and test. Controls play in the same
game: ``--control random-qnet`` (the paper's query network with random weights) and any other
agent directory given with ``--control-dir`` (e.g. the authors' schedule in the net game).

The agent's held-out learning curve comes from its own run store (the selection episodes it
was judged on during training): the paired advantage over random at each judgement, and
whether the last judgement's advantage exceeds the first's by more than 2 standard errors.

Writes ``--out`` (JSON: every episode's scores, the paired intervals, the curve) and, for the
first agent, ``--summary`` ending with the two gate lines (each finished player's rows are kept
in ``--cells``: rerunning after an interruption skips them)::

    heldout: agent-random +X [lo, hi]; agent-entropy +Y [lo, hi]; N paired episodes; game G
    heldout-test: agent-random +X [lo, hi]; agent-entropy +Y [lo, hi]; N paired episodes; split S

    .venv/bin/python benchmarks/agent_heldout.py runs/agent-v6-search-s20 --seeds 16
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

from ralis.agents.start import saved_game
from ralis.config import to_dict
from ralis.files.atomic import atomic_write_text
from ralis.files.safe import file_digest
from ralis.game.heldout import evaluate, fixed_pick, gate_episodes, greedy_pick
from ralis.game.scoring import policy_scores
from ralis.provenance import git_revision
from ralis.report.heldout import heldout_section
from ralis.report.stats import bootstrap_interval
from ralis.rl.policy import build_qnet, load_policy
from ralis.run.names import POLICY, START_MODEL
from ralis.run.store import RunStore

ROLES = ("reward", "selection", "test")
BASELINES = {"random": partial(fixed_pick, "random"), "entropy": partial(fixed_pick, "entropy")}


GAME_FIELDS = ("game", "episode_budget", "pool_size", "start_from", "start_images",
               "head_l2", "head_sample", "head_iterations", "head_start_iterations", "head_stride")
"""The agent settings a game depends on (the learner's own settings do not change it)."""


def game_key(cfg, run_dir: Path) -> str:
    """Agents whose games are the same (start model, data, regions, game settings) share the
    random and entropy episodes."""
    d = to_dict(cfg)
    agent = {k: d["agent"][k] for k in GAME_FIELDS}
    same = {k: d[k] for k in ("seed", "data", "model", "train", "al")}
    return json.dumps([file_digest(run_dir / START_MODEL), agent, same], sort_keys=True)


def cached(folder: Path, key, compute, *args) -> list[dict]:
    """``compute(*args)``'s rows, stored in ``folder`` under a digest of ``key`` (a rerun after an
    interruption skips every finished player)."""
    path = folder / (hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
                     + ".json")
    if path.exists():
        return json.loads(path.read_text())["rows"]
    rows = compute(*args)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps({"key": key, "rows": rows}) + "\n", path)
    return rows


def pick_of(net, spec):
    net.eval()
    return lambda episode: greedy_pick(lambda o: policy_scores(net, o, spec))


def paired(rows, a: str, b: str, role: str) -> dict:
    va = {r["seed"]: r["miou"] for r in rows if r["policy"] == a and r["role"] == role}
    vb = {r["seed"]: r["miou"] for r in rows if r["policy"] == b and r["role"] == role}
    d = [100.0 * (va[s] - vb[s]) for s in sorted(va) if s in vb]
    return {"mean": statistics.fmean(d), "interval": bootstrap_interval(d), "n": len(d),
            "wins": sum(x > 0 for x in d), "values": d}


def learning_curve(run_dir: Path) -> dict:
    """Paired advantage over random on the selection split at each judgement (from the run
    store), and the last-minus-first test against 2 standard errors."""
    rows = RunStore(run_dir).heldout()
    sel = [r for r in rows if r["role"] == "selection"]
    base = {r["seed"]: r["miou"] for r in sel if r["episode"] == 0 and r["policy"] == "random"}
    curve = {}
    for ep in sorted({r["episode"] for r in sel if r["policy"] == "agent"}):
        d = {r["seed"]: 100.0 * (r["miou"] - base[r["seed"]]) for r in sel
             if r["episode"] == ep and r["policy"] == "agent" and r["seed"] in base}
        curve[ep] = d
    points = [{"episode": ep, "minus_random": statistics.fmean(d.values()),
               "se": (statistics.stdev(d.values()) / len(d) ** 0.5) if len(d) > 1 else None}
              for ep, d in curve.items()]
    rising = None
    if len(curve) >= 2:
        first, last = list(curve.values())[0], list(curve.values())[-1]
        diff = [last[s] - first[s] for s in last if s in first]
        se = statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else float("inf")
        rising = {"last_minus_first": statistics.fmean(diff), "se": se,
                  "rises": statistics.fmean(diff) > 2 * se}
    return {"points": points, "rising": rising}


def design_lines(agents: dict, names: list[str]) -> list[str]:
    """One line per design (``agent.mode``) trained with several agent seeds: the paired
    differences of all its agents pooled (a plain bootstrap over every agent's episodes; the
    per-seed means beside it show whether the seeds agree)."""
    by_mode: dict[str, list[dict]] = {}
    for name in names:
        by_mode.setdefault(agents[name]["policy_record"]["mode"], []).append(agents[name])
    lines = []
    for mode, group in by_mode.items():
        if len(group) < 2:
            continue
        parts = []
        for role in ROLES:
            for b in ("random", "entropy"):
                per_seed = [e["paired"][f"{role}:agent-{b}"] for e in group]
                pooled = [v for x in per_seed for v in x["values"]]
                lo, hi = bootstrap_interval(pooled)
                seeds = ", ".join(f"{x['mean']:+.2f}" for x in per_seed)
                label = {"reward": "D_R", "selection": group[0]["splits"]["selection"]}.get(
                    role, role)
                parts.append(f"{label} agent-{b} {statistics.fmean(pooled):+.2f} [{lo:+.2f}, "
                             f"{hi:+.2f}] (seeds {seeds})")
        lines.append(f"# design {mode}, {len(group)} agent seeds pooled: " + "; ".join(parts))
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("agents", nargs="+", type=Path, help="agent run directories")
    ap.add_argument("--seeds", type=int, default=16, help="held-out gate episodes (>= 16)")
    ap.add_argument("--control", action="append", default=[], choices=["random-qnet"])
    ap.add_argument("--control-agents", type=int, default=None,
                    help="play --control in the games of the first N agents only (default all)")
    ap.add_argument("--control-dir", action="append", default=[], type=Path,
                    help="another agent directory played as a control in its own game")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cells", type=Path, default=Path("runs/agent-heldout"),
                    help="finished players' rows, so that a rerun skips them")
    ap.add_argument("--out", type=Path, default=Path("docs/results/agent-v6/heldout.json"))
    ap.add_argument("--summary", type=Path, default=Path("docs/results/agent-v6/heldout.txt"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    episodes = gate_episodes(args.seeds)
    results = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
               "git_revision": git_revision(), "episodes": episodes, "agents": {}}
    controlled = args.agents[:args.control_agents]
    for run_dir in [*args.agents, *args.control_dir]:
        t0 = time.perf_counter()
        cfg, proto, spec, game = saved_game(run_dir)
        net, _, record = load_policy(run_dir / POLICY)
        picks = {"agent": pick_of(net, spec)}
        if run_dir in controlled and "random-qnet" in args.control:
            torch.manual_seed(12345)
            picks["random-qnet"] = pick_of(build_qnet(spec), spec)
        key = game_key(cfg, run_dir)
        # agents of one game share its baselines: the second one reads them from --cells
        baselines = cached(args.cells, [key, episodes, "baselines"], evaluate, game,
                           BASELINES, episodes, ROLES)
        policy_key = [key, episodes, file_digest(run_dir / POLICY), sorted(picks)]
        rows = cached(args.cells, policy_key, evaluate, game, picks, episodes, ROLES) + baselines
        picks.update(random=None, entropy=None)
        entry = {"config": to_dict(cfg), "policy_record": {k: record.get(k) for k in (
            "mode", "game", "episodes", "selection", "selected_episode", "selection_miou")},
            "rows": rows, "wall": time.perf_counter() - t0,
            "players": [k for k in picks if k not in ("random", "entropy")],
            "splits": {"reward": cfg.data.reward_split,
                       "selection": cfg.data.selection_split or cfg.data.reward_split,
                       "test": cfg.data.test_split},
            "paired": {f"{role}:{a}-{b}": paired(rows, a, b, role)
                       for role in ROLES for a in picks for b in ("random", "entropy")
                       if a != b and not (a == "random" and b == "entropy")},
            "learning_curve": learning_curve(run_dir)}
        results["agents"][str(run_dir)] = entry
        print(f"{run_dir}: {time.perf_counter() - t0:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    lines = []
    for run_dir, entry in results["agents"].items():
        p, sp = entry["paired"], entry["splits"]
        for who in entry["players"]:
            def fmt(role, b, who=who, p=p):
                x = p[f"{role}:{who}-{b}"]
                return f"{x['mean']:+.2f} [{x['interval'][0]:+.2f}, {x['interval'][1]:+.2f}]"
            lines.append(f"# {run_dir} {who} ({entry['policy_record']['mode']}): D_R "
                         f"{who}-random {fmt('reward', 'random')}, {who}-entropy "
                         f"{fmt('reward', 'entropy')}; {sp['selection']} {who}-random "
                         f"{fmt('selection', 'random')}, {who}-entropy "
                         f"{fmt('selection', 'entropy')}; test {who}-random "
                         f"{fmt('test', 'random')}, {who}-entropy {fmt('test', 'entropy')}")
        lc = entry["learning_curve"]["rising"]
        if lc:
            lines.append(f"# {run_dir} learning curve (selection split, vs random): last - "
                         f"first {lc['last_minus_first']:+.2f}, SE {lc['se']:.2f}, rises by "
                         f"> 2 SE: {lc['rises']}")
    lines += design_lines(results["agents"], [str(d) for d in args.agents])
    first = results["agents"][str(args.agents[0])]
    p, n = first["paired"], len(episodes)

    def gate(role):
        a, b = p[f"{role}:agent-random"], p[f"{role}:agent-entropy"]
        return (f"agent-random {a['mean']:+.2f} [{a['interval'][0]:+.2f}, "
                f"{a['interval'][1]:+.2f}]; agent-entropy {b['mean']:+.2f} "
                f"[{b['interval'][0]:+.2f}, {b['interval'][1]:+.2f}]; {n} paired episodes")

    lines.append(f"heldout: {gate('reward')}; game {first['config']['agent']['game']}")
    lines.append(f"heldout-test: {gate('test')}; split {first['splits']['test']}")
    args.summary.write_text("\n".join(lines) + "\n")
    curve = heldout_section(list(args.agents), {d: d.name for d in args.agents}, args.out.parent)
    if curve:  # the learning-curve figure (heldout_curve.png) and its table
        (args.out.parent / "heldout_curve.md").write_text("\n".join(curve) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
