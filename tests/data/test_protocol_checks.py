"""load_protocol refuses data that would give wrong numbers: void, missing classes, D_R = test."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import yaml

from ralis.config import DataConfig, get_preset, validate
from ralis.data.protocol import load_protocol
from ralis.errors import ConfigError, DataError

from .conftest import save, write_description

NAMES = ("road", "car", "sky")


def make_dataset(root, void_rows: dict[str, int] | None = None,
                 classes: dict[str, tuple[int, ...]] | None = None, rgb: bool = False):
    """train (6 images), val (2), test (2); 8x8 masks.

    Image k of a split has row r labelled ``classes[split][(r + k) % len]`` (default all three
    classes); the first ``void_rows[split]`` rows are void (255).
    """
    void_rows, classes = void_rows or {}, classes or {}
    colours = [(128, 64, 128), (0, 0, 142), (70, 130, 180)]
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        present = classes.get(split, (0, 1, 2))
        for k in range(n):
            mask = np.array([[present[(r + k) % len(present)]] * 8 for r in range(8)], np.uint8)
            mask[: void_rows.get(split, 0)] = 255
            save(root / "img" / split / f"{split}{k}.png", np.full((8, 8, 3), 40 * k, np.uint8))
            if rgb:
                table = np.array(colours + [(0, 0, 0)] * 253, np.uint8)
                save(root / "lbl" / split / f"{split}{k}.png", table[mask])
            else:
                save(root / "lbl" / split / f"{split}{k}.png", mask)
    write_description(
        root, name="checked",
        classes=[{"name": n, "id": i, "color": list(colours[i])} for i, n in enumerate(NAMES)],
        mask_format="rgb" if rgb else "ids",
        splits={s: {"images": f"img/{s}/*.png", "masks": f"lbl/{s}/{{stem}}.png"}
                for s in ("train", "val", "test")},
    )
    return DataConfig(dataset="folder", root=str(root), region_size=(4, 4), state_images=1,
                      dqn_train_images=2)


def test_clean_folder_data_loads_and_has_its_name(tmp_path):
    proto = load_protocol(make_dataset(tmp_path), progress=False)
    assert proto.name == "checked" and len(proto.reward) == 2 and len(proto.test) == 2


def test_mostly_void_split_is_refused_until_the_threshold_is_raised(tmp_path):
    cfg = make_dataset(tmp_path, void_rows={"val": 5})  # 5 of 8 rows: 62.5% void
    with pytest.raises(DataError) as info:
        load_protocol(cfg, progress=False)
    message = str(info.value)
    assert message.startswith("folder/val: 62.5% of mask pixels are void (ignore index 255), "
                              "above data.max_void_fraction=0.5")
    assert "--set data.max_void_fraction=0.63" in message and len(message.splitlines()) == 1
    assert load_protocol(replace(cfg, max_void_fraction=0.63), progress=False).name == "checked"


def test_a_wrong_colour_table_cannot_give_a_run(tmp_path):
    """The issue's case: colours that match no class. Strict by default; opted out, all void."""
    cfg = make_dataset(tmp_path, rgb=True)
    desc = tmp_path / "ralis-dataset.yaml"
    desc.write_text(desc.read_text().replace("- 128", "- 127"))  # road's colour mistyped
    with pytest.raises(DataError, match=r"split train: 1 colour\(s\) in 6 of 6 masks .*"
                                        r"\(128, 64, 128\): 128 px in 6 file"):
        load_protocol(cfg, progress=False)
    desc.write_text(desc.read_text().replace("splits:", "strict_colors: false\nsplits:"))
    with pytest.raises(DataError, match=r"folder/train: 33\.3% .* void.*max_void_fraction"):
        load_protocol(replace(cfg, max_void_fraction=0.3), progress=False)


def test_class_missing_from_the_test_split_is_named(tmp_path):
    cfg = make_dataset(tmp_path, classes={"test": (0, 2)})
    with pytest.raises(DataError, match=r"^folder/test: class\(es\) car never occur in this "
                                        r"evaluation split.*data\.allow_missing_classes=true"):
        load_protocol(cfg, progress=False)
    assert load_protocol(replace(cfg, allow_missing_classes=True), progress=False).name == "checked"


def test_class_missing_from_d_r_is_named_and_from_train_is_allowed(tmp_path):
    with pytest.raises(DataError, match=r"folder/val: class\(es\) road, sky never occur"):
        load_protocol(make_dataset(tmp_path / "a", classes={"val": (1,)}), progress=False)
    load_protocol(make_dataset(tmp_path / "b", classes={"train": (0, 1)}), progress=False)


def test_reward_and_test_the_same_images_is_refused(tmp_path):
    cfg = replace(make_dataset(tmp_path), reward_split="test")
    with pytest.raises(DataError, match=r"D_R \(folder/test\) and the test set \(folder/test\) "
                                        r"share 2 of 2 test images.*allow_same_reward_test=true"):
        load_protocol(cfg, progress=False)
    assert load_protocol(replace(cfg, allow_same_reward_test=True), progress=False).name


def test_differently_named_splits_over_the_same_files_are_the_same_images(tmp_path):
    cfg = make_dataset(tmp_path)
    desc = tmp_path / "ralis-dataset.yaml"
    desc.write_text(desc.read_text().replace("img/test/", "img/val/").replace("lbl/test/", "lbl/val/"))
    with pytest.raises(DataError, match="share 2 of 2 test images"):
        load_protocol(cfg, progress=False)


