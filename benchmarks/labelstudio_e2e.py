"""End to end with a real Label Studio server on localhost: ralis's tasks in, annotations through
the API, the server's export back into ralis, pixel for pixel.

Usage (with ralis's own venv; the server runs from its own venv, created when missing)::

    .venv/bin/python benchmarks/labelstudio_e2e.py --standalone   # the format module alone
    .venv/bin/python benchmarks/labelstudio_e2e.py                # through `ralis label ...`

What it does:

1. ``.venv-ls`` (``--server-venv``): a venv with ``label-studio==1.23.2`` and
   ``label-studio-sdk==2.1.2``, installed from the package registry when missing (minutes);
2. synthetic images (PNG, non-square) and their ground truth, in a temporary folder that is the
   server's local-files document root (``<tmp>/root/images``);
3. ``label-studio start --no-browser`` on ``--port`` with ``LABEL_STUDIO_BASE_DATA_DIR`` in the
   temporary folder, legacy API tokens on and local-files serving on; waits for ``/health``;
4. ralis's requests: ``--standalone`` builds an ExportContext by hand (with a fake model
   prediction, so the tasks carry brush pre-annotations) and calls ``export_requests``; the
   default mode runs ``ralis label init`` and ``ralis label next --format labelstudio``;
5. a project with ralis's ``labelstudio_config.xml``, a local-files storage on the images folder
   (the URL ralis writes by default, ``/data/local-files/?d=images/<name>``, is checked to serve
   the PNG), ralis's ``labelstudio_tasks.json`` imported as is;
6. the scripted annotator: per task, a wrong annotation, then the right one (the request boxes +
   one brush RLE per ground-truth class inside the boxes, ignore pixels unpainted), then a
   cancelled one with other wrong labels, all through ``POST /api/tasks/{id}/annotations``;
   the latest non-cancelled (the right one) must win;
7. ``GET /api/projects/{id}/export?exportType=JSON`` (and ``JSON_MIN``), imported with
   ``import_labels`` (and ``ralis label import`` + ``ralis label status --json``); labels must
   equal the ground truth inside the requested boxes and be unlabelled outside.

It prints a one-line summary, e.g. ``labelstudio e2e: 3 images, 6 regions, 0 pixel
differences``, and exits 1 on any difference. ``--keep`` keeps the temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ralis.data.base import ClassInfo  # noqa: E402
from ralis.labelling.formats import (  # noqa: E402
    ExportContext,
    ImageInfo,
    ImportContext,
    RequestBox,
    get_format,
)
from ralis.labelling.formats import labelstudio as ls  # noqa: E402

LS_VERSION, SDK_VERSION = "1.23.2", "2.1.2"
CLASSES = ClassInfo(("road", "car", "sky"), 255, ((128, 64, 128), (0, 0, 142), (70, 130, 180)))


def say(text: str) -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------- server


def ensure_server_venv(venv: Path) -> Path:
    exe = venv / "bin" / "label-studio"
    if exe.exists():
        return exe
    say(f"installing label-studio=={LS_VERSION} into {venv} (a few minutes)")
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LS_VERSION}",
                    f"label-studio-sdk=={SDK_VERSION}"], check=True)
    return exe


class Server:
    """A Label Studio process on localhost, with a user and its legacy API token."""

    def __init__(self, exe: Path, port: int, data_dir: Path, document_root: Path, log: Path):
        self.url = f"http://localhost:{port}"
        self.token = secrets.token_hex(20)
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
               "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
               "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
               "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
               "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
        self.log = log
        self._log = open(log, "w")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            [str(exe), "start", "--no-browser", "--port", str(port), "--username",
             "e2e@ralis.local", "--password", secrets.token_hex(8), "--user-token", self.token],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 240.0) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited ({self.proc.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(2)
        raise RuntimeError(f"label-studio did not answer /health in {timeout:.0f} s; see "
                           f"{self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script started
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()

    def call(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                out = r.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:400].decode(errors="replace")
            raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        return out if raw else json.loads(out or b"null")


# ----------------------------------------------------------------------------- data


def synthetic(images: Path, sizes: list[tuple[int, int]], seed: int = 0
              ) -> dict[str, np.ndarray]:
    """PNG images with blobs of the classes; returns ground truth ``[H, W]`` per image name
    (class ids, 255 on a few unlabelled pixels)."""
    rng = np.random.default_rng(seed)
    images.mkdir(parents=True, exist_ok=True)
    colors = np.array(CLASSES.colors, dtype=np.int16)
    truth = {}
    for k, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[:h, :w]
        gt = np.zeros((h, w), dtype=np.int64)
        for c in (1, 2, 1, 2):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 8, h / 3)
            gt[(yy - cy) ** 2 + ((xx - cx) * 0.8) ** 2 < r * r] = c
        gt[rng.random((h, w)) < 0.01] = 255
        rgb = np.where((gt == 255)[..., None], 0, colors[np.minimum(gt, 2)])
        rgb = np.clip(rgb + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        name = f"img_{k}.png"
        Image.fromarray(rgb).save(images / name)
        truth[name] = gt
    return truth


def wrong_labels(gt: np.ndarray) -> np.ndarray:
    return np.where(gt == 255, 255, (gt + 1) % len(CLASSES.names))


# ----------------------------------------------------------------------------- ralis side


def standalone_export(images: Path, truth: dict[str, np.ndarray], out_dir: Path
                      ) -> tuple[list[RequestBox], dict[str, ImageInfo]]:
    infos = {n: ImageInfo(n, images / n, *g.shape) for n, g in truth.items()}
    boxes, rid = [], 0
    for name, gt in truth.items():
        h, w = gt.shape
        for top, left, bh, bw in [(2, 3, h // 3, w // 2), (h // 2, w // 3, h // 2 - 1, w // 2)]:
            boxes.append(RequestBox(rid, name, top, left, bh, bw))
            rid += 1
    rng = np.random.default_rng(1)
    model = {n: np.where(rng.random(g.shape) < 0.8, np.where(g == 255, 0, g), 1)
             for n, g in truth.items()}  # a noisy "model": pre-annotations to correct
    ctx = ExportContext("e2e", 1, CLASSES, infos, boxes, out_dir, None, model.get)
    get_format("labelstudio").export_requests(ctx)
    return boxes, infos


def ralis_cli(*args: str) -> str:
    cmd = [sys.executable, "-m", "ralis", "label", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed: {(done.stderr or done.stdout)[-800:]}")
    return done.stdout


def cli_export(tmp: Path, images: Path, regions: int) -> tuple[Path, list[RequestBox]]:
    classes = tmp / "classes.yaml"
    classes.write_text(json.dumps({"ignore_index": CLASSES.ignore_index, "classes": [
        {"name": n, "id": i, "color": list(c)}
        for i, (n, c) in enumerate(zip(CLASSES.names, CLASSES.colors, strict=True))]}))
    project = tmp / "project"
    ralis_cli("init", str(project), "--images", str(images), "--classes", str(classes),
              "--region-size", "24x32", "--quiet")
    ralis_cli("next", str(project), "--regions", str(regions), "--strategy", "random",
              "--format", "labelstudio", "--quiet")
    rounds = sorted((project / "rounds").iterdir(), key=lambda p: int(p.name))
    with open(rounds[-1] / "requests.csv") as f:
        boxes = [RequestBox(int(r["region"]), r["image"], int(r["top"]), int(r["left"]),
                            int(r["height"]), int(r["width"])) for r in csv.DictReader(f)]
    return rounds[-1], boxes


# ----------------------------------------------------------------------------- the check


def annotate(server: Server, project_id: int, truth: dict[str, np.ndarray],
             boxes: list[RequestBox]) -> int:
    """The scripted annotator through the API; returns the number of annotations posted."""
    tasks = server.call("GET", f"/api/tasks?project={project_id}&page_size=1000")
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    posted = 0
    for task in tasks:
        name = task["data"]["ralis_image"]
        gt = truth[name]
        h, w = gt.shape
        mine = [b for b in boxes if b.image == name]
        inside = ls._inside(mine, h, w)
        requests = [ls.request_result(b, h, w) for b in mine]
        for labels, cancelled in [(wrong_labels(gt), False), (gt, False),
                                  (wrong_labels(wrong_labels(gt)), True)]:
            result = requests + ls.brush_results(labels, inside, CLASSES.names, "brush")
            for r in result:  # Label Studio's editor gives every region a fresh id
                r["id"] = uuid.uuid4().hex[:10]
            server.call("POST", f"/api/tasks/{task['id']}/annotations",
                        {"result": result, "was_cancelled": cancelled, "lead_time": 1.5})
            posted += 1
            time.sleep(0.01)  # distinct created_at / updated_at
    return posted


def differences(labels: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                boxes: list[RequestBox]) -> int:
    diff = 0
    for name, gt in truth.items():
        mine = [b for b in boxes if b.image == name]
        if not mine:
            continue
        want = np.where(ls._inside(mine, *gt.shape), gt, 255)
        got = labels.get(name)
        diff += int(want.size if got is None else (got != want).sum())
    return diff


def run(args: argparse.Namespace, tmp: Path) -> int:
    exe = ensure_server_venv(Path(args.server_venv))
    doc_root = tmp / "root"
    images = doc_root / "images"
    sizes = [(72, 96), (64, 112), (88, 60)] if args.standalone else [(72, 96)] * 3
    truth = synthetic(images, sizes)
    server = Server(exe, args.port, tmp / "ls-data", doc_root, tmp / "server.log")
    try:
        say(f"label-studio {LS_VERSION} on {server.url}: answered /health after "
            f"{server.wait():.0f} s")
        if args.standalone:
            round_dir = tmp / "round"
            round_dir.mkdir()
            boxes, infos = standalone_export(images, truth, round_dir)
        else:
            round_dir, boxes = cli_export(tmp, images, args.regions)
            infos = {n: ImageInfo(n, images / n, *g.shape) for n, g in truth.items()}
        config = (round_dir / ls.CONFIG_FILE).read_text()
        tasks = json.loads((round_dir / ls.TASKS_FILE).read_text())
        project = server.call("POST", "/api/projects", {"title": "ralis e2e",
                                                         "label_config": config})
        server.call("POST", "/api/storages/localfiles", {
            "project": project["id"], "path": str(images), "title": "ralis images",
            "use_blob_urls": False})
        done = server.call("POST", f"/api/projects/{project['id']}/import", tasks)
        served = server.call("GET", tasks[0]["data"]["image"], raw=True)
        first = images / tasks[0]["data"]["ralis_image"]
        if served != first.read_bytes():
            raise RuntimeError(f"{tasks[0]['data']['image']} did not serve {first}")
        say(f"project {project['id']}: {done['task_count']} tasks, {done['prediction_count']} "
            f"predictions imported; {tasks[0]['data']['image']} serves the image")
        posted = annotate(server, project["id"], truth, boxes)
        exports = {}
        for kind in ("JSON", "JSON_MIN"):
            body = server.call("GET", f"/api/projects/{project['id']}/export?exportType={kind}",
                               raw=True)
            exports[kind] = tmp / f"export_{kind.lower()}.json"
            exports[kind].write_bytes(body)
        cancelled = sum(a.get("was_cancelled", False) for t in json.loads(
            exports["JSON"].read_text()) for a in t["annotations"])
        say(f"{posted} annotations posted; export JSON holds {cancelled} cancelled ones")
        fmt, ctx = get_format("labelstudio"), ImportContext(CLASSES, infos)
        diff = {}
        for kind, path in exports.items():
            labels = {i.name: i.labels for i in fmt.import_labels(path, ctx)}
            diff[kind] = differences(labels, truth, boxes)
        if not args.standalone:
            say(ralis_cli("import", str(tmp / "project"), str(exports["JSON"])).strip())
            status = json.loads(ralis_cli("status", str(tmp / "project"), "--json"))
            want = [0] * len(CLASSES.names)
            for b in boxes:
                crop = truth[b.image][b.top: b.top + b.height, b.left: b.left + b.width]
                for c in range(len(want)):
                    want[c] += int((crop == c).sum())
            got = [status["pixels_per_class"][n] for n in CLASSES.names]
            say(f"ralis label status: requested {status['requested']}, labelled "
                f"{status['labelled']}, pending {status['pending']}, pixels per class {got} "
                f"(ground truth {want})")
            diff["status"] = sum(abs(a - b) for a, b in zip(got, want, strict=True))
            diff["status"] += abs(status["labelled"] - len(boxes)) + status["pending"]
        say(f"pixel differences: {diff}")
    finally:
        server.stop()
    total = sum(diff.values())
    say(f"labelstudio e2e: {len(truth)} images, {len(boxes)} regions, {total} pixel differences"
        f" ({'standalone' if args.standalone else 'ralis label CLI'})")
    return 0 if total == 0 else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--standalone", action="store_true",
                    help="call the format module directly instead of `ralis label`")
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--regions", type=int, default=6, help="regions to request (CLI mode)")
    ap.add_argument("--server-venv", default=str(ROOT / ".venv-ls"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ralis-ls-e2e-"))
    try:
        code = run(args, tmp)
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
