"""Dataset readers (CamVid, Cityscapes, folder) and the dataset registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ralis.data import DATASETS, create_dataset, dataset_classes
from ralis.data.camvid import CAMVID_CLASSES, default_root
from ralis.data.cityscapes import to_train_ids
from ralis.errors import ConfigError, DataError

CAMVID = default_root("camvid")


def write_png(path: Path, array: np.ndarray) -> Path:
    """Write uint8 [H, W, 3] / [H, W] or uint16 [H, W] as PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def rgb(h: int = 6, w: int = 8, value: int = 100) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


# --- registry --------------------------------------------------------------------------------
def test_registry_has_the_four_readers():
    assert {"camvid", "cityscapes", "folder", "synthetic"} <= set(DATASETS.names())


def test_unknown_dataset_name_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown dataset 'kitti'; valid names: ") as info:
        create_dataset("kitti", "train")
    assert all(name in str(info.value) for name in ("camvid", "cityscapes", "folder", "synthetic"))


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match="no option colour.*seed, num_images"):
        create_dataset("synthetic", "train", colour=True)


def test_dataset_classes_without_data():
    assert dataset_classes("camvid", root="/nonexistent") == CAMVID_CLASSES
    assert dataset_classes("cityscapes").num_classes == 19
    assert dataset_classes("synthetic").ignore_index == 255


