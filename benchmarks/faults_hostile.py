"""Hostile inputs for ``benchmarks/faults.py`` (issue #20): what a copied folder, a shared file or
a full disk can do to ralis.

* symlink: a run directory's, a grid's or a project's ``.lock`` linked to a file outside (or
  dangling, hard-linked, a FIFO); ``pretrain/``, a checkpoint or ``rounds/<n>`` linked outside; a
  PNG answers folder holding a link;
* huge-weight: a policy and a θ0 whose weights are finite but x1e30;
* foreign-export: another project's Label Studio, COCO and CVAT export over the same images, a
  PNG export that labels none of the requested regions, a Label Studio URL leaving the images
  folder, a COCO polygon of 200,000 points;
* dtype: θ0 files whose header says F4, F6_E2M3, F8_E8M0 or F8_E4M3;
* fifo: ``ralis inspect`` on a FIFO, ``--pretrained /dev/zero``, ``ralis inspect results.csv``;
* full-disk: ``simulate``, ``benchmark`` and ``label init`` with a small tmpfs as their output
  folder (a mount namespace of their own; skipped where one cannot be made).

Every case must end in one ``error:`` line (exit 2) that says what is wrong, with nothing
outside ralis's folders written or changed; exit 0 (accepted), another error, a write outside or
a hang is a wrong result, a traceback a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shlex
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
GROUPS = ("symlink", "huge-weight", "foreign-export", "dtype", "fifo", "full-disk")


def ralis(*args: str, timeout: float = 600, wrap: list[str] | None = None) -> tuple[int, str]:
    """``python -m ralis ARGS`` (with 4 GB of address space: a loader that reads without end
    fails instead of filling the machine): ``(exit code, stderr)``; a hang is exit -1."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    cmd = [sys.executable, "-m", "ralis", *args]
    if wrap is not None:
        cmd = [*wrap[:-1], wrap[-1] + " ".join(shlex.quote(a) for a in cmd)]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return -1, f"(no answer in {timeout:.0f} s)"
    return done.returncode, done.stderr


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) and a SHA-256 of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def outcome(code: int, err: str, needles: tuple[str, ...], intact: bool) -> tuple[str, str]:
    """``(outcome, the error line)`` of a hostile case (module docs)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if "Traceback" in err:
        return "crash", last
    if not intact:
        return "wrong (wrote outside)", last
    if code == -1:
        return "wrong (hang)", last
    if code == 0:
        return "wrong (accepted)", last
    errors = [ln for ln in lines if ln.startswith("error: ")]
    if code == 2 and len(errors) == 1 and last == errors[0]:
        return ("error", last) if all(n in last for n in needles) else ("wrong (message)", last)
    return "crash", last


class Hostile:
    """Runs the cases of one group into ``cases``; ``work`` is scratch space."""

    def __init__(self, work: Path, finished: dict[str, Path], say: Callable[[str], None]):
        self.work, self.finished, self.say = work, finished, say
        self.cases: list[dict] = []
        self.outside = work / "outside"
        self.outside.mkdir(parents=True, exist_ok=True)
        (self.outside / "precious.txt").write_text("do not touch\n")
        self.theta0 = finished["simulate"] / "pretrain" / "model.safetensors"

    def case(self, group: str, what: str, args: list[str], needles: tuple[str, ...] = (),
             timeout: float = 600, wrap: list[str] | None = None, check: Callable | None = None
             ) -> None:
        before = snapshot(self.outside)
        code, err = ralis(*args, timeout=timeout, wrap=wrap)
        intact = snapshot(self.outside) == before and (check() if check else True)
        result, line = outcome(code, err, needles, intact)
        self.cases.append({"scenario": "hostile", "kind": group, "what": what, "exit": code,
                           "outcome": result, "stderr": line[:300]})
        if result not in ("error", "skipped"):
            self.say(f"  {result}: {group}: {what}: {line[:200]}")

    def skip(self, group: str, what: str, why: str) -> None:
        self.cases.append({"scenario": "hostile", "kind": group, "what": what, "exit": None,
                           "outcome": "skipped", "stderr": why})

    # --------------------------------------------------------------------- helpers
    def copy_run(self, kind: str, name: str) -> Path:
        out = self.work / name
        shutil.copytree(self.finished[kind], out, ignore=shutil.ignore_patterns(".lock"))
        return out

    def project(self, name: str, fmt: str = "png") -> Path:
        """A labelling project over the synthetic pool's images with round 1 (6 regions)."""
        root = self.work / name
        code, err = ralis("label", "init", str(root), "--images", str(self.images), "--classes",
                          str(self.classes), "--model", str(self.theta0), "--preset",
                          "synthetic-tiny", "--quiet")
        assert code == 0, err
        code, err = ralis("label", "next", str(root), "--regions", "6", "--strategy", "random",
                          "--format", fmt, "--quiet")
        assert code == 0, err
        return root

    def answer(self, root: Path, fmt: str, path: Path) -> Path:
        from ralis.labelling.annotator import answer_round
        from ralis.labelling.project import open_project

        with open_project(root, "faults") as p:
            return answer_round(p, 1, self.truth.__getitem__, fmt, path)

    def imports(self, root: Path) -> int:
        from ralis.labelling.project import open_project

        with open_project(root, "faults") as p:
            return int(p.ledger.scalar("SELECT COUNT(*) FROM imports"))

    def scaled(self, src: Path, dest: Path, kind: str) -> Path:
        if kind == "policy":
            from ralis.rl.policy import load_policy, save_policy

            qnet, spec, meta = load_policy(src)
            with torch.no_grad():
                for p in qnet.parameters():
                    p.mul_(1e30)
            return save_policy(dest, qnet, spec, meta)
        from ralis.models import load_model, save_model

        model, meta = load_model(src)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1e30)
        return save_model(dest, model, meta["name"], meta["num_classes"], meta["kwargs"],
                          {"classes": meta["extra"].get("classes")})

    # --------------------------------------------------------------------- groups
    def setup_images(self) -> None:
        from ralis.config import get_preset
        from ralis.data.protocol import load_protocol

        proto = load_protocol(get_preset("synthetic-tiny").data, progress=False)
        self.images = self.work / "images"
        self.images.mkdir(exist_ok=True)
        self.truth = {}
        for k in range(len(proto.pool)):
            name = f"img_{k:03d}.png"
            Image.fromarray(proto.pool.images_u8[k].permute(1, 2, 0).numpy()).save(
                self.images / name)
            self.truth[name] = proto.pool.masks[k].numpy()
        self.classes = self.work / "classes.yaml"
        items = [{"name": n, "id": i} for i, n in enumerate(proto.classes.names)]
        self.classes.write_text(yaml.safe_dump({"classes": items,
                                                "ignore_index": proto.classes.ignore_index}))

    def symlink(self, simulate: list[str], bench: list[str]) -> None:
        victim = self.outside / "precious.txt"
        run = self.copy_run("simulate", "link-lock")
        (run / ".lock").symlink_to(victim)
        self.case("symlink", "`.lock` of a run linked to a file outside",
                  [*simulate, "--out", str(run), "--resume"], (".lock is a symbolic link",))
        run = self.copy_run("simulate", "link-dangling")
        (run / ".lock").symlink_to(self.outside / "made.txt")
        self.case("symlink", "dangling `.lock` link of a run",
                  [*simulate, "--out", str(run), "--resume"], ("symbolic link",),
                  check=lambda: not (self.outside / "made.txt").exists())
        run = self.copy_run("simulate", "link-hard")
        os.link(victim, run / ".lock")
        self.case("symlink", "`.lock` of a run hard-linked to a file outside",
                  [*simulate, "--out", str(run), "--resume"], ("hard link",))
        run = self.copy_run("simulate", "link-fifo")
        os.mkfifo(run / ".lock")
        self.case("symlink", "`.lock` of a run is a FIFO",
                  [*simulate, "--out", str(run), "--resume"], ("not a regular file",), timeout=120)
        run = self.copy_run("simulate", "link-pretrain")
        shutil.move(run / "pretrain", self.outside / "pretrain")
        (run / "pretrain").symlink_to(self.outside / "pretrain", target_is_directory=True)
        self.case("symlink", "`pretrain/` of a run linked to a folder outside",
                  [*simulate, "--out", str(run), "--resume"], ("pretrain is a symbolic link",))
        run = self.copy_run("simulate", "link-checkpoint")
        shutil.move(run / "checkpoint.safetensors", self.outside / "checkpoint.safetensors")
        (run / "checkpoint.safetensors").symlink_to(self.outside / "checkpoint.safetensors")
        self.case("symlink", "`checkpoint.safetensors` of a run linked to a file outside",
                  [*simulate, "--out", str(run), "--resume"], ("symbolic link",))
        grid = self.copy_run("benchmark", "link-grid")
        (grid / "entropy-s0" / ".lock").unlink(missing_ok=True)
        (grid / "entropy-s0" / ".lock").symlink_to(victim)
        self.case("symlink", "`.lock` of a grid cell linked to a file outside",
                  [*bench, "--out", str(grid)], ("symbolic link",))
        proj = self.project("link-project")
        (proj / ".lock").unlink(missing_ok=True)
        (proj / ".lock").symlink_to(victim)
        self.case("symlink", "`.lock` of a labelling project linked to a file outside",
                  ["label", "status", str(proj)], (".lock is a symbolic link",))
        proj = self.project("link-round")
        (proj / "rounds" / "2").symlink_to(self.outside, target_is_directory=True)
        self.case("symlink", "`rounds/2` of a project linked to a folder outside",
                  ["label", "next", str(proj), "--regions", "2", "--strategy", "random",
                   "--quiet"], ("rounds/2 is a symbolic link",))
        proj = self.project("link-answers")
        answer = self.answer(proj, "png", self.work / "link-answers-png")
        first = sorted(answer.iterdir())[0]
        shutil.move(first, self.outside / first.name)
        first.symlink_to(self.outside / first.name)
        self.case("symlink", "a PNG answers folder holding a link to a file outside",
                  ["label", "import", str(proj), str(answer)], ("symbolic link",),
                  check=lambda: self.imports(proj) == 0)

    def huge_weight(self) -> None:
        policy = self.scaled(self.finished["train-agent"] / "policy.safetensors",
                             self.work / "huge-policy.safetensors", "policy")
        self.case("huge-weight", "a policy with finite weights x1e30",
                  ["simulate", "--strategy", "ralis", "--policy", str(policy), "--pretrained",
                   str(self.theta0), "--budgets", "8", "--quiet", "--out",
                   str(self.work / "huge-policy-run")], (str(policy), "Q-values"))
        theta0 = self.scaled(self.theta0, self.work / "huge-theta0.safetensors", "model")
        self.case("huge-weight", "a θ0 with finite weights x1e30",
                  ["simulate", "--strategy", "random", "--pretrained", str(theta0), "--budgets",
                   "8", "--quiet", "--out", str(self.work / "huge-theta0-run")],
                  (str(theta0), "outputs NaN"))
        if self.cases and "train.lr" in self.cases[-1]["stderr"]:
            self.cases[-1]["outcome"] = "wrong (message)"

    def foreign_export(self) -> None:
        for fmt in ("labelstudio", "coco", "cvat"):
            ours, theirs = self.project(f"ours-{fmt}", fmt), self.project(f"theirs-{fmt}", fmt)
            suffix = ".xml" if fmt == "cvat" else ".json"
            answer = self.answer(theirs, fmt, self.work / f"theirs-{fmt}{suffix}")
            self.case("foreign-export", f"another project's {fmt} export (same images and "
                      "regions)", ["label", "import", str(ours), str(answer)],
                      ("another labelling project",), check=lambda r=ours: self.imports(r) == 0)
        ours = self.project("ours-none")
        from ralis.labelling.project import open_project

        with open_project(ours, "faults") as p:
            asked = p.ledger.requests(1)
        name = asked[0]["name"]
        mask = self.truth[name].copy()
        for r in asked:
            if r["name"] == name:
                mask[r["top"]:r["top"] + r["height"], r["left"]:r["left"] + r["width"]] = 255
        folder = self.work / "none-png"
        folder.mkdir()
        Image.fromarray(mask.astype(np.uint8)).save(folder / name)
        self.case("foreign-export", "a PNG export that labels none of the requested regions",
                  ["label", "import", str(ours), str(folder)],
                  ("labels none of the requested regions",),
                  check=lambda: self.imports(ours) == 0)
        ls = self.project("ours-url", "labelstudio")
        answer = self.answer(ls, "labelstudio", self.work / "url.json")
        tasks = json.loads(answer.read_text())
        task = tasks[0]
        for key in [k for k in task["data"] if k.startswith("ralis_")]:
            del task["data"][key]
        task["data"]["image"] = "../elsewhere/" + name
        answer.write_text(json.dumps([task]))
        self.case("foreign-export", "a Label Studio task whose image URL leaves the images folder",
                  ["label", "import", str(ls), str(answer)], ("points outside",),
                  check=lambda: self.imports(ls) == 0)
        info = {"id": 1, "file_name": name, "width": mask.shape[1], "height": mask.shape[0]}
        span = 3 * sum(mask.shape)
        xs = np.where(np.arange(200_000) % 2, span, -span).astype(float)
        poly = np.stack([xs, np.linspace(0, mask.shape[0], 200_000)], axis=1).ravel().tolist()
        doc = {"images": [info], "categories": [{"id": 1, "name": "sky"}],
               "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                "segmentation": [poly]}]}
        (self.work / "huge.json").write_text(json.dumps(doc))
        self.case("foreign-export", "a COCO polygon of 200,000 points",
                  ["label", "import", str(ours), str(self.work / "huge.json")],
                  ("polygon points",), check=lambda: self.imports(ours) == 0)

    def dtype(self) -> None:
        for dtype in ("F4", "F6_E2M3", "F8_E8M0", "F8_E4M3"):
            path = self.work / f"dtype-{dtype}.safetensors"
            data = self.theta0.read_bytes()
            n = int.from_bytes(data[:8], "little")
            header = json.loads(data[8:8 + n])
            name = next(k for k in header if k != "__metadata__")
            size = header[name]["data_offsets"][1] - header[name]["data_offsets"][0]
            header[name].update(dtype=dtype, shape=[size])
            text = json.dumps(header).encode()
            path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
            self.case("dtype", f"a θ0 whose header says {dtype}",
                      ["simulate", "--strategy", "random", "--pretrained", str(path),
                       "--budgets", "8", "--quiet", "--out", str(self.work / f"dtype-{dtype}")],
                      (f"dtype {dtype}",))
        self.case("dtype", "ralis inspect on a file whose header says F8_E4M3",
                  ["inspect", str(self.work / "dtype-F8_E4M3.safetensors")], ("dtype F8_E4M3",))

    def fifo(self) -> None:
        fifo = self.work / "model.safetensors"
        os.mkfifo(fifo)
        self.case("fifo", "ralis inspect on a FIFO", ["inspect", str(fifo)],
                  ("not a regular file",), timeout=60)
        self.case("fifo", "--pretrained /dev/zero",
                  ["simulate", "--strategy", "random", "--pretrained", "/dev/zero", "--budgets",
                   "8", "--quiet", "--out", str(self.work / "zero")], ("not a regular file",),
                  timeout=300)
        self.case("fifo", "ralis inspect results.csv",
                  ["inspect", str(self.finished["benchmark"] / "results.csv")],
                  ("not a ralis safetensors file",))

    def full_disk(self, simulate: list[str], bench: list[str]) -> None:
        disk = self.work / "disk"
        disk.mkdir()
        probe = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c",
                                f"mount -t tmpfs -o size=4k tmpfs {shlex.quote(str(disk))}"],
                               capture_output=True, text=True) if shutil.which("unshare") else None
        runs = [("simulate in 16 KiB", 16, [*simulate, "--out", str(disk / "run")]),
                ("simulate in 2 MiB", 2048, [*simulate, "--out", str(disk / "run")]),
                ("benchmark in 2 MiB", 2048, [*bench, "--out", str(disk / "grid")]),
                ("label init in 64 KiB", 64, ["label", "init", str(disk / "proj"), "--images",
                                              str(self.images), "--classes", str(self.classes),
                                              "--model", str(self.theta0), "--preset",
                                              "synthetic-tiny", "--quiet"])]
        for what, kib, args in runs:
            if probe is None or probe.returncode != 0:
                self.skip("full-disk", what, "no size-limited file system can be made here")
                continue
            wrap = ["unshare", "--map-root-user", "--mount", "sh", "-c",
                    f"mount -t tmpfs -o size={kib}k tmpfs {shlex.quote(str(disk))} && exec "]
            self.case("full-disk", what, args, ("no space left on the device",), wrap=wrap)


def hostile_cases(work: Path, finished: dict[str, Path], simulate: list[str],
                  bench: list[str], groups: tuple[str, ...] = GROUPS,
                  say: Callable[[str], None] = print) -> list[dict]:
    """Run the hostile cases of ``groups`` (module docs) against the finished reference runs."""
    h = Hostile(work / "hostile", finished, say)
    h.setup_images()
    steps = {"symlink": lambda: h.symlink(simulate, bench), "huge-weight": h.huge_weight,
             "foreign-export": h.foreign_export, "dtype": h.dtype, "fifo": h.fifo,
             "full-disk": lambda: h.full_disk(simulate, bench)}
    for group in groups:
        done = len(h.cases)
        steps[group]()
        say(f"hostile {group}: {len(h.cases) - done} cases")
    return h.cases
