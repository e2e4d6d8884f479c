"""`ralis data check`: the report's numbers on generated data, and the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import yaml
from cli_helpers import run_cli
from PIL import Image

from ralis.config import DataConfig
from ralis.data.check import check_data, format_report

from .conftest import WATER, save


def aerial_cfg(root, **fields) -> DataConfig:
    return DataConfig(dataset="folder", root=str(root), **fields)


def add_splits(root, **splits):
    path = root / "ralis-dataset.yaml"
    data = yaml.safe_load(path.read_text())
    data["splits"].update(splits)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_report_numbers_on_the_aerial_layout(aerial):
    add_splits(aerial, val={"from": "train", "images": "Tile 2/images/*"},
               test={"from": "train", "images": "Tile 1/images/part_1.jpg"})
    report = check_data(aerial_cfg(aerial, resolution=(8, 8)), progress=False)
    assert report["name"] == "aerial" and report["resize"] == "stretch"
    train, val = report["splits"]["train"], report["splits"]["val"]
    assert train["images"] == 1 and train["sizes"] == {"8x12": 1}
    assert val["carved"] == {"from": "train", "fraction": None, "seed": None,
                             "images": "Tile 2/images/*"}
    # train at 8x8: rows 0-3 building, 4-6 road, 7 water
    assert train["class_pixels"] == {"building": 32, "road": 24, "water": 8}
    assert train["void_fraction"] == 0
    assert val["sizes"] == {"12x8": 1}
    # val (12x8 stretched to 8x8): building rows 0-3, road 4-6, row 7 the declared void colour
    assert val["void_fraction"] == pytest.approx(8 / 64)
    assert val["missing_classes"] == ["water"]
    # D_R lacks water (an error), and no image is 8x8-shaped (a stretch warning per split)
    assert any("val: class(es) water never occur" in e for e in report["errors"])
    assert sum("resize: stretch distorts them" in w for w in report["warnings"]) == 3
    text = format_report(report)
    assert "split val [D_R]: 1 images (carved from train: images Tile 2/images/*)" in text
    assert "classes: building 50.00%, road 37.50%, water 12.50%" in text
    assert text.endswith("1 error(s), 3 warning(s): a run would stop on these errors")


def test_unknown_colours_are_counted_over_the_split(aerial):
    mask_path = aerial / "Tile 1" / "masks" / "part_0.png"
    mask = np.array(Image.open(mask_path))
    mask[0, :5] = (1, 2, 3)
    save(mask_path, mask)
    other = aerial / "Tile 2" / "masks" / "part_0.png"
    mask = np.array(Image.open(other))
    mask[0, :2] = (1, 2, 3)
    mask[1, 0] = (7, 7, 7)
    save(other, mask)
    report = check_data(aerial_cfg(aerial, resolution=(8, 8), allow_missing_classes=True,
                                   allow_same_reward_test=True, allow_train_overlap=True,
                                   reward_split="train", test_split="train"), progress=False)
    colours = report["splits"]["train"]["unknown_colors"]
    assert [(c["color"], c["pixels"], c["files"]) for c in colours] == [
        ([1, 2, 3], 7, 2), ([7, 7, 7], 1, 1)]
    assert colours[0]["first_files"] == ["Tile 1/masks/part_0.png", "Tile 2/masks/part_0.png"]
    (error,) = [e for e in report["errors"] if "colour(s)" in e]
    assert "2 colour(s) in 2 of 3 masks" in error and "(first Tile 1/masks/part_0.png)" in error
    desc = aerial / "ralis-dataset.yaml"
    desc.write_text(desc.read_text() + "strict_colors: false\n")
    report = check_data(aerial_cfg(aerial, resolution=(8, 8), reward_split="train",
                                   test_split="train", allow_missing_classes=True,
                                   allow_same_reward_test=True, allow_train_overlap=True),
                        progress=False)
    assert not report["errors"]
    assert any("strict_colors is false, so these colours became void" in w
               for w in report["warnings"])


def test_reward_equal_test_and_void_and_broken_split(aerial):
    add_splits(aerial, val={"from": "train", "fraction": 0.4},
               test={"images": "missing/*.png", "masks": "{stem}.png"})
    report = check_data(aerial_cfg(aerial, resolution=(8, 8), test_split="val",
                                   max_void_fraction=0.1), progress=False)
    assert report["splits"]["test"]["errors"][0].endswith("matched no files (glob "
                                                          f"{aerial}/missing/*.png)")
    assert any("share 1 of 1 test images" in e for e in report["errors"])
    val = report["splits"]["val"]
    assert val["images"] == 1 and val["carved"]["seed"] == 0


def test_synthetic_check_has_no_problems():
    report = check_data(DataConfig(resolution=(48, 64), synthetic_images=(4, 14, 6)),
                        progress=False)
    assert list(report["splits"]) == ["train", "val", "test"]
    assert report["splits"]["val"]["images"] == 14 and report["errors"] == []
    assert report["splits"]["test"]["sizes"] == {"48x64": 6}
    assert sum(report["splits"]["val"]["class_shares"].values()) == pytest.approx(1)


def test_cli_data_check_text_json_and_exit_codes(monkeypatch, capsys, aerial):
    add_splits(aerial, val={"from": "train", "images": "Tile 1/images/part_0.jpg"},
               test={"from": "train", "images": "Tile 1/images/part_1.jpg"})
    args = ["data", "check", "--dataset", "folder", "--data-root", str(aerial),
            "--resolution", "8x8", "--quiet"]
    code, out, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0, out
    assert "split val [D_R]: 1 images (carved from train" in out and "0 error(s)" in out
    code, out, _ = run_cli(monkeypatch, capsys, *args, "--json")
    report = json.loads(out)
    assert code == 0 and report["splits"]["test"]["class_pixels"]["water"] == 8
    # a mistyped class colour: the check exits 1 and names it (pixels counted at native size)
    desc = aerial / "ralis-dataset.yaml"
    desc.write_text(desc.read_text().replace(f"- {WATER[0]}", f"- {WATER[0] + 1}", 1))
    code, out, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 1
    assert "unknown colour (226, 169, 41): 12 px in 1 file(s), first Tile 1/masks/part_0.png" in out


def test_cli_data_check_user_mistakes_exit_2(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "data", "check", "--data-root", str(tmp_path))
    assert code == 2 and "add --dataset folder" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(monkeypatch, capsys, "data", "check", "--dataset", "folder",
                           "--data-root", str(tmp_path / "none"))
    assert code == 2 and "not found" in err and "Traceback" not in err


def test_warns_when_the_config_overrides_the_descriptions_resolution(driving):
    desc = driving / "ralis-dataset.yaml"
    desc.write_text(desc.read_text() + "resolution: [8, 12]\n")
    cfg = DataConfig(dataset="folder", root=str(driving), train_split="train",
                     reward_split="train", test_split="train", allow_same_reward_test=True)

    def about_resolution(report):
        return [w for w in report["warnings"] if "resolution" in w]

    assert not about_resolution(check_data(replace(cfg, resolution=(8, 12)), progress=False))
    warnings = about_resolution(check_data(replace(cfg, resolution=(4, 6)), progress=False))
    assert warnings == ["the description's resolution 8x12 is overridden by the config's "
                        "data.resolution 4x6; pass --resolution 8x12 to use the description's"]


def test_train_overlaps_are_errors_until_allowed_then_warnings(driving):
    add_splits(driving, val={"from": "train", "images": "train/seq02/*"},
               test={"images": "train/seq05/*_image.jpg", "replace": {"_image": "_label"},
                     "masks": "{relpath}.png"})
    cfg = DataConfig(dataset="folder", root=str(driving), allow_missing_classes=True)
    report = check_data(cfg, progress=False)
    (error,) = report["errors"]
    assert error.startswith("the train split (folder/train) and the test split (folder/test) "
                            "share 2 of 2 test images")
    assert "allow_train_overlap=true" in error
    text = format_report(report)
    assert f"error: {error}" in text and "1 error(s)" in text
    report = check_data(replace(cfg, allow_train_overlap=True), progress=False)
    assert report["errors"] == [] and error in report["warnings"]
    # D_R = train too: a second message names the D_R pair
    report = check_data(replace(cfg, reward_split="train"), progress=False)
    assert any(e.startswith("the train split (folder/train) and the D_R split (folder/train) "
                            "share 5 of 5 D_R images") for e in report["errors"])


@pytest.mark.parametrize("resolution", ["0x5", "-4x8", "100000x100000"])
def test_cli_bad_resolution_is_one_line(monkeypatch, capsys, resolution):
    code, _, err = run_cli(monkeypatch, capsys, "data", "check", "--resolution", resolution)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "data.resolution (--resolution HxW) must have sides 1..16384" in err