# --- CamVid ----------------------------------------------------------------------------------
def make_camvid(root: Path, with_lists: bool) -> None:
    """A 2-train / 1-val / 1-test fake in the SegNet layout (lists with foreign paths)."""
    for split, stems in {"train": ["b", "a"], "val": ["c"], "test": ["d"]}.items():
        for stem in stems:
            write_png(root / split / f"{stem}.png", rgb())
            write_png(root / f"{split}annot" / f"{stem}.png", np.full((6, 8), 3, np.uint8))
        if with_lists:
            lines = [
                f"/SegNet/CamVid/{split}/{s}.png /SegNet/CamVid/{split}annot/{s}.png" for s in stems
            ]
            (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def test_camvid_list_paths_are_resolved_against_the_root(tmp_path):
    make_camvid(tmp_path, with_lists=True)
    ds = create_dataset("camvid", "train", root=tmp_path)
    assert ds.names == ["b", "a"]  # list order
    image, mask = ds[1]
    assert image.shape == (3, 6, 8) and (mask == 3).all()


def test_camvid_without_lists_falls_back_to_sorted_folders(tmp_path):
    make_camvid(tmp_path, with_lists=False)
    assert create_dataset("camvid", "train", root=tmp_path).names == ["a", "b"]


def test_camvid_missing_root_or_folder_says_the_layout(tmp_path):
    with pytest.raises(DataError, match="not found: expected the SegNet layout with train/"):
        create_dataset("camvid", "train", root=tmp_path / "nope")
    make_camvid(tmp_path, with_lists=True)
    (tmp_path / "valannot" / "c.png").unlink()
    (tmp_path / "valannot").rmdir()
    with pytest.raises(DataError, match="valannot not found.*--data-root"):
        create_dataset("camvid", "val", root=tmp_path)


def test_camvid_list_naming_a_missing_file(tmp_path):
    make_camvid(tmp_path, with_lists=True)
    (tmp_path / "trainannot" / "a.png").unlink()
    with pytest.raises(DataError, match=r"train\.txt:2 .*trainannot/a\.png does not exist"):
        create_dataset("camvid", "train", root=tmp_path)


def test_camvid_unknown_split(tmp_path):
    with pytest.raises(ConfigError, match="valid splits: train, val, test"):
        create_dataset("camvid", "trainval", root=tmp_path)


needs_camvid = pytest.mark.skipif(not CAMVID.is_dir(), reason=f"CamVid not found at {CAMVID}")


@pytest.mark.camvid
@needs_camvid
def test_real_camvid_split_sizes():
    sizes = {s: len(create_dataset("camvid", s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 367, "val": 101, "test": 233}


@pytest.mark.camvid
@needs_camvid
def test_real_camvid_sample_at_a_working_resolution():
    ds = create_dataset("camvid", "train", resolution=(180, 240))
    image, mask = ds[0]
    assert ds.names[0] == "0001TP_006690"
    assert image.shape == (3, 180, 240) and image.dtype == torch.float32
    assert mask.shape == (180, 240) and mask.dtype == torch.long
    assert 0 <= int(mask.min()) and int(mask.max()) <= 11


# --- Cityscapes -----------------------------------------------------------------------------
def make_cityscapes(root: Path) -> np.ndarray:
    """Two fake images in two cities; returns the labelIds of the first one."""
    label_ids = np.array([[7, 26, 0, 33], [24, 9, 23, 255]], np.uint8)
    for city, frame in (("aachen", "000000_000019"), ("bremen", "000001_000042")):
        stem = f"{city}_{frame}"
        write_png(root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png", rgb(2, 4))
        write_png(root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png", label_ids)
    return label_ids


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    make_cityscapes(tmp_path)
    ds = create_dataset("cityscapes", "train", root=tmp_path)
    assert ds.names == ["aachen_000000_000019", "bremen_000001_000042"]
    _, mask = ds[0]
    expected = [
        [0, 13, 19, 18],
        [11, 19, 10, 19],
    ]  # road, car, void, bicycle / person, parking, sky
    assert mask.tolist() == expected


def test_cityscapes_lookup_table_covers_the_19_classes():
    train_ids = to_train_ids(np.arange(-1, 300))
    assert sorted(set(train_ids.tolist()) - {19}) == list(range(19))
    assert (train_ids == 19).sum() == 301 - 19


def test_cityscapes_missing_layout(tmp_path):
    make_cityscapes(tmp_path)
    with pytest.raises(DataError, match="gtFine/val not found: expected leftImg8bit"):
        (tmp_path / "leftImg8bit" / "val").mkdir()
        create_dataset("cityscapes", "val", root=tmp_path)
    with pytest.raises(DataError, match="Cityscapes root .* not found"):
        create_dataset("cityscapes", "train", root=tmp_path / "missing")


# --- folder ---------------------------------------------------------------------------------
CLASSES = [
    {"name": "road", "id": 0, "color": [128, 64, 128]},
    {"name": "car", "id": 1, "color": [0, 0, 142]},
    {"name": "sky", "id": 2, "color": [70, 130, 180]},
]


def describe(root: Path, fmt: str = "yaml", **fields) -> Path:
    """Write a description with sensible defaults (overridden by ``fields``)."""
    data = {
        "name": "tiny",
        "classes": CLASSES,
        "splits": {
            "train": {"images": "images/train/*.png", "masks": "labels/{split}/{stem}_mask.png"},
            "val": {"images": "images/val/*.png", "masks": "labels/{split}/{stem}_mask.png"},
        },
        **fields,
    }
    path = root / f"ralis-dataset.{fmt}"
    path.write_text(yaml.safe_dump(data) if fmt in ("yaml", "yml") else json.dumps(data))
    return path


def id_masks(root: Path, h: int = 6, w: int = 8) -> dict[str, np.ndarray]:
    """Two train images and one val image with id masks; returns the masks by stem."""
    masks = {}
    for split, stem, value in (("train", "x1", 0), ("train", "x2", 1), ("val", "v1", 2)):
        mask = np.full((h, w), value, np.uint8)
        mask[0, 0] = 255
        write_png(root / "images" / split / f"{stem}.png", rgb(h, w, 40 * value))
        write_png(root / "labels" / split / f"{stem}_mask.png", mask)
        masks[stem] = mask
    return masks


def test_folder_ids_yaml(tmp_path):
    masks = id_masks(tmp_path)
    describe(tmp_path)
    ds = create_dataset("folder", "train", root=tmp_path)
    assert ds.names == ["x1", "x2"] and ds.classes.names == ("road", "car", "sky")
    assert ds.classes.ignore_index == 255
    image, mask = ds[1]
    assert image.shape == (3, 6, 8)
    np.testing.assert_array_equal(mask.numpy(), masks["x2"])
    assert dataset_classes("folder", root=tmp_path).num_classes == 3


def test_folder_json_file_as_root_with_16_bit_masks_and_resolution(tmp_path):
    write_png(tmp_path / "images" / "val" / "v1.png", rgb(6, 8))
    write_png(tmp_path / "labels" / "val" / "v1_mask.png", np.full((6, 8), 2, np.uint16))
    path = describe(tmp_path, fmt="json", resolution=[3, 4], ignore_index=1000)
    ds = create_dataset("folder", "val", root=path)
    image, mask = ds[0]
    assert image.shape == (3, 3, 4) and (mask == 2).all()
    assert create_dataset("folder", "val", root=path, resolution=(12, 16)).image_size == (12, 16)


def test_folder_rgb_masks(tmp_path):
    mask = np.zeros((4, 5, 3), np.uint8)
    mask[:] = (128, 64, 128)
    mask[1] = (0, 0, 142)
    mask[2] = (70, 130, 180)
    mask[3, 0] = (1, 2, 3)  # not in the table
    write_png(tmp_path / "images" / "train" / "a.png", rgb(4, 5))
    write_png(tmp_path / "labels" / "train" / "a_mask.png", mask)
    describe(tmp_path, fmt="yml", mask_format="rgb", ignore_index=9)
    strict = create_dataset("folder", "train", root=tmp_path)  # strict_colors is the default
    with pytest.raises(DataError, match=r"split train: 1 colour.*\(1, 2, 3\): 1 px in 1 file"):
        strict[0]
    describe(tmp_path, fmt="yml", mask_format="rgb", ignore_index=9, strict_colors=False)
    _, ids = create_dataset("folder", "train", root=tmp_path)[0]
    assert ids[:3, 0].tolist() == [0, 1, 2] and ids[3].tolist() == [9, 0, 0, 0, 0]


def test_folder_rgb_masks_need_colours(tmp_path):
    describe(tmp_path, mask_format="rgb", classes=[{"name": "a", "id": 0}, {"name": "b", "id": 1}])
    with pytest.raises(ConfigError, match="needs a color for mask_format: rgb"):
        create_dataset("folder", "train", root=tmp_path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"classes": [{"name": "a", "id": 0}, {"name": "b", "id": 2}]},
            r"ids must be 0\.\.1.*\[0, 2\]",
        ),
        ({"classes": [{"name": "a", "id": 0}, {"name": "b", "id": 0}]}, "id 0 is used twice"),
        ({"ignore_index": 1}, r"ignore_index 1 must be above the class ids 0\.\.2"),
        ({"ignore_index": -1}, "ignore_index -1 must be above"),
        ({"mask_format": "png"}, "mask_format must be one of ids, palette, rgb"),
        ({"colour_table": {}}, r"unknown fields \['colour_table'\]"),
        ({"splits": {"train": {"images": "*.png"}}}, "splits.train needs 'images'"),
        ({"resolution": [10]}, r"resolution must be \[H, W\]"),
        ({"splits": {"train": {"images": "*.png", "masks": "{name}.png"}}}, "placeholders"),
    ],
)
def test_folder_bad_descriptions(tmp_path, fields, message):
    id_masks(tmp_path)
    write_png(tmp_path / "top.png", rgb())
    describe(tmp_path, **fields)
    with pytest.raises(ConfigError, match=message):
        create_dataset("folder", "train", root=tmp_path)


def test_folder_unparsable_description(tmp_path):
    (tmp_path / "ralis-dataset.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot parse dataset description"):
        create_dataset("folder", "train", root=tmp_path)


def test_folder_missing_description_or_root(tmp_path):
    with pytest.raises(ConfigError, match="needs --data-root"):
        create_dataset("folder", "train")
    with pytest.raises(DataError, match="description .*nope not found"):
        create_dataset("folder", "train", root=tmp_path / "nope")
    with pytest.raises(DataError, match="no dataset description in .*ralis-dataset.yaml"):
        create_dataset("folder", "train", root=tmp_path)


def test_folder_unknown_split_lists_the_described_ones(tmp_path):
    describe(tmp_path)
    with pytest.raises(ConfigError, match="valid splits: train, val"):
        create_dataset("folder", "test", root=tmp_path)


def test_folder_image_without_mask(tmp_path):
    id_masks(tmp_path)
    write_png(tmp_path / "images" / "train" / "x3.png", rgb())
    describe(tmp_path)
    with pytest.raises(
        DataError, match=r"x3\.png has no mask: expected .*labels/train/x3_mask\.png"
    ):
        create_dataset("folder", "train", root=tmp_path)


def test_folder_empty_glob(tmp_path):
    describe(tmp_path)
    with pytest.raises(DataError, match=r"matched no files \(glob .*images/train/\*\.png\)"):
        create_dataset("folder", "train", root=tmp_path)


def test_folder_size_mismatch(tmp_path):
    id_masks(tmp_path)
    write_png(tmp_path / "labels" / "train" / "x2_mask.png", np.zeros((5, 8), np.uint8))
    describe(tmp_path)
    ds = create_dataset("folder", "train", root=tmp_path)
    ds[0]
    with pytest.raises(DataError, match=r"x2.*image is 8x6 but mask is 8x5"):
        ds[1]


def test_folder_mask_id_out_of_range(tmp_path):
    id_masks(tmp_path)
    write_png(tmp_path / "labels" / "train" / "x1_mask.png", np.full((6, 8), 7, np.uint8))
    describe(tmp_path)
    with pytest.raises(DataError, match=r"x1.*class ids \[7\] outside 0\.\.2"):
        create_dataset("folder", "train", root=tmp_path)[0]


def test_folder_corrupt_image(tmp_path):
    id_masks(tmp_path)
    (tmp_path / "images" / "train" / "x1.png").write_bytes(b"\x89PNG garbage, not an image")
    describe(tmp_path)
    with pytest.raises(DataError, match=r"x1\.png .*corrupt"):
        create_dataset("folder", "train", root=tmp_path)[0]


def test_folder_rgb_mask_in_ids_format(tmp_path):
    id_masks(tmp_path)
    write_png(tmp_path / "labels" / "train" / "x1_mask.png", rgb())
    describe(tmp_path)
    with pytest.raises(DataError, match="mode RGB; expected a single-channel"):
        create_dataset("folder", "train", root=tmp_path)[0]


def test_folder_recursive_glob_with_duplicate_stems(tmp_path):
    for city in ("a", "b"):
        write_png(tmp_path / "img" / city / "f.png", rgb())
        write_png(tmp_path / "lbl" / city / "f.png", np.zeros((6, 8), np.uint8))
    describe(
        tmp_path, splits={"train": {"images": "img/**/*.png", "masks": "lbl/{parent}/{stem}.png"}}
    )
    assert create_dataset("folder", "train", root=tmp_path).names == ["img/a/f", "img/b/f"]


def test_camvid_and_cityscapes_refuse_palette_and_jpeg_masks(tmp_path):
    make_camvid(tmp_path / "camvid", with_lists=False)
    annot = tmp_path / "camvid" / "trainannot" / "a.png"
    im = Image.fromarray(np.full((6, 8), 3, np.uint8), mode="P")
    im.putpalette([128, 64, 128] * 256)
    im.save(annot)
    ds = create_dataset("camvid", "train", root=tmp_path / "camvid")
    with pytest.raises(DataError, match=r"a\.png is a palette PNG; expected a single-channel"):
        ds[0]
    assert ds[1][1].unique().tolist() == [3]  # b.png: mode L ids, as CamVid's are
    make_cityscapes(tmp_path / "cs")
    mask = next((tmp_path / "cs" / "gtFine" / "train" / "aachen").glob("*.png"))
    Image.fromarray(np.full((2, 4), 7, np.uint8)).save(mask, format="JPEG")
    with pytest.raises(DataError, match="is a JPEG: lossy compression"):
        create_dataset("cityscapes", "train", root=tmp_path / "cs")[0]


@pytest.mark.parametrize(("fields", "message"), [
    ({"classes": [{"name": "road", "id": 0}, {"name": "road", "id": 1}]},
     r"class name 'road' is used twice \(classes\[0\] and classes\[1\]\)"),
    ({"classes": [{"name": ["road"], "id": 0}]},
     r"classes\[0\] name must be a non-empty text, e.g. name: road, got \['road'\]"),
    ({"classes": [{"name": "", "id": 0}]}, "name must be a non-empty text"),
    ({"ignore_index": 65536}, r"ignore_index 65536 is above 65535, the largest value a 16-bit "
                              r"mask holds; use a smaller one"),
    ({"resolution": [20000, 8]}, r"resolution must be \[H, W\] with integers 1\.\.16384"),
])
def test_folder_class_names_ignore_index_and_resolution_limits(tmp_path, fields, message):
    describe(tmp_path, **fields)
    with pytest.raises(ConfigError, match=message) as info:
        create_dataset("folder", "train", root=tmp_path)
    assert len(str(info.value).splitlines()) == 1


def test_folder_ignore_index_65535_is_accepted(tmp_path):
    describe(tmp_path, ignore_index=65535)
    assert dataset_classes("folder", root=tmp_path).ignore_index == 65535


@pytest.mark.parametrize("resolution", [(0, 5), (-4, 8), (100000, 100000), (6, 8.5)])
def test_a_reader_refuses_an_impossible_resolution(tmp_path, resolution):
    make_camvid(tmp_path, with_lists=False)
    with pytest.raises(ConfigError, match=r"resolution must be \(H, W\) with integer sides "
                                          r"1\.\.16384"):
        create_dataset("camvid", "train", root=tmp_path, resolution=resolution)
    id_masks(tmp_path)
    describe(tmp_path)
    with pytest.raises(ConfigError, match="integer sides 1..16384"):
        create_dataset("folder", "train", root=tmp_path, resolution=resolution)


def test_cityscapes_reward_split_is_200_train_images_apart_from_the_rest(tmp_path):
    from ralis.data.cityscapes import split_pairs

    for k in range(205):
        city = ("aachen", "bremen")[k % 2]
        stem = f"{city}_{k:06d}_000019"
        img = tmp_path / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png"
        mask = tmp_path / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png"
        for p in (img, mask):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()  # names are enough: the split is drawn from the sorted file list
    dr, rest = split_pairs(tmp_path, "dr"), split_pairs(tmp_path, "train-dr")
    train = split_pairs(tmp_path, "train")
    assert (len(dr), len(rest)) == (200, 5)
    assert sorted(dr + rest) == sorted(train) and not set(dr) & set(rest)
    assert split_pairs(tmp_path, "dr") == dr  # fixed, not random per call
