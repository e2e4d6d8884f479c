"""The command line: smoke runs and every bad input -> one line on stderr, exit 2, no traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import run_cli
from PIL import Image

TINY = ["--preset", "synthetic-tiny", "--quiet"]


def write_folder_dataset(root, size=(24, 32), mask_size=None, bad_value=None, corrupt=None):
    """A 3-split folder dataset with 2 classes; optional defects."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 2), ("test", 2)):
        (root / "img" / split).mkdir(parents=True)
        (root / "lbl" / split).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
            mask = (rng.random(mask_size or size) > 0.5).astype(np.uint8)
            if bad_value is not None and split == "train" and i == 0:
                mask[0, 0] = bad_value
            Image.fromarray(img).save(root / "img" / split / f"{i}.png")
            Image.fromarray(mask).save(root / "lbl" / split / f"{i}.png")
    if corrupt:
        (root / "img" / "train" / "0.png").write_bytes(b"not a png at all")
    (root / "ralis-dataset.json").write_text(json.dumps({
        "classes": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
        "ignore_index": 255,
        "splits": {s: {"images": f"img/{s}/*.png", "masks": f"lbl/{s}/{{stem}}.png"}
                   for s in ("train", "val", "test")},
    }))
    return root


FOLDER = ["--dataset", "folder", "--region-size", "12x16", "--set", "data.state_images=1",
          "--set", "data.dqn_train_images=2", "--set", "data.pool_images=5", "--budgets", "4"]


@pytest.mark.parametrize("args, needle", [
    (["simulate", *TINY, "--strategy", "coreset"], "valid names: bald, entropy"),
    (["simulate", *TINY, "--set", "model.name=unet9"], "valid names: fpn_effl0, fpn_resnet18"),
    (["simulate", *TINY, "--budgets", "8,999999"], "larger than the pool"),
    (["simulate", *TINY, "--region-size", "100x100"], "larger than the image"),
    (["simulate", *TINY, "--set", "train.lr=-1"], "learning rates"),
    (["simulate", *TINY, "--dataset", "camvid", "--data-root", "/nonexistent/camvid"],
     "SegNet layout"),
    (["pretrain", *TINY, "--preset", "nope"], "valid names: camvid-cpu"),
    (["simulate", *TINY, "--strategy", "entropy", "--policy", "p.safetensors"],
     "--policy is only used by --strategy ralis"),
    (["simulate", *TINY, "--set", "train.lr=inf"], "train.lr must be a finite number"),
    (["simulate", *TINY, "--data-root", "/somewhere"], "--dataset folder"),
])
def test_user_mistakes_give_one_line_and_exit_2(monkeypatch, capsys, tmp_path, args, needle):
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", str(tmp_path / "run"))
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("defect, needle", [
    ({"mask_size": (20, 32)}, "same size"),
    ({"bad_value": 7}, "outside 0..1"),
    ({"corrupt": True}, "corrupt"),
])
def test_bad_dataset_files(monkeypatch, capsys, tmp_path, defect, needle):
    root = write_folder_dataset(tmp_path / "ds", **defect)
    code, _, err = run_cli(monkeypatch, capsys, "simulate", *TINY, *FOLDER,
                           "--data-root", str(root), "--out", str(tmp_path / "run"))
    assert code == 2 and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_report_refuses_a_foreign_csv(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    code, _, err = run_cli(monkeypatch, capsys, "report", str(bad), "--out", str(tmp_path / "r"))
    assert code == 2 and "not a ralis results table" in err and "Traceback" not in err


def test_missing_folder_description(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "simulate", *TINY, "--dataset", "folder",
                           "--data-root", str(tmp_path / "nothing"), "--out", str(tmp_path / "r"))
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_simulate_on_a_user_folder_dataset(monkeypatch, capsys, tmp_path):
    root = write_folder_dataset(tmp_path / "ds")
    code, out, err = run_cli(monkeypatch, capsys, "simulate", *TINY, *FOLDER,
                             "--data-root", str(root), "--out", str(tmp_path / "run"))
    assert code == 0, err
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["dataset"] == "folder" and res["budgets"][0]["regions"] == 4
    assert set(res["budgets"][0]["iou"]) == {"a", "b"}


def test_module_entry_point_help_and_error_without_traceback(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "ralis", "simulate", "--help"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "--strategy" in ok.stdout and "--budgets" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "ralis", "simulate", "--strategy", "nope",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: unknown strategy 'nope'")


def test_out_that_is_a_file(monkeypatch, capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    for out in (tmp_path / "f", tmp_path / "f" / "below"):
        code, _, err = run_cli(monkeypatch, capsys, "pretrain", *TINY, "--out", str(out))
        assert code == 2 and err.startswith("error: ") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_resume_from_the_command_line_checks_only_what_was_said(monkeypatch, capsys, tmp_path):
    out = str(tmp_path / "run")
    code, _, err = run_cli(monkeypatch, capsys, "simulate", *TINY, "--seed", "2", "--out", out)
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "simulate", "--quiet", "--seed", "5",
                           "--set", "train.lr=0.5", "--out", out, "--resume")
    assert code == 2 and "seed: stored 2, given 5; train.lr: stored 0.01, given 0.5" in err
    code, stdout, err = run_cli(monkeypatch, capsys, "simulate", "--quiet", "--out", out,
                                "--resume")  # nothing said: the stored run continues
    assert code == 0 and "seed 2" in stdout


@pytest.mark.parametrize("command", ["demo", "pretrain", "simulate", "upper-bound",
                                     "train-agent", "benchmark", "report", "inspect", "convert",
                                     "data check"])
def test_help_fits_80_columns(command):
    env = {**__import__("os").environ, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    res = subprocess.run([sys.executable, "-m", "ralis", *command.split(), "--help"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = " ".join(" ".join(line.strip(" │╭╮╰╯─").split()) for line in lines)
    assert "…" not in text  # nothing cut off
    if command in ("pretrain", "simulate", "upper-bound", "train-agent", "benchmark"):
        assert "runs/" in text  # the default --out is stated


@pytest.mark.parametrize("args", [["inspect", "/nonexistent/model.safetensors"],
                                  ["convert", "/nonexistent/model.pt"]])
def test_file_commands_on_missing_files(monkeypatch, capsys, args):
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and err.startswith("error: file not found") and "Traceback" not in err


def test_resume_takes_the_strategy_and_data_of_the_run(monkeypatch, capsys, tmp_path):
    root = write_folder_dataset(tmp_path / "ds")
    out = str(tmp_path / "run")
    code, _, err = run_cli(monkeypatch, capsys, "simulate", *TINY, *FOLDER, "--strategy",
                           "entropy", "--data-root", str(root), "--out", out)
    assert code == 0, err
    # no --strategy: the run's; the same --data-root (here relative) is accepted
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli(monkeypatch, capsys, "simulate", "--quiet", "--dataset",
                                "folder", "--data-root", "ds", "--out", out, "--resume")
    assert code == 0, err
    assert "entropy" in stdout
