"""Files that are not what they claim: a dtype ralis never writes, a FIFO or a device given as a
file, a file longer than its header says, a CSV given to `ralis inspect`. Each is one line, read
from the header and the file's type before anything else, without reading without bound."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ralis.files.safe import FileFormatError, load_file, read_header, save_file
from ralis.models import create_model, load_model, save_model
from tests.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def ralis(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m ralis ARGS`` with 2 GB of address space: a loader that reads without bound
    fails instead of filling the machine's memory."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([sys.executable, "-m", "ralis", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, preexec_fn=limit)


def one_line(out: subprocess.CompletedProcess) -> str:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def set_dtype(path: Path, dtype: str, shape: list[int]) -> None:
    """Rewrite the header's first tensor to ``dtype`` and ``shape`` (bytes kept)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name].update(dtype=dtype, shape=shape)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])


@pytest.mark.parametrize("dtype", ["F4", "F6_E2M3", "F8_E8M0", "F8_E4M3", "U16", "C64"])
def test_a_dtype_ralis_never_writes_is_refused_from_the_header(tmp_path, dtype, monkeypatch,
                                                               capsys):
    path = tmp_path / "m.safetensors"
    save_file(path, {"w": torch.arange(4.0)}, "model", {})
    set_dtype(path, dtype, [16])
    for read in (lambda: load_file(path, "model"), lambda: read_header(path)):
        with pytest.raises(FileFormatError, match=f"dtype {dtype}, which ralis never writes"):
            read()
    code, _, err = run_cli(monkeypatch, capsys, "inspect", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"dtype {dtype}" in err


def test_every_dtype_ralis_writes_loads(tmp_path):
    tree = {str(t): torch.zeros(3, dtype=t) for t in (
        torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
        torch.int16, torch.int8, torch.uint8, torch.bool)}
    save_file(tmp_path / "f.safetensors", tree, "checkpoint", {})
    out, _ = load_file(tmp_path / "f.safetensors", "checkpoint")
    assert {k: v.dtype for k, v in out.items()} == {k: v.dtype for k, v in tree.items()}


def test_a_file_longer_than_its_header_says_is_refused(tmp_path):
    path = save_model(tmp_path / "m.safetensors", create_model("fpn_small", 2, fpn_dim=8,
                                                               head_dim=4), "fpn_small", 2,
                      {"fpn_dim": 8, "head_dim": 4})
    path.write_bytes(path.read_bytes() + b"\0" * 100)
    with pytest.raises(FileFormatError, match="damaged: its header announces"):
        load_model(path)


def test_inspect_on_a_fifo_answers_at_once(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    assert "is not a regular file" in one_line(ralis("inspect", str(fifo), timeout=60))


def test_a_device_as_a_model_file_is_refused_without_reading_it(tmp_path):
    out = ralis("simulate", "--strategy", "random", "--budgets", "8", "--pretrained",
                "/dev/zero", "--out", str(tmp_path / "run"), "--quiet", timeout=300)
    assert "is not a regular file" in one_line(out)


def test_inspect_on_a_csv_says_what_it_is(tmp_path, monkeypatch, capsys):
    csv = tmp_path / "results.csv"
    csv.write_text("strategy,seed,regions,miou\nrandom,0,8,0.25\n")
    code, _, err = run_cli(monkeypatch, capsys, "inspect", str(csv))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "is not a ralis safetensors file" in err and "larger than" not in err
