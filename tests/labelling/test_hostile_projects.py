"""A labelling project copied between people: a linked ``.lock``, round folder or PNG answer is
refused with one line and nothing outside is written; a busy project says how to go on; a full
disk is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ralis.labelling.annotator import answer_round
from ralis.labelling.project import open_project
from tests.labelling.conftest import ledger_rows
from tests.labelling.test_label_cli import one_line_error
from tests.test_disk_full import assert_disk_full_line, on_small_disk

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_text("do not touch\n")
    return path


# --------------------------------------------------------------------------- links, the lock
def test_a_linked_lock_in_a_project_is_refused(monkeypatch, capsys, project, victim):
    (project / ".lock").unlink(missing_ok=True)
    (project / ".lock").symlink_to(victim)
    err = one_line_error(monkeypatch, capsys, "label", "status", str(project))
    assert ".lock is a symbolic link" in err
    assert victim.read_text() == "do not touch\n"


def test_a_linked_round_folder_is_refused(monkeypatch, capsys, project, victim):
    (project / "rounds" / "2").symlink_to(victim.parent, target_is_directory=True)
    err = one_line_error(monkeypatch, capsys, "label", "next", str(project), "--regions", "2",
                         "--strategy", "random", "--quiet")
    assert "rounds/2 is a symbolic link" in err
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.txt"]
    (project / "rounds" / "2").unlink()
    assert len(ledger_rows(project)["rounds"]) == 1  # nothing chosen


def test_png_answers_that_link_outside_are_refused(monkeypatch, capsys, project, tmp_path,
                                                  tiny_project_inputs):
    truth = tiny_project_inputs[3]
    with open_project(project, "test") as p:
        answer = answer_round(p, 1, truth.__getitem__, "png", tmp_path / "answer")
    first = sorted(answer.iterdir())[0]
    outside = tmp_path / "outside.png"
    first.rename(outside)
    first.symlink_to(outside)
    before = ledger_rows(project)
    err = one_line_error(monkeypatch, capsys, "label", "import", str(project), str(answer))
    assert f"{first.name} is a symbolic link" in err
    assert ledger_rows(project) == before


def test_a_busy_project_says_how_to_go_on(project):
    code = ("import time; from ralis.labelling.project import open_project; "
            f"p = open_project({str(project)!r}, 'label train'); print('locked', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "locked"
        out = subprocess.run([sys.executable, "-m", "ralis", "label", "status", str(project)],
                             capture_output=True, text=True, cwd=ROOT)
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode == 2 and "in use by process" in out.stderr, out.stderr
    assert "--out" not in out.stderr and "label train" in out.stderr


def test_label_init_on_a_full_disk(tmp_path, tiny_project_inputs):
    images, classes, theta0, _ = tiny_project_inputs
    disk = tmp_path / "disk"
    assert_disk_full_line(on_small_disk(
        disk, 64, "label", "init", str(disk / "proj"), "--images", str(images), "--classes",
        str(classes), "--model", str(theta0), "--preset", "synthetic-tiny", "--quiet"))
