"""Gate 1: can a labelling game be learned at all? Fixed policies, whole episodes, paired seeds.

Plays whole episodes of the game ``GAME`` (``net`` or ``head``, :mod:`ralis.game`) with three
fixed policies on the same paired seeds (an episode seed fixes the candidate pools' generator
and the training generator, whatever the policy): ``random``, ``entropy`` and ``oracle`` (in
each pool, the candidate whose labelled pixels the current model gets most wrong: it knows the
game pool's ground truth, so it bounds what a policy can gain). ``random`` is played a second
time with another training seed: the training noise. ``--also POLICY`` plays more fixed
policies on the same seeds (e.g. ``lookahead``, the head game's first-order one-step lookahead
oracle), each reported against random and entropy. Every episode is scored at its end on D_R
(the reward split) and on the two splits the reward never sees: the selection split and test.

Then, at two states of ``--snr-seeds`` episodes -- step 1, and step 10 after 9 random steps --
``--sets`` random action sets are each played ``--train-seeds`` times: the step's signal is the
SD over sets of their mean reward, its noise the RMS over sets of the SD over training seeds,
SNR = signal / noise (``inf`` for a game without training noise). The same probes give how
well the one-step D_R reward ranks the one-step reward on the held-out splits (Spearman, mean
over states).

Episodes are cells of ``OUT/cells.jsonl`` (rerun the same command to resume). The last line::

    game_signal: GAME oracle-random +X [lo, hi]; entropy-random +Y [lo, hi]; snr step1 A, step10 B

is also written, with the held-out lines, into ``--summary`` (one block per GAME and preset),
and the summary with every cell beside it (``game_signal-GAME-PRESET.json``).

    .venv/bin/python benchmarks/game_signal.py head --preset camvid-cpu-v6 --seeds 12
    .venv/bin/python benchmarks/game_signal.py net --preset camvid-cpu-v5 --seeds 12
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from ralis.agents.start import game_split, start_model
from ralis.config import AgentConfig, apply_overrides, get_preset, to_dict
from ralis.data.protocol import load_protocol
from ralis.game import GAMES
from ralis.game.policies import FIXED_POLICIES
from ralis.metrics import distribution_entropy
from ralis.provenance import git_revision
from ralis.report.stats import bootstrap_interval
from ralis.rl.observe import FeatureSpec
from ralis.run.rundir import has_run, open_run
from ralis.run.session import set_threads, step_seed

ROLES = ("reward", "selection", "test")
START_FREE = [f for f in AgentConfig.__dataclass_fields__ if not f.startswith("start_")]
POLICIES = ("random", "entropy", "oracle")


def episode_seed(seed: int) -> int:
    """The episode number of paired seed ``seed`` (pools depend on it, never on the policy)."""
    return 1000 + seed


def play_episode(game, policy: str, seed: int, train_seed: int, prefix: int | None = None):
    """Play ``policy`` from a fresh episode (or only its first ``prefix`` steps); returns the
    per-step rewards."""
    game.reset(episode_seed(seed))
    pick = FIXED_POLICIES.get(policy)
    rewards = []
    while (obs := game.observe()) is not None:
        if prefix is not None and obs.step > prefix:
            break
        g_pol = torch.Generator().manual_seed(step_seed(seed, obs.step, f"policy-{policy}"))
        actions = pick(obs, g_pol)
        chosen = obs.pools.gather(1, actions.unsqueeze(1)).squeeze(1)
        g_train = torch.Generator().manual_seed(step_seed(seed * 1000 + train_seed, obs.step,
                                                          "train"))
        rewards.append(game.play(chosen, g_train))
    return rewards


def load_cells(path: Path) -> dict:
    cells = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                c = json.loads(line)
                cells[c["key"]] = c
    return cells


def append_cell(path: Path, cell: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(cell) + "\n")
        f.flush()
        os.fsync(f.fileno())


def episode_cells(game, seeds: list[int], out: Path, cells: dict, log,
                  also: tuple[str, ...] = ()) -> None:
    runs = [(s, p, 0) for s in seeds for p in POLICIES] + [(s, "random", 1) for s in seeds]
    runs += [(s, p, 0) for p in also for s in seeds]
    for seed, policy, train_seed in runs:
        key = f"episode:{policy}:{seed}:{train_seed}"
        if key in cells:
            continue
        t0 = time.perf_counter()
        rewards = play_episode(game, policy, seed, train_seed)
        cell = {"key": key, "kind": "episode", "policy": policy, "seed": seed,
                "train_seed": train_seed, "rewards": rewards,
                "final": {r: game.score(r) for r in ROLES},
                "labelled": game.labelled_count(),
                "class_entropy": distribution_entropy(game.labelled_distribution()),
                "wall": time.perf_counter() - t0}
        append_cell(out, cell)
        cells[key] = cell
        log(f"{key}: D_R {cell['final']['reward']:.4f} test {cell['final']['test']:.4f} "
            f"({cell['wall']:.0f} s)")


def probe_cells(game, seeds: list[int], sets: int, train_seeds: int, out: Path, cells: dict,
                log) -> None:
    """One-step rewards of random action sets at step 1 and at step 10 (random prefix)."""
    for seed in seeds:
        for at in (1, 10):
            key = f"probe:{seed}:{at}"
            if key in cells:
                continue
            t0 = time.perf_counter()
            play_episode(game, "random", seed, 0, prefix=at - 1)
            base = {r: game.score(r) for r in ROLES}
            obs = game.observe()
            if obs is None:  # the episode is shorter than this state
                continue
            snap = game.snapshot()
            table = []  # [set][train seed] -> {role: reward}
            for k in range(sets):
                g = torch.Generator().manual_seed(step_seed(seed, at * 100 + k, "probe-set"))
                actions = FIXED_POLICIES.get("random")(obs, g)
                chosen = obs.pools.gather(1, actions.unsqueeze(1)).squeeze(1)
                row = []
                for ts in range(train_seeds):
                    game.restore(snap)
                    g_train = torch.Generator().manual_seed(
                        step_seed(seed * 1000 + ts, at * 100 + k, "probe-train"))
                    game.play(chosen, g_train)
                    row.append({r: 100.0 * (game.score(r) - base[r]) for r in ROLES})
                table.append(row)
            game.restore(snap)
            cell = {"key": key, "kind": "probe", "seed": seed, "step": at, "rewards": table,
                    "wall": time.perf_counter() - t0}
            append_cell(out, cell)
            cells[key] = cell
            log(f"{key} ({cell['wall']:.0f} s)")


def _fmt(iv) -> str:
    return f"[{iv[0]:+.2f}, {iv[1]:+.2f}]"


def summarize(cells: dict, seeds: list[int]) -> dict:
    def final(policy, seed, role, ts=0):
        return cells[f"episode:{policy}:{seed}:{ts}"]["final"][role] * 100.0

    out = {"seeds": seeds, "diff": {}, "mean": {}}
    also = extra_policies(cells, seeds)
    out["also"] = also
    diffs = {"oracle-random": ("oracle", "random", 0), "entropy-random": ("entropy", "random", 0),
             "noise": ("random", "random", 1)}
    for p in also:
        diffs.update({f"{p}-random": (p, "random", 0), f"{p}-entropy": (p, "entropy", 0)})
    for role in ROLES:
        for name, (a, b, ta) in diffs.items():
            d = [final(a, s, role, ta) - final(b, s, role) for s in seeds
                 if f"episode:{a}:{s}:{ta}" in cells]
            if len(d) < 2:  # the noise cells of a --summarize-only run may be missing
                out["diff"][f"{role}:{name}"] = None
                continue
            iv = bootstrap_interval(d)
            out["diff"][f"{role}:{name}"] = {
                "mean": statistics.fmean(d), "interval": iv, "wins": sum(x > 0 for x in d),
                "n": len(d), "sd": statistics.stdev(d)}
        for p in (*POLICIES, *also):
            out["mean"][f"{role}:{p}"] = statistics.fmean(final(p, s, role) for s in seeds)
    # how much one step's reward swings: SD of the per-step rewards over steps and seeds
    out["step_reward_sd"] = {p: statistics.stdev(
        r for s in seeds for r in cells[f"episode:{p}:{s}:0"]["rewards"])
        for p in (*POLICIES, *also)}
    probes = [c for c in cells.values() if c["kind"] == "probe"]
    pairs = [("reward", "selection"), ("reward", "test"), ("selection", "test")]
    for at in (1, 10):
        sig, noise, rho = [], [], {r: [] for r in ROLES}
        cross = {f"{a}~{b}": [] for a, b in pairs}
        for c in (c for c in probes if c["step"] == at):
            table = c["rewards"]
            means = [statistics.fmean(t["reward"] for t in row) for row in table]
            sig.append(statistics.stdev(means))
            if len(table[0]) > 1:
                noise.append(math.sqrt(statistics.fmean(
                    statistics.variance([t["reward"] for t in row]) for row in table)))
            for r in ROLES:
                held = [statistics.fmean(t[r] for t in row) for row in table]
                if np.std(held) > 0 and np.std(means) > 0:
                    rho[r].append(float(spearmanr(means, held).statistic))
            for a, b in pairs:
                va = [statistics.fmean(t[a] for t in row) for row in table]
                vb = [statistics.fmean(t[b] for t in row) for row in table]
                if np.std(va) > 0 and np.std(vb) > 0:
                    cross[f"{a}~{b}"].append(float(spearmanr(va, vb).statistic))
        s = statistics.fmean(sig) if sig else float("nan")
        n = statistics.fmean(noise) if noise else float("nan")
        out[f"step{at}"] = {"signal_sd": s, "noise_sd": n,
                            "snr": (math.inf if n == 0 else s / n) if noise else None,
                            "states": len(sig),
                            "rank_corr": {r: (statistics.fmean(v) if v else None)
                                          for r, v in rho.items()},
                            "pair_rank_corr": {k: (statistics.fmean(v) if v else None)
                                               for k, v in cross.items()}}
    return out


def extra_policies(cells: dict, seeds: list[int]) -> list[str]:
    """Policies beyond the three played on every one of ``seeds`` (``--also``), sorted."""
    names = {c["policy"] for c in cells.values() if c["kind"] == "episode"} - set(POLICIES)
    return sorted(p for p in names if all(f"episode:{p}:{s}:0" in cells for s in seeds))


def lines(game: str, label: str, summary: dict, roles: dict[str, str]) -> list[str]:
    d = summary["diff"]

    def snr(at):
        v = summary[f"step{at}"]["snr"]
        return "n/a" if v is None else ("inf" if math.isinf(v) else f"{v:.2f}")

    def pair(role):
        o, e = d[f"{role}:oracle-random"], d[f"{role}:entropy-random"]
        return (f"oracle-random {o['mean']:+.2f} {_fmt(o['interval'])}; "
                f"entropy-random {e['mean']:+.2f} {_fmt(e['interval'])}")

    n = d["reward:noise"]
    noise = ("not measured" if n is None else
             f"{n['mean']:+.2f} {_fmt(n['interval'])}, SD {n['sd']:.2f}")
    rc = summary["step1"]["rank_corr"]
    rc10 = summary["step10"]["rank_corr"]
    pc1, pc10 = summary["step1"]["pair_rank_corr"], summary["step10"]["pair_rank_corr"]
    return [
        f"# {label}: {len(summary['seeds'])} paired seeds; training noise (random, 2nd "
        f"training seed) {noise}",
        f"game_signal-heldout: {game} on {roles['selection']} (selection): {pair('selection')}; "
        f"one-step rank corr with D_R step1 {_num(rc['selection'])}, step10 "
        f"{_num(rc10['selection'])}",
        f"game_signal-heldout: {game} on {roles['test']} (test): {pair('test')}; one-step rank "
        f"corr with D_R step1 {_num(rc['test'])}, step10 {_num(rc10['test'])}",
        f"## reward split as a predictor of test (one-step rewards' Spearman, step1 / step10): "
        f"{roles['reward']} {_num(pc1['reward~test'])} / {_num(pc10['reward~test'])}; "
        f"{roles['selection']} {_num(pc1['selection~test'])} / {_num(pc10['selection~test'])}",
        "## per-step reward SD (D_R mIoU points): " + ", ".join(
            f"{p} {v:.2f}" for p, v in summary["step_reward_sd"].items()),
        *[f"## {p}: " + "; ".join(
            f"{role} {p}-random {_diff(d[f'{role}:{p}-random'])}, {p}-entropy "
            f"{_diff(d[f'{role}:{p}-entropy'])}" for role in ROLES)
          for p in summary.get("also", [])],
        f"game_signal: {game} {pair('reward')}; snr step1 {snr(1)}, step10 {snr(10)}",
    ]


def _diff(v) -> str:
    return "n/a" if v is None else f"{v['mean']:+.2f} {_fmt(v['interval'])}"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:+.2f}"


def write_summary(path: Path, label: str, block: list[str]) -> None:
    """Replace this label's block in the summary file (blocks start with ``# label:``; lines
    inside a block never start with ``# ``)."""
    old = path.read_text().splitlines() if path.exists() else []
    kept, skip = [], False
    for line in old:
        if line.startswith("# "):
            skip = line.startswith(f"# {label}:")
        if not skip:
            kept.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(kept + block) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("game", choices=GAMES.names())
    ap.add_argument("--preset", default="camvid-cpu-v6")
    ap.add_argument("--set", action="append", default=[], help="config override sec.field=value")
    ap.add_argument("--seeds", type=int, default=12, help="paired episode seeds (>= 12)")
    ap.add_argument("--snr-seeds", type=int, default=None, help="seeds probed (default all)")
    ap.add_argument("--sets", type=int, default=8, help="random action sets per probed state")
    ap.add_argument("--train-seeds", type=int, default=3, help="training seeds per action set")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None,
                    help="cells folder (default runs/game-signal/GAME-PRESET)")
    ap.add_argument("--summarize-only", action="store_true",
                    help="publish the finished cells of OUT without playing (seeds with all "
                         "three policies; noise and probes n/a where missing)")
    ap.add_argument("--also", action="append", default=[], choices=FIXED_POLICIES.names(),
                    help="another fixed policy to play on the same seeds (repeatable), e.g. "
                         "lookahead (head game only)")
    ap.add_argument("--summary", type=Path,
                    default=Path("docs/results/agent-v6/game_signal.txt"))
    args = ap.parse_args(argv)
    cfg = apply_overrides(get_preset(args.preset), [f"agent.game={args.game}", *args.set])
    torch.set_num_threads(args.threads)
    set_threads(cfg)
    out = args.out or Path("runs/game-signal") / f"{args.game}-{args.preset}"
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.txt", "a")

    def log(msg: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {msg}", flush=True)
        log_file.write(f"[{stamp}] {msg}\n")
        log_file.flush()

    if args.summarize_only:
        meta = json.loads((out / "meta.json").read_text())
        cells = load_cells(out / "cells.jsonl")
        seeds = [s for s in range(1, args.seeds + 1)
                 if all(f"episode:{p}:{s}:0" in cells for p in POLICIES)]
        meta["summarized_only"] = {"command": " ".join(shlex.quote(a) for a in sys.argv),
                                   "git_revision": git_revision()}
        return publish(args, out, meta, cells, seeds)
    proto = load_protocol(cfg.data, progress=False)
    # the start model depends on the data, model, training and agent.start_* settings only:
    # the game's own settings may change between runs of this script
    start_dir = out / "start"
    with open_run(start_dir, cfg, "train-agent", has_run(start_dir),
                  ignore=tuple(f"agent.{f}" for f in START_FREE)) as run:
        model = start_model(run.cfg, proto, run, progress=False)
    start_images, game_images = game_split(cfg, proto)
    spec = FeatureSpec.from_config(cfg.agent, proto.num_classes, proto.regions_of(proto.state),
                                   len(proto.state))
    t0 = time.perf_counter()
    game = GAMES.get(args.game)(cfg, proto, model, start_images, game_images, spec, cfg.seed)
    log(f"game {args.game} ready in {time.perf_counter() - t0:.0f} s; start D_R "
        f"{game.start_score:.4f}")
    meta = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
            "git_revision": git_revision(), "config": to_dict(cfg), "game": args.game,
            "preset": args.preset, "start_score": game.start_score,
            "splits": {"reward": cfg.data.reward_split,
                       "selection": cfg.data.selection_split or cfg.data.reward_split,
                       "test": cfg.data.test_split}}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    cells_path = out / "cells.jsonl"
    cells = load_cells(cells_path)
    seeds = list(range(1, args.seeds + 1))
    episode_cells(game, seeds, cells_path, cells, log, tuple(args.also))
    snr_seeds = seeds[: args.snr_seeds] if args.snr_seeds else seeds
    probe_cells(game, snr_seeds, args.sets, args.train_seeds, cells_path, cells, log)
    publish(args, out, meta, cells, seeds)


def publish(args, out: Path, meta: dict, cells: dict, seeds: list[int]) -> None:
    summary = summarize(cells, seeds)
    summary["meta"] = meta
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    tag = "-".join([args.game, args.preset, *[a.replace("=", "-") for a in args.set]])
    published = args.summary.parent / f"game_signal-{tag}.json"
    published.parent.mkdir(parents=True, exist_ok=True)
    published.write_text(json.dumps({**summary, "cells": list(cells.values())}, indent=1) + "\n")
    label = (f"{args.game} game, {args.preset}, D_R = {meta['splits']['reward']}"
             + (f" ({' '.join(args.set)})" if args.set else ""))
    block = lines(args.game, label, summary, meta["splits"])
    write_summary(args.summary, label, block)
    for line in block:
        print(line)


if __name__ == "__main__":
    main()