def test_carved_test_split_passes_the_overlap_check(driving):
    desc = driving / "ralis-dataset.yaml"
    desc.write_text(desc.read_text() + "  val: {from: train, images: 'train/seq05/*'}\n"
                    "  test: {from: train, fraction: 0.3}\n")
    cfg = DataConfig(dataset="folder", root=str(driving), region_size=(4, 4), state_images=1,
                     dqn_train_images=1, allow_missing_classes=True)
    proto = load_protocol(cfg, progress=False)
    assert len(proto.reward) == 2 and len(proto.test) >= 1
    assert not set(proto.reward.names) & set(proto.test.names)


@pytest.mark.parametrize("preset", ["synthetic-tiny", "synthetic-demo"])
def test_synthetic_presets_pass_every_check(preset):
    proto = load_protocol(get_preset(preset).data, progress=False)
    assert proto.name == "synthetic"
    for images in (proto.reward, proto.test):
        present = set(images.masks.unique().tolist()) - {proto.ignore_index}
        assert present == set(range(proto.num_classes))


def test_config_validation_of_the_new_fields():
    base = get_preset("synthetic-tiny")
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match=r"data.max_void_fraction must be in \(0, 1\]"):
            validate(replace(base, data=replace(base.data, max_void_fraction=bad)))
    validate(replace(base, data=replace(base.data, max_void_fraction=1.0)))
    with pytest.raises(ConfigError, match="not read by the synthetic dataset; add --dataset folder"):
        validate(replace(base, data=replace(base.data, root="/data/mine")))
    validate(replace(base, data=replace(base.data, root="/data/mine", dataset="folder")))


def drive_cfg(driving, **splits) -> DataConfig:
    """The driving fixture with ``splits`` added; every class check accepted."""
    desc = driving / "ralis-dataset.yaml"
    data = yaml.safe_load(desc.read_text())
    data["splits"].update(splits)
    desc.write_text(yaml.safe_dump(data, sort_keys=False))
    return DataConfig(dataset="folder", root=str(driving), region_size=(4, 4), state_images=1,
                      dqn_train_images=1, allow_missing_classes=True)


def own(glob: str) -> dict:
    return {"images": glob, "replace": {"_image": "_label"}, "masks": "{relpath}.png"}


def test_train_and_test_sharing_images_is_refused_until_allowed(driving):
    # the reviewer's case: test = train/seq05/* while train = train/*/* (seq05 included)
    cfg = drive_cfg(driving, val={"from": "train", "images": "train/seq02/*"},
                    test=own("train/seq05/*_image.jpg"))
    with pytest.raises(DataError) as info:
        load_protocol(cfg, progress=False)
    message = str(info.value)
    assert message.startswith("the train split (folder/train) and the test split (folder/test) "
                              "share 2 of 2 test images (e.g. ")
    assert f"{driving.resolve()}/train/seq05/5000_image.jpg" in message
    assert message.endswith("--set data.allow_train_overlap=true")
    assert len(message.splitlines()) == 1
    proto = load_protocol(replace(cfg, allow_train_overlap=True), progress=False)
    assert len(proto.test) == 2 and len(proto.reward) == 2


def test_train_and_reward_sharing_images_is_refused_until_allowed(driving):
    cfg = drive_cfg(driving, val=own("train/seq01/*_image.jpg"),
                    test={"from": "train", "images": "train/seq05/*"})
    with pytest.raises(DataError, match=r"^the train split \(folder/train\) and the D_R split "
                                        r"\(folder/val\) share 3 of 3 D_R images .*seq01/1000_"
                                        r"image\.jpg\).*allow_train_overlap=true$"):
        load_protocol(cfg, progress=False)
    assert len(load_protocol(replace(cfg, allow_train_overlap=True), progress=False).reward) == 3


def test_testing_on_the_train_split_on_purpose_needs_the_flag(driving):
    cfg = replace(drive_cfg(driving, val={"from": "train", "images": "train/seq02/*"}),
                  test_split="train")
    with pytest.raises(DataError, match=r"test split \(folder/train\) share 5 of 5 test images"):
        load_protocol(cfg, progress=False)
    proto = load_protocol(replace(cfg, allow_train_overlap=True), progress=False)
    assert len(proto.test) == 5
    # the synthetic data's splits are different images; the same split is the same images
    tiny = get_preset("synthetic-tiny").data
    with pytest.raises(DataError, match=r"train split \(synthetic/train\) and the D_R split"):
        load_protocol(replace(tiny, reward_split="train"), progress=False)


def test_config_validation_of_resolution_and_region_size():
    base = get_preset("synthetic-tiny")
    for bad in ((0, 5), (-4, 8), (100000, 100000), (16385, 8)):
        with pytest.raises(ConfigError, match=r"data.resolution \(--resolution HxW\) must have "
                                              r"sides 1\.\.16384"):
            validate(replace(base, data=replace(base.data, resolution=bad)))
    validate(replace(base, data=replace(base.data, resolution=(16384, 8))))
    for bad in ((0, 4), (4, -1)):
        with pytest.raises(ConfigError, match="data.region_size .* must have positive sides"):
            validate(replace(base, data=replace(base.data, region_size=bad)))
