"""Peak memory (RSS) of ``ralis pretrain`` and of a few ``ralis simulate`` steps, each in its own
process, at three scales; and whether the in-memory path is faster than the disk cache.

    python benchmarks/memory.py                      # all three cases, ~30 min on 2 CPU cores
    python benchmarks/memory.py --cases cityscapes-scale

Cases (each a pretrain of a few SGD steps, then simulate with entropy for 2 AL steps and a
1-epoch final training, on the CPU):
* ``camvid-cpu``: CamVid at 180x240 (``../shared/datasets/camvid``);
* ``camvid-paper``: CamVid at the paper's 360x480 with its FPN-ResNet-50;
* ``cityscapes-scale``: the ``cityscapes`` preset's protocol on a synthetic set of Cityscapes
  size: 2,975 train / 500 val (D_R) / 100 test images at 512x1024, 8x8 regions of 64x128, K=256,
  entropy pools of 200; the small FPN (FPN-ResNet-50 at 512x1024 takes minutes per D_R pass on
  a CPU; the network's share of memory is measured by the camvid-paper case).
``--speed``: camvid-cpu simulate steps with ``data.storage=memory`` and ``disk`` (same seed),
time per step.

Results (command, config overrides, git revision) go to ``docs/results/memory/``; the last line is
``peak_rss_gb: camvid-cpu <a>, camvid-paper <b>, cityscapes-scale <c>``.
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

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "memory"
FEW = ["train.pretrain_epochs=1", "train.iters_per_epoch=3", "train.final_epochs=1",
       "train.final_patience=1", "al.eval_every=0"]

CASES = {
    "camvid-cpu": {"preset": "camvid-cpu", "args": [], "sets": [], "budget": 48},
    "camvid-paper": {"preset": "camvid-paper", "args": ["--device", "cpu"],
                     "sets": ["train.eval_batch_size=4", "train.batch_size=8"], "budget": 48},
    "cityscapes-scale": {
        "preset": "cityscapes",
        "args": ["--device", "cpu", "--dataset", "synthetic", "--resolution", "512x1024",
                 "--region-size", "64x128"],
        "sets": ["data.synthetic_images=2975,500,100", "data.train_split=train",
                 "data.reward_split=val", "data.test_split=test", "model.name=fpn_small",
                 "train.eval_batch_size=4", "train.batch_size=8", "train.crop_size=256,512"],
        "budget": 512},
}


def measured(args: list[str], env: dict | None = None) -> dict:
    """``ralis ARGS`` in a child process: wall seconds and peak RSS (``wait4``)."""
    start = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "ralis", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT,
                         env={**os.environ, "RALIS_PROGRESS_INTERVAL": "60", **(env or {})})
    out = p.stdout.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"ralis {' '.join(args)} failed:\n{out[-3000:]}")
    return {"command": "ralis " + " ".join(args), "wall_s": round(time.perf_counter() - start, 1),
            "peak_rss_gb": round(usage.ru_maxrss / 1024 ** 2, 3)}


def run_case(name: str, work: Path, cache: Path) -> dict:
    case = CASES[name]
    sets = [a for s in [*FEW, *case["sets"], f"data.cache_dir={cache}"] for a in ("--set", s)]
    common = ["--preset", case["preset"], *case["args"], *sets, "--quiet"]
    pre = measured(["pretrain", *common, "--out", str(work / f"{name}-theta0")])
    sim = measured(["simulate", "--strategy", "entropy", "--budgets", str(case["budget"]),
                    "--pretrained", str(work / f"{name}-theta0" / "model.safetensors"),
                    *common, "--out", str(work / f"{name}-entropy")])
    result = json.loads((work / f"{name}-entropy" / "results.json").read_text())
    steps = result["steps"]
    return {"case": name, "pretrain": pre, "simulate": sim, "steps": len(steps),
            "step_wall_s": [round(s["wall"] - (steps[i - 1]["wall"] if i else 0), 1)
                            for i, s in enumerate(steps)],
            "peak_rss_gb": max(pre["peak_rss_gb"], sim["peak_rss_gb"])}


def speed(work: Path, cache: Path) -> dict:
    """Seconds per AL step on camvid-cpu, in memory and from the disk cache."""
    out = {}
    for storage in ("memory", "disk"):
        sets = [a for s in [*FEW, f"data.storage={storage}", f"data.cache_dir={cache}"]
                for a in ("--set", s)]
        run = measured(["simulate", "--strategy", "entropy", "--budgets", "120",
                        "--pretrained", str(work / "camvid-cpu-theta0" / "model.safetensors"),
                        "--preset", "camvid-cpu", *sets, "--quiet",
                        "--out", str(work / f"speed-{storage}")])
        steps = json.loads((work / f"speed-{storage}" / "results.json").read_text())["steps"]
        walls = [s["wall"] - (steps[i - 1]["wall"] if i else 0) for i, s in enumerate(steps)]
        out[storage] = {"run": run, "step_s": [round(w, 2) for w in walls],
                        "mean_step_s": round(sum(walls[1:]) / max(1, len(walls) - 1), 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--speed", action="store_true", help="also time memory vs disk storage")
    args = ap.parse_args()
    from ralis.provenance import git_revision

    work = Path(tempfile.mkdtemp(prefix="ralis-memory-"))
    cache = work / "cache"
    rows = []
    for name in args.cases.split(","):
        rows.append(run_case(name, work, cache))
        r = rows[-1]
        print(f"{name}: pretrain {r['pretrain']['peak_rss_gb']} GB ({r['pretrain']['wall_s']} s), "
              f"simulate {r['simulate']['peak_rss_gb']} GB ({r['simulate']['wall_s']} s, "
              f"steps {r['step_wall_s']} s)", flush=True)
    timing = speed(work, cache) if args.speed else None
    if timing:
        print("speed: " + ", ".join(f"{k} {v['mean_step_s']} s/step" for k, v in timing.items()))
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = {"git_revision": git_revision(), "command": " ".join(sys.argv),
             "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
             "few_steps": FEW, "cases": {k: CASES[k] for k in args.cases.split(",")}}
    path = OUT / ("memory.json" if args.cases == ",".join(CASES) else
                  f"memory-{args.cases.replace(',', '+')}.json")
    path.write_text(json.dumps({**stamp, "rows": rows, "speed": timing}, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print("peak_rss_gb: " + ", ".join(f"{r['case']} {r['peak_rss_gb']}" for r in rows))


if __name__ == "__main__":
    main()
