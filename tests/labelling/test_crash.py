"""kill -9 at every commit point of init, next, import and train, then rerun the same command:
the project ends exactly as an uninterrupted one (no label lost, same regions, same weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ralis.files.safe import file_digest
from ralis.labelling.annotator import answer_round
from ralis.labelling.project import open_project

VOLATILE = {"created", "exported", "time", "wall", "source", "files", "project"}


def ralis(args: list[str], crash: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RALIS_PROGRESS_INTERVAL": "0"}
    env.pop("RALIS_CRASH_POINT", None)
    if crash:
        env["RALIS_CRASH_POINT"] = crash
    return subprocess.run([sys.executable, "-m", "ralis", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def step(args: list[str], crash: str | None) -> None:
    if crash:
        killed = ralis(args, crash)
        assert killed.returncode == -9, killed.stderr  # it really died there
    done = ralis(args)
    assert done.returncode == 0, done.stderr


def strip(obj):
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def play(root: Path, inputs, crashes: dict[str, str]) -> dict:
    images, classes, theta0, truth = inputs
    step(["label", "init", str(root), "--images", str(images), "--classes", str(classes),
          "--model", str(theta0), "--preset", "synthetic-tiny", "--quiet"], crashes.get("init"))
    step(["label", "next", str(root), "--regions", "6", "--strategy", "entropy", "--quiet"],
         crashes.get("next"))
    with open_project(root, "test") as p:
        answer = answer_round(p, 1, truth.__getitem__, "png", root.parent / f"{root.name}-ans")
    step(["label", "import", str(root), str(answer)], crashes.get("import"))
    for point in crashes.get("train", "").split(",") or [None]:
        if point:
            assert ralis(["label", "train", str(root), "--quiet"], point).returncode == -9
    step(["label", "train", str(root), "--quiet"], None)
    status = json.loads(ralis(["label", "status", str(root), "--json"]).stdout)
    return {"status": strip(status),
            "weights": file_digest(root / "models" / "v0001.safetensors", "tensors_sha256"),
            "requests": (root / "rounds" / "1" / "requests.csv").read_text()}


def test_kill_9_anywhere_loses_nothing(tmp_path, tiny_project_inputs):
    reference = play(tmp_path / "ref", tiny_project_inputs, {})
    crashed = play(tmp_path / "crashed", tiny_project_inputs, {
        "init": "init:caching", "next": "next:after-commit", "import": "import:before-commit",
        "train": "train:after-model-file,train:after-files"})
    assert crashed == reference
    assert reference["status"]["labelled"] == 6 and reference["status"]["pending"] == 0
    # the same round was finished, not chosen again; one import; models 0 and 1 only
    assert len(reference["status"]["rounds"]) == 1 == len(crashed["status"]["imports"])
    assert [m["version"] for m in crashed["status"]["models"]] == [0, 1]


def test_kill_after_export_files_then_rerun_finishes(tmp_path, tiny_project_inputs):
    images, classes, theta0, _ = tiny_project_inputs
    root = tmp_path / "p"
    assert ralis(["label", "init", str(root), "--images", str(images), "--classes", str(classes),
                  "--preset", "synthetic-tiny", "--quiet"]).returncode == 0
    args = ["label", "next", str(root), "--regions", "3", "--strategy", "random", "--quiet"]
    assert ralis(args, "next:after-files").returncode == -9
    first = (root / "rounds" / "1" / "requests.csv").read_text()
    again = ralis(args)
    assert again.returncode == 0 and "finishing it" in again.stdout
    assert (root / "rounds" / "1" / "requests.csv").read_text() == first
    assert not (root / "rounds" / "2").exists()


def test_a_second_command_on_a_busy_project_is_refused(tmp_path, tiny_project_inputs):
    images, classes, _, _ = tiny_project_inputs
    root = tmp_path / "p"
    assert ralis(["label", "init", str(root), "--images", str(images), "--classes", str(classes),
                  "--preset", "synthetic-tiny", "--quiet"]).returncode == 0
    with open_project(root, "label train"):  # this process holds the project's lock
        busy = ralis(["label", "next", str(root), "--regions", "2", "--quiet"])
    assert busy.returncode == 2 and "in use by process" in busy.stderr
    assert "label train" in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
    assert not (root / "rounds").exists()
