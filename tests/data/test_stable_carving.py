"""A mask without an image is reported (data check and runs), and a carved split does not move
when an unrelated file appears or disappears: each image's split depends on that image alone."""

from __future__ import annotations

import numpy as np

from ralis.config import DataConfig
from ralis.data import create_dataset
from ralis.data.check import check_data
from ralis.data.protocol import load_protocol

from .conftest import save


def carve(driving, fraction=0.3, seed=4):
    desc = driving / "ralis-dataset.yaml"
    desc.write_text(desc.read_text() + f"  val: {{from: train, fraction: {fraction}, "
                                       f"seed: {seed}}}\n")


def names(driving):
    return {s: set(create_dataset("folder", s, root=driving).names) for s in ("train", "val")}


def add_frame(driving, seq, stem):
    save(driving / "train" / seq / f"{stem}_image.jpg", np.full((8, 12, 3), 9, np.uint8),
         format="JPEG")
    save(driving / "train" / seq / f"{stem}_label.png", np.zeros((8, 12), np.uint8))


def test_a_carve_does_not_move_when_unrelated_files_come_and_go(driving):
    carve(driving)
    before = names(driving)
    assert before["val"] and before["train"]
    for k in range(6):  # new frames: each lands somewhere, the others stay where they were
        add_frame(driving, "seq02", f"29{k:02d}")
    after = names(driving)
    new = {f"29{k:02d}_image" for k in range(6)}
    assert after["val"] - new == before["val"] and after["train"] - new == before["train"]
    for stem in sorted(before["train"])[:2]:  # frames of train disappear
        image = next(driving.glob(f"train/*/{stem}.jpg"))
        image.unlink()
        image.with_name(stem.replace("_image", "_label") + ".png").unlink()
    assert names(driving)["val"] - new == before["val"]


def orphaned(driving):
    """train/seq01/1001_image.jpg deleted, its mask left behind."""
    (driving / "train" / "seq01" / "1001_image.jpg").unlink()
    return "train/seq01/1001_label.png"


def test_a_mask_without_an_image_is_reported_by_data_check(driving):
    cfg = DataConfig(dataset="folder", root=str(driving), reward_split="train",
                     test_split="train", allow_same_reward_test=True)
    quiet = check_data(cfg, progress=False)
    assert not any("without an image" in w for w in quiet["warnings"])
    mask = orphaned(driving)
    report = check_data(cfg, progress=False)
    line = next(w for w in report["splits"]["train"]["warnings"] if "without an image" in w)
    assert f"1 mask(s) without an image ({mask})" in line and "restore the images" in line
    assert report["splits"]["train"]["images"] == 6


def test_a_mask_without_an_image_is_reported_by_a_run(driving, capsys):
    desc = driving / "ralis-dataset.yaml"
    desc.write_text(desc.read_text() + "  val: {from: train, images: 'train/seq05/*'}\n"
                    "  test: {from: train, fraction: 0.3}\n")
    cfg = DataConfig(dataset="folder", root=str(driving), region_size=(4, 4), state_images=1,
                     dqn_train_images=1, allow_missing_classes=True)
    load_protocol(cfg, progress=False)
    assert "without an image" not in capsys.readouterr().err
    mask = orphaned(driving)
    load_protocol(cfg, progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: folder/train: 1 mask(s) without an "
                                               f"image ({mask})")


def test_no_false_alarm_on_the_aerial_layout(aerial):
    report = check_data(DataConfig(dataset="folder", root=str(aerial), resolution=(8, 8),
                                   reward_split="train", test_split="train",
                                   allow_same_reward_test=True), progress=False)
    assert not any("without an image" in w for w in report["warnings"])
