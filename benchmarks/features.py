"""Benchmark of the RALIS candidate features (``ralis.rl.action_features.action_features``).

The Cityscapes DQN-training step: M = 5,120 candidates (K = 256 pools of N = 20), C = 11
classes (12-bin distributions, as CamVid), L = 3,840 labelled regions (a full episode's
budget) and U = 5,120 "unlabelled" regions (the step's candidates). Prints the torch version,
thread count and git revision, a small table (median and min of a few runs after a warm-up,
at torch's default thread count and, for reference, at one thread), and as its last line
``action_features_5120: <seconds> s``: the median at the default thread count of the slower
mode (adaptive or fixed).

    .venv/bin/python benchmarks/features.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from ralis.regions.histograms import ABSENT, normalize_histogram
from ralis.rl.action_features import action_features, kl_to_set_histogram

M, L, U, C, P, BINS = 5120, 3840, 5120, 11, 192, 32


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def make_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    # Raw class counts of 128x128 regions with a few classes per region (others absent).
    counts = torch.rand(M, C + 1, generator=gen) ** 4 * 4000
    counts[torch.rand(M, C + 1, generator=gen) < 0.5] = 0
    counts[:, -1] = 0  # the ignore bin is empty for predictions
    cand_hist = counts.round().masked_fill(counts.round() == 0, ABSENT)
    labelled = torch.rand(L, C + 1, generator=gen) ** 4
    labelled[torch.rand(L, C + 1, generator=gen) < 0.5] = 0
    labelled = normalize_histogram(labelled.masked_fill(labelled == 0, ABSENT))
    return {
        "cand_hist": cand_hist,
        "cand_entropy": torch.rand(M, P, generator=gen) * 2.4,
        "labelled_dist": labelled,
        "unlabelled_dist": normalize_histogram(cand_hist),
    }


def timings(fn, repeats: int) -> tuple[float, float]:
    """``(median, min)`` seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def bench_mode(x: dict[str, torch.Tensor], mode: str, repeats: int) -> list[tuple[float, float]]:
    return [
        timings(
            lambda: kl_to_set_histogram(x["cand_hist"], x["labelled_dist"], BINS, mode), repeats
        ),
        timings(
            lambda: kl_to_set_histogram(x["cand_hist"], x["unlabelled_dist"], BINS, mode), repeats
        ),
        timings(lambda: action_features(**x, bins=BINS, mode=mode), repeats),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {default_threads}, git {git_revision()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (other processes inflate timings)")
    print(f"M={M} candidates, L={L} labelled, U={U} unlabelled, C+1={C + 1}, bins={BINS}")
    x = make_inputs()
    rows = []
    for threads in dict.fromkeys((default_threads, 1)):  # the 1-thread rows are for reference
        torch.set_num_threads(threads)
        for mode in ("adaptive", "fixed"):
            rows.append((mode, threads, *bench_mode(x, mode, args.repeats)))
    torch.set_num_threads(default_threads)
    print("median (min) seconds over", args.repeats, "runs")
    print(
        f"{'mode':<10}{'threads':>8}{'KL-labelled':>18}{'KL-unlabelled':>18}{'action_features':>18}"
    )
    for mode, threads, *cells in rows:
        text = "".join(f"{f'{med:.3f} ({low:.3f})':>18}" for med, low in cells)
        print(f"{mode:<10}{threads:>8}{text}")
    slowest = max(r[4][0] for r in rows if r[1] == default_threads)
    out = Path(__file__).parent / "results" / "features.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "command": "python benchmarks/features.py " + " ".join(sys.argv[1:]),
        "git_revision": git_revision(), "torch": torch.__version__, "threads": default_threads,
        "seed": 0, "config": {"M": M, "L": L, "U": U, "classes_plus_void": C + 1, "bins": BINS,
                              "repeats": args.repeats},
        "median_min_seconds": [
            {"mode": mode, "threads": threads, "kl_labelled": cells[0], "kl_unlabelled": cells[1],
             "action_features": cells[2]} for mode, threads, *cells in rows],
        "action_features_seconds": slowest,
    }, indent=2) + "\n")
    print(f"written to {out}")
    print(f"action_features_{M}: {slowest:.3f} s")


if __name__ == "__main__":
    main()
