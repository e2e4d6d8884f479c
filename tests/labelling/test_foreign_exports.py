"""Exports that are not this project's: another project's (by the id every export carries), one
that labels none of the requested regions, Label Studio image URLs outside the images folder,
COCO polygons too large to rasterise. Each is a one-line error that changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ralis.labelling.annotator import answer_round
from ralis.labelling.project import open_project
from tests.cli_helpers import run_cli
from tests.labelling.conftest import ledger_rows
from tests.labelling.test_label_cli import TINY, init, one_line_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fmt", ["labelstudio", "coco", "cvat"])
def test_another_projects_export_is_refused(monkeypatch, capsys, tmp_path, tiny_project_inputs,
                                            fmt):
    images, classes, theta0, truth = tiny_project_inputs
    roots = []
    for name in ("proj", "proj2"):
        code, _, err = run_cli(monkeypatch, capsys, "label", "init", str(tmp_path / name),
                               "--images", str(images), "--classes", str(classes), "--model",
                               str(theta0), *TINY, "--quiet")
        assert code == 0, err
        code, _, err = run_cli(monkeypatch, capsys, "label", "next", str(tmp_path / name),
                               "--regions", "6", "--strategy", "random", "--format", fmt,
                               "--quiet")
        assert code == 0, err
        roots.append(tmp_path / name)
    with open_project(roots[1], "test") as p:  # the same regions: only the id tells them apart
        answer = answer_round(p, 1, truth.__getitem__, fmt,
                              tmp_path / f"answer.{'xml' if fmt == 'cvat' else 'json'}")
    before = ledger_rows(roots[0])
    err = one_line_error(monkeypatch, capsys, "label", "import", str(roots[0]), str(answer))
    assert "another labelling project" in err and "proj2" in err
    assert ledger_rows(roots[0]) == before
    code, out, err = run_cli(monkeypatch, capsys, "label", "import", str(roots[1]), str(answer))
    assert code == 0 and "6 regions labelled" in out, err


def test_an_export_that_labels_no_requested_region_is_refused(monkeypatch, capsys, project,
                                                              tmp_path, tiny_project_inputs):
    truth = tiny_project_inputs[3]
    with open_project(project, "test") as p:
        asked = p.ledger.requests(1)
    name = asked[0]["name"]
    mask = truth[name].copy()
    for r in asked:
        if r["name"] == name:
            mask[r["top"]:r["top"] + r["height"], r["left"]:r["left"] + r["width"]] = 255
    folder = tmp_path / "masks"
    folder.mkdir()
    Image.fromarray(mask.astype(np.uint8)).save(folder / name)
    before = ledger_rows(project)
    err = one_line_error(monkeypatch, capsys, "label", "import", str(project), str(folder))
    assert "labels none of the requested regions" in err
    assert ledger_rows(project) == before


@pytest.mark.parametrize("url", ["../elsewhere/img_000.png", "/home/someone/img_000.png",
                                 "/data/local-files/?d=../img_000.png",
                                 "/data/local-files/?d=/etc/img_000.png",
                                 "file:///tmp/img_000.png"])
def test_label_studio_image_urls_outside_the_images_are_refused(monkeypatch, capsys, tmp_path,
                                                                tiny_project_inputs, url):
    assert init(monkeypatch, capsys, tmp_path, tiny_project_inputs)[0] == 0
    root = tmp_path / "proj"
    assert run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "144",
                   "--strategy", "random", "--format", "labelstudio", "--quiet")[0] == 0
    with open_project(root, "test") as p:
        answer = answer_round(p, 1, tiny_project_inputs[3].__getitem__, "labelstudio",
                              tmp_path / "ls.json")
    tasks = json.loads(answer.read_text())
    task = next(t for t in tasks if t["data"]["ralis_image"] == "img_000.png")
    for key in [k for k in task["data"] if k.startswith("ralis_")]:
        del task["data"][key]
    task["data"]["image"] = url
    answer.write_text(json.dumps([task]))
    err = one_line_error(monkeypatch, capsys, "label", "import", str(root), str(answer))
    assert "points outside the images folder" in err


@pytest.mark.parametrize("points, what", [(200_000, "polygon points"),
                                          (40_000, "outlines are")])
def test_a_coco_polygon_too_large_to_rasterise_is_refused(project, tmp_path, points, what):
    """200,000 points (or a zig-zag whose outline is millions of pixels long) made pycocotools
    try to allocate tens of GB and crash; ralis bounds the work per annotation first."""
    with open_project(project, "test") as p:
        name = p.ledger.requests(1)[0]["name"]
        info = p.infos[name]
    span = 3 * (info.height + info.width)  # inside the coordinate bound, far outside the image
    xs = np.where(np.arange(points) % 2, span, -span).astype(float)
    ys = np.linspace(0, info.height, points)
    polygon = np.stack([xs, ys], axis=1).ravel().tolist()
    doc = {"images": [{"id": 1, "file_name": name, "width": info.width, "height": info.height}],
           "categories": [{"id": 1, "name": "sky"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                            "segmentation": [polygon]}]}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(doc))
    before = ledger_rows(project)
    out = subprocess.run([sys.executable, "-m", "ralis", "label", "import", str(project),
                          str(path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and what in lines[0] and "annotations[0]" in lines[0], out.stderr
    assert ledger_rows(project) == before
