"""Fault injection: kills, damaged files and concurrent processes on synthetic-tiny runs.

Every outcome must be the result an uninterrupted run gives, or a one-line error with exit 2;
never a different number with exit 0 (a "wrong result"), never a traceback.

* kills: ``kill -9`` of ``simulate``, ``benchmark`` and ``train-agent`` at random moments
  (pretraining included), once or twice in a row, then the same command again (with
  ``--resume``) until it finishes; the result is compared with an uninterrupted reference;
* corruptions: every file of a finished and of an interrupted run directory (simulate, its θ0,
  an agent, a benchmark cell) deleted, and truncated to half its size, then the command again;
* concurrent: two or three processes on one directory at once (simulate resumes, two
  benchmarks on one grid, agent resumes), then once more alone to finish;
* hostile: links in copied run directories and projects, files with huge weights, another
  project's exports, dtypes ralis never writes, FIFOs and devices, a full disk
  (``benchmarks/faults_hostile.py``): each must be a one-line error that writes nothing outside.

Usage::

    python benchmarks/faults.py --out docs/results/faults           # about 15 minutes, 2 cores
    python benchmarks/faults.py --only hostile --out /tmp/hostile    # the hostile cases only

Writes ``faults.json`` (every case: what was done, exit codes, the outcome) and ``faults.md``
into ``--out``; the last line printed is
``faults: <N> kills, <M> corruptions, <K> concurrent, <H> hostile, <W> wrong results``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faults_hostile import GROUPS, hostile_cases  # noqa: E402

from ralis.files.atomic import atomic_write_text  # noqa: E402
from ralis.provenance import git_revision  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
SIMULATE = ["simulate", "--strategy", "entropy", "--seed", "3", "--budgets", "8,16,24,32",
            "--quiet"]
AGENT = ["train-agent", "--episodes", "3", "--quiet"]
BENCH = ["benchmark", "--strategies", "random,entropy", "--seeds", "0,1", "--budgets", "8,16",
         "--no-upper-bound", "--quiet"]
KINDS = {"simulate": SIMULATE, "train-agent": AGENT, "benchmark": BENCH}


def cli(args: list[str], out: Path, resume: bool) -> list[str]:
    extra = ["--resume"] if resume and args[0] != "benchmark" else []
    return [sys.executable, "-m", "ralis", *args, "--out", str(out), *extra]


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(cmd: list[str], timeout: float = 600) -> tuple[int, str]:
    p = start(cmd)
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err


def kill9(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.communicate()


# ------------------------------------------------------------------------------- results
def result_of(kind: str, out: Path) -> object:
    """What must be identical to the reference: the numbers a user reads."""
    if kind == "simulate":
        res = json.loads((out / "results.json").read_text())
        budgets = [(b["regions"], b["miou"], b["val_miou"], b["class_entropy"])
                   for b in res["budgets"]]
        return {"budgets": budgets, "acquired": (out / "acquired_regions.csv").read_text()}
    if kind == "train-agent":
        res = json.loads((out / "agent.json").read_text())
        log = [(e["episode"], e["return"], e["final_miou"], e["loss"], e["class_entropy"])
               for e in res["episodes_log"]]
        from ralis.files.safe import file_digest

        # the policy's weights (its record names its own run id and creation time)
        return {"episodes": log,
                "policy": file_digest(out / "policy.safetensors", "tensors_sha256")}
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    return sorted((r["strategy"], r["seed"], r["regions"], r["miou"], r["val_miou"])
                  for r in rows)


def classify(kind: str, out: Path, code: int, err: str, reference: object) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    if "Traceback" in err:
        return "crash"
    if code == 2 and lines and lines[-1].startswith("error: ") and len(
            [ln for ln in lines if ln.startswith("error: ")]) == 1:
        return "error"
    if code != 0:
        return "crash"
    try:
        got = result_of(kind, out)
    except (OSError, ValueError, KeyError) as exc:
        return f"crash ({type(exc).__name__} reading the result)"
    return "identical" if json.dumps(got) == json.dumps(reference) else "wrong"


# ------------------------------------------------------------------------------- scenarios
def kill_case(kind: str, work: Path, reference: object, rng: random.Random,
              reference_seconds: float) -> dict:
    out = work / f"kill-{kind}-{rng.randrange(10**6)}"
    kills = []
    for i in range(rng.choice([1, 1, 2])):
        p = start(cli(KINDS[kind], out, resume=i > 0))
        delay = rng.uniform(0.3, reference_seconds * 0.95)
        time.sleep(delay)
        alive = p.poll() is None
        kill9(p)
        kills.append({"after_s": round(delay, 2), "killed_running": alive})
    code, err = finish(cli(KINDS[kind], out, resume=True))
    outcome = classify(kind, out, code, err, reference)
    if outcome == "error":  # a one-line error is allowed; say what it was
        kills.append({"error": err.strip().splitlines()[-1]})
    shutil.rmtree(out, ignore_errors=True)
    return {"scenario": "kill", "kind": kind, "kills": kills, "exit": code, "outcome": outcome}


def interrupted_copy(kind: str, work: Path, name: str) -> Path:
    """A run of ``kind`` killed once its first checkpoint exists (deterministic state)."""
    out = work / name
    p = start(cli(KINDS[kind], out, resume=False))
    marker = {"simulate": out / "checkpoint.safetensors",
              "train-agent": out / "agent_checkpoint.safetensors",
              "benchmark": out / "entropy-s0" / "checkpoint.safetensors"}[kind]
    deadline = time.time() + 300
    while not marker.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    kill9(p)
    return out


def files_of(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*") if p.is_file() and p.name != ".lock")


def corruption_cases(kind: str, base: Path, work: Path, reference: object, state: str,
                     select=None) -> list[dict]:
    cases = []
    for f in files_of(base):
        rel = f.relative_to(base)
        if select is not None and not select(rel):
            continue
        for action in ("delete", "truncate"):
            out = work / f"corrupt-{kind}-{state}-{action}-{str(rel).replace('/', '_')}"
            shutil.copytree(base, out, ignore=shutil.ignore_patterns(".lock"))
            target = out / rel
            if action == "delete":
                target.unlink()
            else:
                data = target.read_bytes()
                target.write_bytes(data[: len(data) // 2])
            code, err = finish(cli(KINDS[kind], out, resume=True))
            outcome = classify(kind, out, code, err, reference)
            case = {"scenario": "corruption", "kind": kind, "state": state, "file": str(rel),
                    "action": action, "exit": code, "outcome": outcome}
            if outcome in ("error", "crash"):
                case["stderr"] = (err.strip().splitlines() or [""])[-1][:300]
            if outcome not in ("identical", "error"):
                print(f"  {outcome}: {action} {rel} ({kind}, {state}): "
                      f"{case.get('stderr', '')}", flush=True)
            cases.append(case)
            shutil.rmtree(out, ignore_errors=True)
    return cases


def concurrent_case(kind: str, work: Path, reference: object, n: int) -> dict:
    out = interrupted_copy(kind, work, f"race-{kind}-{n}")
    procs = [start(cli(KINDS[kind], out, resume=True)) for _ in range(n)]
    runs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    per = []
    for code, (_, err) in zip(codes, runs, strict=True):
        per.append(classify(kind, out, code, err, reference) if code != 0 else "ran")
    code, err = finish(cli(KINDS[kind], out, resume=True))
    outcome = classify(kind, out, code, err, reference)
    if any(o not in ("ran", "error") for o in per):
        outcome = "crash" if outcome == "identical" else outcome
    shutil.rmtree(out, ignore_errors=True)
    return {"scenario": "concurrent", "kind": kind, "processes": n, "exits": codes,
            "per_process": per, "exit": code, "outcome": outcome}


# ------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/results/faults"))
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--only", nargs="+", choices=("kills", "corruptions", "concurrent",
                                                  "hostile", *GROUPS),
                    help="run only these scenarios (hostile, or some of its groups)")
    args = ap.parse_args()
    only = set(args.only or ("kills", "corruptions", "concurrent", "hostile"))
    rng = random.Random(args.seed)
    start_time = time.time()
    work = Path(tempfile.mkdtemp(prefix="ralis-faults-"))
    refs, seconds, finished = {}, {}, {}
    for kind in KINDS:
        out = work / f"ref-{kind}"
        t = time.perf_counter()
        code, err = finish(cli(KINDS[kind], out, resume=False))
        if code != 0:
            raise SystemExit(f"reference {kind} failed:\n{err}")
        seconds[kind] = time.perf_counter() - t
        refs[kind] = result_of(kind, out)
        finished[kind] = out
        print(f"reference {kind}: {seconds[kind]:.1f} s", flush=True)
    cases: list[dict] = []
    kinds = list(KINDS)
    for i in range(args.kills if "kills" in only else 0):
        kind = kinds[i % len(kinds)]
        cases.append(kill_case(kind, work, refs[kind], rng, seconds[kind]))
        print(f"kill {i + 1}/{args.kills} {kind}: {cases[-1]['outcome']}", flush=True)
    for kind in KINDS if "corruptions" in only else ():
        select = None
        if kind == "benchmark":  # one cell, θ0 and the table stand for the rest
            def select(rel: Path) -> bool:
                return rel.parts[0] in ("entropy-s0", "theta0") or str(rel) == "results.csv"
        cases += corruption_cases(kind, finished[kind], work, refs[kind], "finished", select)
        cut = interrupted_copy(kind, work, f"cut-{kind}")
        cases += corruption_cases(kind, cut, work, refs[kind], "interrupted", select)
        done = [c for c in cases if c["scenario"] == "corruption" and c["kind"] == kind]
        print(f"corruptions {kind}: {len(done)} cases", flush=True)
    races = (("simulate", 2), ("simulate", 3), ("benchmark", 2), ("train-agent", 2))
    for kind, n in races if "concurrent" in only else ():
        cases.append(concurrent_case(kind, work, refs[kind], n))
        print(f"concurrent {kind} x{n}: {cases[-1]['outcome']} {cases[-1]['per_process']}",
              flush=True)
    groups = GROUPS if "hostile" in only else tuple(g for g in GROUPS if g in only)
    cases += hostile_cases(work, finished, SIMULATE, BENCH, groups,
                           lambda line: print(line, flush=True))
    shutil.rmtree(work, ignore_errors=True)

    def count(scenario: str) -> int:
        return sum(c["scenario"] == scenario for c in cases)

    bad = [c for c in cases if c["outcome"] not in ("identical", "error", "skipped")]
    summary = {
        "command": "python benchmarks/faults.py " + " ".join(sys.argv[1:]),
        "git_revision": git_revision(), "seed": args.seed,
        "settings": {k: v for k, v in KINDS.items()}, "preset": "synthetic-tiny",
        "reference_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "kills": count("kill"), "corruptions": count("corruption"),
        "concurrent": count("concurrent"), "hostile": count("hostile"),
        "wrong_results": len(bad),
        "outcomes": {o: sum(c["outcome"] == o for c in cases)
                     for o in sorted({c["outcome"] for c in cases})},
        "wall_s": round(time.time() - start_time), "cases": cases,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(summary, indent=2) + "\n", args.out / "faults.json")
    atomic_write_text(markdown(summary), args.out / "faults.md")
    print(result_line(summary))


def result_line(s: dict) -> str:
    return (f"faults: {s['kills']} kills, {s['corruptions']} corruptions, {s['concurrent']} "
            f"concurrent, {s['hostile']} hostile, {s['wrong_results']} wrong results")


def markdown(s: dict) -> str:
    lines = [
        "# Fault injection on synthetic-tiny", "",
        f"`{s['command']}` at git revision `{s['git_revision']}`, seed {s['seed']}, "
        f"{s['wall_s']} s wall.", "",
        "Each case ends in one of: **identical** (exit 0, the same numbers as an uninterrupted "
        "run), **error** (exit 2 with one line saying what is wrong and how to recover), "
        "**wrong** (exit 0 with other numbers; for a hostile input: accepted, another error, a "
        "hang or a write outside ralis's folders) or **crash** (a traceback). Only the first two "
        "are acceptable (and **skipped**, a full disk where no small file system can be made).",
        "",
        f"Outcomes: {', '.join(f'{k} {v}' for k, v in s['outcomes'].items())}.", "",
        "| scenario | run | what | outcome | detail |", "|---|---|---|---|---|",
    ]
    for c in s["cases"]:
        if c["scenario"] == "kill":
            what = " then ".join(f"kill -9 at {k['after_s']} s" for k in c["kills"]
                                 if "after_s" in k)
            detail = next((k["error"] for k in c["kills"] if "error" in k), "")
        elif c["scenario"] == "corruption":
            what = f"{c['action']} `{c['file']}` ({c['state']})"
            detail = c.get("stderr", "")
        elif c["scenario"] == "hostile":
            what, detail = c["what"], c.get("stderr", "")
        else:
            what = f"{c['processes']} processes at once"
            detail = ", ".join(c["per_process"])
        detail = detail.replace("|", "\\|")
        lines.append(f"| {c['scenario']} | {c['kind']} | {what} | {c['outcome']} | {detail} |")
    lines += ["", result_line(s), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
