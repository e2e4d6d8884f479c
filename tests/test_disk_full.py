"""A full disk is one line, not an ``OSError: [Errno 28]`` traceback: each command runs in a
mount namespace of its own with a small tmpfs as its output folder (nothing stays mounted),
skipped where such a file system cannot be made."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def on_small_disk(folder: Path, kib: int, *args: str) -> subprocess.CompletedProcess:
    """``python -m ralis ARGS`` with a ``kib`` KiB tmpfs mounted on ``folder``."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: cannot make a size-limited file system here")
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=4k tmpfs {shlex.quote(str(folder))}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({probe.stderr.strip()[:100]})")
    command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "ralis", *args))
    script = (f"mount -t tmpfs -o size={kib}k tmpfs {shlex.quote(str(folder))} && "
              f"cd {shlex.quote(str(ROOT))} && OMP_NUM_THREADS=1 exec {command}")
    return subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", script],
                          capture_output=True, text=True, timeout=600)


def assert_disk_full_line(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and out.stderr.strip().splitlines()[-1] == errors[0], out.stderr
    assert "no space left on the device" in errors[0] and "run the same command" in errors[0]


@pytest.mark.parametrize("kib", [16, 2048])  # the run's record, then θ0's checkpoint
def test_simulate_on_a_full_disk(tmp_path, kib):
    disk = tmp_path / "disk"
    assert_disk_full_line(on_small_disk(disk, kib, "simulate", "--strategy", "random",
                                        "--budgets", "8", "--out", str(disk / "run"),
                                        "--quiet"))


def test_benchmark_on_a_full_disk_names_the_cells(tmp_path):
    disk = tmp_path / "disk"
    out = on_small_disk(disk, 2048, "benchmark", "--strategies", "random", "--seeds", "0",
                        "--budgets", "8", "--no-upper-bound", "--quiet", "--out",
                        str(disk / "grid"))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "failed theta0: no space left on the device" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: ")

