"""``ralis label`` from the command line: the loop, status --json, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ralis.labelling.annotator import answer_round
from ralis.labelling.project import open_project
from tests.cli_helpers import run_cli

TINY = ["--preset", "synthetic-tiny", "--set", "train.batch_size=4"]


def init(monkeypatch, capsys, tmp_path, inputs, *extra):
    images, classes, theta0, _ = inputs
    return run_cli(monkeypatch, capsys, "label", "init", str(tmp_path / "proj"), "--images",
                   str(images), "--classes", str(classes), "--model", str(theta0), *TINY,
                   "--quiet", *extra)


def status(monkeypatch, capsys, root) -> dict:
    code, out, err = run_cli(monkeypatch, capsys, "label", "status", str(root), "--json")
    assert code == 0, err
    return json.loads(out)


def test_loop_from_the_command_line(monkeypatch, capsys, tmp_path, tiny_project_inputs):
    code, out, err = init(monkeypatch, capsys, tmp_path, tiny_project_inputs)
    assert code == 0, err
    root = tmp_path / "proj"
    s = status(monkeypatch, capsys, root)
    assert (s["images"], s["regions"], s["requested"], s["labelled"]) == (12, 144, 0, 0)
    code, out, err = run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "6",
                             "--strategy", "entropy", "--format", "coco", "--quiet")
    assert code == 0, err
    rnd = root / "rounds" / "1"
    assert {"requests.csv", "preview.png", "coco_requests.json"} <= {p.name for p in
                                                                     rnd.iterdir()}
    rows = (rnd / "requests.csv").read_text().splitlines()
    assert rows[0] == "image,region,top,left,height,width" and len(rows) == 7
    assert Image.open(rnd / "preview.png").size[0] > 0
    truth = tiny_project_inputs[3]
    with open_project(root, "test") as p:
        answer = answer_round(p, 1, truth.__getitem__, "coco", tmp_path / "export.json")
    code, out, err = run_cli(monkeypatch, capsys, "label", "import", str(root), str(answer))
    assert code == 0, err and "6 regions labelled" in out
    s = status(monkeypatch, capsys, root)
    assert (s["requested"], s["labelled"], s["pending"]) == (6, 6, 0)
    assert sum(s["pixels_per_class"].values()) == sum(
        int((truth[r[0]] != 255)[int(r[2]):int(r[2]) + int(r[4]), int(r[3]):int(r[3]) + int(r[5])]
            .sum()) for r in (line.split(",") for line in rows[1:]))
    # the same file again is a no-op
    code, out, _ = run_cli(monkeypatch, capsys, "label", "import", str(root), str(answer))
    assert code == 0 and "already imported" in out
    code, out, err = run_cli(monkeypatch, capsys, "label", "train", str(root), "--quiet")
    assert code == 0 and "model version 1" in out, err
    assert (root / "models" / "v0001.safetensors").is_file()
    s = status(monkeypatch, capsys, root)
    assert [m["version"] for m in s["models"]] == [0, 1] and s["models"][1]["labelled"] == 6
    code, out, _ = run_cli(monkeypatch, capsys, "label", "train", str(root))
    assert code == 0 and "nothing new" in out
    # the next round never asks for a labelled region again
    code, _, err = run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "138",
                           "--strategy", "random", "--quiet")
    assert code == 0, err
    s = status(monkeypatch, capsys, root)
    assert (s["requested"], s["pending"], s["unrequested"]) == (144, 138, 0)


def test_conflicting_label_needs_replace_and_keeps_the_old(monkeypatch, capsys, tmp_path,
                                                            tiny_project_inputs):
    assert init(monkeypatch, capsys, tmp_path, tiny_project_inputs)[0] == 0
    root, truth = tmp_path / "proj", tiny_project_inputs[3]
    assert run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "3",
                   "--strategy", "random", "--quiet")[0] == 0
    with open_project(root, "test") as p:
        first = answer_round(p, 1, truth.__getitem__, "png", tmp_path / "a")
        other = {k: np.where(v == 255, v, (v + 1) % 11) for k, v in truth.items()}
        second = answer_round(p, 1, other.__getitem__, "png", tmp_path / "b")
    assert run_cli(monkeypatch, capsys, "label", "import", str(root), str(first))[0] == 0
    code, _, err = run_cli(monkeypatch, capsys, "label", "import", str(root), str(second))
    assert code == 2 and "already labelled" in err and "--replace" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_cli(monkeypatch, capsys, "label", "import", str(root), str(second),
                             "--replace")
    assert code == 0 and "3 replaced" in out, err
    with open_project(root, "test") as p:
        rows = p.ledger.rows("SELECT region_id, active, replaced_by FROM labels ORDER BY id")
    assert [r["active"] for r in rows] == [0, 0, 0, 1, 1, 1]
    assert all(r["replaced_by"] == 2 for r in rows[:3])


def one_line_error(monkeypatch, capsys, *args) -> str:
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_project_inputs(monkeypatch, capsys, tmp_path, tiny_project_inputs):
    images, classes, theta0, _ = tiny_project_inputs
    (tmp_path / "empty").mkdir()
    err = one_line_error(monkeypatch, capsys, "label", "init", str(tmp_path / "p1"), "--images",
                         str(tmp_path / "empty"), "--classes", str(classes))
    assert "holds no images" in err
    dup = tmp_path / "dup.yaml"
    dup.write_text("classes:\n- {name: a, id: 0}\n- {name: b, id: 0}\nignore_index: 255\n")
    err = one_line_error(monkeypatch, capsys, "label", "init", str(tmp_path / "p2"), "--images",
                         str(images), "--classes", str(dup))
    assert "class id 0 is used twice" in err
    assert not (tmp_path / "p1").exists() and not (tmp_path / "p2").exists()
    assert init(monkeypatch, capsys, tmp_path, tiny_project_inputs)[0] == 0
    root = tmp_path / "proj"
    err = one_line_error(monkeypatch, capsys, "label", "next", str(root), "--regions", "145")
    assert "more than the 144 regions left" in err
    assert run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "2",
                   "--strategy", "random", "--quiet")[0] == 0
    err = one_line_error(monkeypatch, capsys, "label", "next", str(root), "--regions", "143")
    assert "142 regions left" in err and "--include-pending" in err
    with open_project(root, "test") as p:
        asked = {r["name"] for r in p.ledger.requests()}
    never = next(n for n in sorted(tiny_project_inputs[3]) if n not in asked)
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(masks / never)
    err = one_line_error(monkeypatch, capsys, "label", "import", str(root), str(masks))
    assert "has no requested region" in err
    (masks / never).unlink()
    name = sorted(asked)[0]
    Image.fromarray(np.zeros((40, 64), np.uint8)).save(masks / name)
    err = one_line_error(monkeypatch, capsys, "label", "import", str(root), str(masks))
    assert "native size" in err and "40x64 (HxW)" in err
    Image.fromarray(np.full((48, 64), 40, np.uint8)).save(masks / name)
    err = one_line_error(monkeypatch, capsys, "label", "import", str(root), str(masks))
    assert "40" in err
    (masks / name).unlink()
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(masks / "unknown.png")
    err = one_line_error(monkeypatch, capsys, "label", "import", str(root), str(masks))
    assert "no image unknown" in err
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "../images/" + name, "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "sky"}], "annotations": []}))
    err = one_line_error(monkeypatch, capsys, "label", "import", str(root), str(outside))
    assert "points outside the images folder" in err
    with open_project(root, "test") as p:
        assert p.ledger.scalar("SELECT COUNT(*) FROM imports") == 0  # nothing was written
    err = one_line_error(monkeypatch, capsys, "label", "status", str(tmp_path / "nothing"))
    assert "not a labelling project" in err


@pytest.mark.parametrize("fmt", ["labelstudio", "cvat", "coco", "png"])
def test_every_format_exports(monkeypatch, capsys, tmp_path, tiny_project_inputs, fmt):
    assert init(monkeypatch, capsys, tmp_path, tiny_project_inputs)[0] == 0
    root = tmp_path / "proj"
    code, out, err = run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "4",
                             "--strategy", "random", "--format", fmt, "--quiet")
    assert code == 0, err
    s = status(monkeypatch, capsys, root)
    files = s["rounds"][0]["files"]
    assert "rounds/1/requests.csv" in files and "rounds/1/preview.png" in files
    assert all((root / f).is_file() for f in files) and len(files) >= 3 - (fmt == "png")


def test_first_round_without_a_model_is_random(monkeypatch, capsys, tmp_path,
                                               tiny_project_inputs):
    images, classes, _, _ = tiny_project_inputs
    code, _, err = run_cli(monkeypatch, capsys, "label", "init", str(tmp_path / "proj"),
                           "--images", str(images), "--classes", str(classes), *TINY, "--quiet")
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "label", "next", str(tmp_path / "proj"),
                             "--regions", "4", "--strategy", "entropy", "--quiet")
    assert code == 0 and "this round is random" in out, err
    s = status(monkeypatch, capsys, tmp_path / "proj")
    assert s["rounds"][0]["strategy"] == "random" and not s["models"][0]["trained"]


def test_ralis_policy_picks_regions_in_a_project(monkeypatch, capsys, tmp_path, tiny_proto,
                                                 tiny_project_inputs):
    from ralis.config import get_preset
    from ralis.loop.agent import train_agent

    train_agent(get_preset("synthetic-tiny"), tmp_path / "agent", progress=False,
                proto=tiny_proto)
    policy = tmp_path / "agent" / "policy.safetensors"
    assert init(monkeypatch, capsys, tmp_path, tiny_project_inputs)[0] == 0
    root, truth = tmp_path / "proj", tiny_project_inputs[3]
    code, out, err = run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "4",
                             "--strategy", "ralis", "--policy", str(policy), "--quiet")
    assert code == 0, err
    with open_project(root, "test") as p:
        answer = answer_round(p, 1, truth.__getitem__, "png", tmp_path / "ans")
    assert run_cli(monkeypatch, capsys, "label", "import", str(root), str(answer))[0] == 0
    # a second round reads the labels' class distributions (the policy's KL features)
    code, _, err = run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "4",
                           "--strategy", "ralis", "--policy", str(policy), "--quiet")
    assert code == 0, err
    s = status(monkeypatch, capsys, root)
    assert [r["strategy"] for r in s["rounds"]] == ["ralis", "ralis"]
    assert (s["requested"], s["labelled"], s["pending"]) == (8, 4, 4)


LIGHT = """
import sys
from ralis.cli import main
sys.argv = ["ralis", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("torch imported:", "torch" in sys.modules, "numpy imported:", "numpy" in sys.modules,
      file=sys.stderr)
"""


def test_read_only_commands_do_not_import_torch(monkeypatch, capsys, tmp_path,
                                                 tiny_project_inputs):
    """`label status`, `inspect`, `--help` and argument errors read files only: no torch (4 s
    of imports on a loaded machine), not even numpy, before they answer."""
    import subprocess
    import sys

    code, _, err = init(monkeypatch, capsys, tmp_path, tiny_project_inputs)
    assert code == 0, err
    theta0 = tiny_project_inputs[2]
    for args in (["label", "status", str(tmp_path / "proj"), "--json"],
                 ["label", "status", str(tmp_path / "proj")], ["inspect", str(theta0)],
                 ["--help"], ["label", "next", "--help"], ["simulate", "--seed", "x"]):
        res = subprocess.run([sys.executable, "-c", LIGHT, *args], capture_output=True,
                             text=True)
        assert "torch imported: False numpy imported: False" in res.stderr, (args, res.stderr)
    res = subprocess.run([sys.executable, "-c", LIGHT, "label", "status", str(tmp_path / "proj"),
                          "--json"], capture_output=True, text=True)
    assert json.loads(res.stdout)["images"] == 12
