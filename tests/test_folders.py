"""Folders that fight back: a copied run directory or project whose ``.lock``, files or sub-folders
are links, FIFOs or hard links is refused with one line, and nothing outside it is written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ralis.errors import ConfigError
from ralis.run.rundir import RunLockedError, lock_dir, unlock_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def victim(tmp_path):
    """A file outside the folder that a link points to; it must keep its bytes."""
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_text("do not touch\n")
    return path


def test_a_linked_lock_is_refused_and_its_target_kept(tmp_path, victim):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with pytest.raises(ConfigError, match=r"\.lock is a symbolic link"):
        lock_dir(run, "simulate:random")
    assert victim.read_text() == "do not touch\n"


def test_a_dangling_lock_link_creates_nothing(tmp_path):
    run, target = tmp_path / "run", tmp_path / "elsewhere" / "made.txt"
    run.mkdir()
    target.parent.mkdir()
    (run / ".lock").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        lock_dir(run, "simulate:random")
    assert not target.exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "hard link"])
def test_a_lock_that_is_not_a_plain_file_of_its_own_is_refused(tmp_path, victim, kind):
    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".lock"
    if kind == "fifo":
        os.mkfifo(lock)
    elif kind == "folder":
        lock.mkdir()
    else:
        os.link(victim, lock)
    with pytest.raises(ConfigError, match=r"\.lock is (not a regular file|a hard link)"):
        lock_dir(run, "simulate:random")
    assert victim.read_text() == "do not touch\n"


def test_the_lock_file_is_never_truncated(tmp_path):
    """The holder is written over the file's first bytes and blanked on release; whatever
    follows stays (a lock is never emptied: an emptied file was how a link did harm)."""
    run = tmp_path / "run"
    run.mkdir()
    tail = b"x" * 5000
    (run / ".lock").write_bytes(tail)
    lock_dir(run, "simulate:random")
    held = (run / ".lock").read_bytes()
    assert b'"command": "simulate:random"' in held[:1024] and held[1024:] == tail[1024:]
    unlock_dir(run)
    released = (run / ".lock").read_bytes()
    assert len(released) == 5000 and released[:1024].strip() == b""


def test_a_linked_subfolder_or_file_is_refused(tmp_path, victim):
    run = tmp_path / "run"
    (run / "rounds").mkdir(parents=True)
    (run / "rounds" / "3").symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(ConfigError, match=r"rounds/3 is a symbolic link \(to .*outside\)"):
        lock_dir(run, "label next")
    (run / "rounds" / "3").unlink()
    (run / "run.sqlite").symlink_to(victim)
    with pytest.raises(ConfigError, match=r"run\.sqlite is a symbolic link"):
        lock_dir(run, "simulate:random")
    (run / "run.sqlite").unlink()
    lock_dir(run, "simulate:random")  # nothing linked any more: fine
    unlock_dir(run)
    assert victim.read_text() == "do not touch\n"


def test_the_folder_itself_may_be_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "named").symlink_to(real, target_is_directory=True)
    lock_dir(tmp_path / "named", "simulate:random")
    unlock_dir(tmp_path / "named")


def test_a_busy_folder_names_its_holder(tmp_path):
    code = ("import time; from ralis.run.rundir import lock_dir; "
            f"lock_dir({str(tmp_path)!r}, 'simulate:entropy'); print('locked', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "locked"
        start = time.time()
        with pytest.raises(RunLockedError, match=rf"in use by process {proc.pid} .*--out"):
            lock_dir(tmp_path, "simulate:entropy")
        assert time.time() - start < 5
    finally:
        proc.kill()
        proc.wait()


def test_simulate_refuses_a_linked_pretrain_folder(monkeypatch, capsys, tmp_path, victim):
    from tests.cli_helpers import run_cli

    run = tmp_path / "run"
    run.mkdir()
    (run / "pretrain").symlink_to(victim.parent, target_is_directory=True)
    code, _, err = run_cli(monkeypatch, capsys, "simulate", "--strategy", "random", "--budgets",
                           "8", "--out", str(run), "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "pretrain is a symbolic link" in err
    assert sorted(victim.parent.iterdir()) == [victim]  # no θ0 written there
