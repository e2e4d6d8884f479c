"""Mask patterns with {relpath}/{dir} and replace rules, and splits carved from other splits."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import yaml

from ralis.data import create_dataset
from ralis.data.description import find_description, parse_description
from ralis.data.layout import mask_path_for, split_pairs
from ralis.errors import ConfigError, DataError

from .conftest import save, write_description

CLASSES = [{"name": n, "id": i} for i, n in enumerate(("road", "car", "sky"))]


def rewrite(root, **changes):
    path = root / "ralis-dataset.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def hashed(images, base, seed, split, threshold):
    """The documented fraction rule, computed here: the images (sorted) whose SHA-256 draw of
    (seed, split name, path without suffix) is below ``threshold``; at least one, and never
    all (the one with the largest draw stays)."""
    def draw(p):
        rel = p.relative_to(base).with_suffix("").as_posix()
        digest = hashlib.sha256(f"{seed}\0{split}\0{rel}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    images = sorted(images)
    chosen = [p for p in images if draw(p) < threshold] or [min(images, key=draw)]
    if len(chosen) == len(images):
        chosen.remove(max(images, key=draw))
    return [p.stem for p in chosen]


def rel(pairs, root):
    return [(i.relative_to(root).as_posix(), m.relative_to(root).as_posix()) for i, m in pairs]


def test_driving_layout_image_to_label_by_replace(driving):
    spec = parse_description(find_description(driving))
    pairs = rel(split_pairs(spec, "train"), driving)
    assert len(pairs) == 7
    assert pairs[0] == ("train/seq01/1000_image.jpg", "train/seq01/1000_label.png")
    assert all(m == i.replace("_image.jpg", "_label.png") for i, m in pairs)
    ds = create_dataset("folder", "train", root=driving)
    assert ds.names[:2] == ["1000_image", "1001_image"]
    _, mask = ds[2]  # seq01 frame 2: class 2 with one void pixel
    assert mask[0, 0] == 255 and (mask.flatten()[1:] == 2).all()


def test_aerial_layout_images_folder_to_masks_folder(aerial):
    spec = parse_description(find_description(aerial))
    pairs = rel(split_pairs(spec, "train"), aerial)
    assert pairs == [
        ("Tile 1/images/part_0.jpg", "Tile 1/masks/part_0.png"),
        ("Tile 1/images/part_1.jpg", "Tile 1/masks/part_1.png"),
        ("Tile 2/images/part_0.jpg", "Tile 2/masks/part_0.png"),
    ]
    ds = create_dataset("folder", "train", root=aerial)
    assert ds.names == ["Tile 1/images/part_0", "Tile 1/images/part_1", "Tile 2/images/part_0"]
    _, mask = ds[2]  # 12x8: building, road, last row void (a declared void colour)
    assert mask[:6].unique().tolist() == [0] and mask[6:11].unique().tolist() == [1]
    assert mask[11].unique().tolist() == [255]


def test_dir_relpath_stem_parent_split_placeholders(tmp_path):
    image = save(tmp_path / "img" / "cityA" / "f1.png", np.zeros((2, 2, 3), np.uint8))
    write_description(tmp_path, classes=CLASSES, splits={"train": {
        "images": "img/**/*.png", "masks": "lbl/{dir}/{parent}-{stem}-{split}.png"}})
    spec = parse_description(find_description(tmp_path))
    assert mask_path_for(spec, "train", image) == tmp_path / "lbl/img/cityA/cityA-f1-train.png"
    top = save(tmp_path / "top.png", np.zeros((2, 2, 3), np.uint8))
    write_description(tmp_path, classes=CLASSES, splits={"train": {
        "images": "*.png", "masks": "m/{dir}/{relpath}_{parent}.png"}})
    spec = parse_description(find_description(tmp_path))
    assert mask_path_for(spec, "train", top) == tmp_path / f"m/top_{tmp_path.name}.png"


def test_replace_that_changes_nothing_is_an_error(driving):
    rewrite(driving, splits={"train": {"images": "train/*/*_image.jpg",
                                       "replace": {"/images/": "/masks/"}, "masks": "{relpath}.png"}})
    with pytest.raises(DataError, match=r"replace \{'/images/': '/masks/'\} changes nothing in "
                                        r"train/seq01/1000_image\.jpg"):
        create_dataset("folder", "train", root=driving)


def test_a_pattern_that_points_at_the_image_itself_is_an_error(tmp_path):
    save(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
    write_description(tmp_path, classes=CLASSES,
                      splits={"train": {"images": "*.png", "masks": "{relpath}.png"}})
    with pytest.raises(DataError, match="gives a.png as its own mask"):
        create_dataset("folder", "train", root=tmp_path)


def test_carve_by_fraction_is_reproducible_disjoint_and_seeded(driving):
    rewrite(driving, splits={
        "train": {"images": "train/*/*_image.jpg", "replace": {"_image": "_label"},
                  "masks": "{relpath}.png"},
        "val": {"from": "train", "fraction": 0.3, "seed": 4},
    })
    train = create_dataset("folder", "train", root=driving)
    val = create_dataset("folder", "val", root=driving)
    assert not set(train.names) & set(val.names)
    assert sorted(train.names + val.names) == sorted(
        p.stem for p in driving.glob("train/*/*_image.jpg"))
    # the draw: each image's hash of (seed 4, "val", its path) below 0.3
    expected = hashed(driving.glob("train/*/*_image.jpg"), driving, 4, "val", 0.3)
    assert val.names == expected and len(val) == 2 and len(train) == 5
    assert create_dataset("folder", "val", root=driving).names == val.names
    assert val.pairs[0][1].name == val.pairs[0][0].name.replace("_image.jpg", "_label.png")
    rewrite(driving, splits={**yaml.safe_load((driving / "ralis-dataset.yaml").read_text())[
        "splits"], "val": {"from": "train", "fraction": 0.3, "seed": 5}})
    assert create_dataset("folder", "val", root=driving).names != val.names


def test_carve_by_glob_and_two_carves_from_one_source(driving):
    rewrite(driving, splits={
        "train": {"images": "train/*/*_image.jpg", "replace": {"_image": "_label"},
                  "masks": "{relpath}.png"},
        "test": {"from": "train", "images": "train/seq05/*"},
        "val": {"from": "train", "fraction": 0.2},
    })
    test = create_dataset("folder", "test", root=driving)
    val = create_dataset("folder", "val", root=driving)
    train = create_dataset("folder", "train", root=driving)
    assert test.names == ["5000_image", "5001_image"]
    left = [p for p in driving.glob("train/*/*_image.jpg") if p.parent.name != "seq05"]
    assert val.names == hashed(left, driving, 0, "val", 0.2)  # of the 5 the glob left
    assert len(val) + len(train) == 5
    assert not (set(val.names) & set(test.names)) and not (set(train.names) & set(val.names))
    assert not any(n.startswith("5") for n in train.names + val.names)


@pytest.mark.parametrize(("split", "error", "message"), [
    ({"from": "train", "images": "nothing/*"}, DataError, "matches none of the 7 images"),
    ({"from": "train", "images": "train/*/*"}, DataError, "leaves train empty"),
    ({"from": "dev", "fraction": 0.2}, ConfigError, "names 'dev', which is not a split"),
    ({"from": "train", "fraction": 1.5}, ConfigError, "fraction must be a number between 0 and 1"),
    ({"from": "train"}, ConfigError, "exactly one of 'fraction'"),
    ({"from": "train", "fraction": 0.2, "masks": "x/{stem}.png"}, ConfigError,
     "uses the masks of train"),
    ({"images": "a/*", "masks": "b/{stem}.png", "fraction": 0.2}, ConfigError,
     "only applies with 'from'"),
    ({"images": "a/*", "masks": "b/{stem}.png", "replace": ["_image"]}, ConfigError,
     "replace must map text to text"),
    ({"images": "a/*", "masks": "b/{name}.png"}, ConfigError, r"uses \{name\}; the placeholders"),
    ({"images": "a/*", "mask": "b/{stem}.png"}, ConfigError, r"unknown fields \['mask'\]"),
])
def test_bad_split_descriptions(driving, split, error, message):
    rewrite(driving, splits={
        "train": {"images": "train/*/*_image.jpg", "replace": {"_image": "_label"},
                  "masks": "{relpath}.png"},
        "test": split,
    })
    with pytest.raises(error, match=message):
        create_dataset("folder", "test", root=driving)


def test_carving_from_a_carved_split_is_refused(driving):
    rewrite(driving, splits={
        "train": {"images": "train/*/*_image.jpg", "replace": {"_image": "_label"},
                  "masks": "{relpath}.png"},
        "val": {"from": "train", "fraction": 0.5},
        "test": {"from": "val", "fraction": 0.5},
    })
    with pytest.raises(ConfigError, match="val is itself carved"):
        create_dataset("folder", "train", root=driving)


def repeated_stems(root, seqs=("seq1", "seq2")):
    """``seqN/img0.png``, ``seqN/img1.png`` in each folder; masks for one folder only."""
    for seq in seqs:
        for k in range(2):
            save(root / seq / f"img{k}.png", np.zeros((4, 4, 3), np.uint8))
            save(root / "masks" / f"img{k}.png", np.zeros((4, 4), np.uint8))


def test_two_images_of_a_split_may_not_share_a_mask(tmp_path):
    repeated_stems(tmp_path, ("seq1", "seq2", "seq3"))
    write_description(tmp_path, classes=CLASSES, splits={
        "train": {"images": "seq*/*.png", "masks": "masks/{stem}.png"},
        "val": {"from": "train", "images": "seq3/*"},
    })
    for split in ("train", "val"):  # the carved split shares its source's mask rule
        with pytest.raises(DataError) as info:
            create_dataset("folder", split, root=tmp_path)
        message = str(info.value)
        assert message.endswith("splits.train: images seq1/img0.png and seq2/img0.png both use "
                                "mask masks/img0.png; use {relpath} or {dir} in the masks "
                                "pattern so that each image has its own mask")
        assert len(message.splitlines()) == 1


def test_two_splits_may_not_give_different_images_one_mask(tmp_path):
    repeated_stems(tmp_path)
    write_description(tmp_path, classes=CLASSES, splits={
        "train": {"images": "seq1/*.png", "masks": "masks/{stem}.png"},
        "test": {"images": "seq2/*.png", "masks": "masks/{stem}.png"},
        "again": {"images": "seq1/*.png", "masks": "masks/{stem}.png"},  # same images: fine
    })
    for split in ("train", "test"):
        with pytest.raises(DataError, match=r"images seq1/img0\.png \(splits\.train\) and "
                                            r"seq2/img0\.png \(splits\.test\) both use mask "
                                            r"masks/img0\.png; use \{relpath\} or \{dir\}"):
            create_dataset("folder", split, root=tmp_path)
    write_description(tmp_path, classes=CLASSES, splits={
        "train": {"images": "seq1/*.png", "masks": "masks/{stem}.png"},
        "again": {"images": "seq1/*.png", "masks": "masks/{stem}.png"},
    })
    assert len(create_dataset("folder", "again", root=tmp_path)) == 2


@pytest.mark.parametrize("order", [("val", "test"), ("test", "val")])
def test_carving_does_not_depend_on_the_order_of_the_splits(driving, order):
    carves = {"val": {"from": "train", "fraction": 0.2, "seed": 0},
              "test": {"from": "train", "images": "train/seq05/*"}}
    rewrite(driving, splits={
        "train": {"images": "train/*/*_image.jpg", "replace": {"_image": "_label"},
                  "masks": "{relpath}.png"},
        **{name: carves[name] for name in order},
    })
    names = {s: create_dataset("folder", s, root=driving).names for s in ("train", "val", "test")}
    assert names["test"] == ["5000_image", "5001_image"]  # all of seq05, even listed last
    # val: about 20% of the 5 images seq05 left, by their hashes with seed 0
    left = sorted(p for p in driving.glob("train/*/*_image.jpg") if p.parent.name != "seq05")
    assert names["val"] == hashed(left, driving, 0, "val", 0.2)
    assert sorted(names["train"]) == sorted({p.stem for p in left} - set(names["val"]))


def test_fraction_carves_go_in_split_name_order_and_globs_must_be_disjoint(driving):
    train = {"images": "train/*/*_image.jpg", "replace": {"_image": "_label"},
             "masks": "{relpath}.png"}
    a, b = {"from": "train", "fraction": 0.3, "seed": 1}, {"from": "train", "fraction": 0.3}
    rewrite(driving, splits={"train": train, "b": b, "a": a})
    first = {s: create_dataset("folder", s, root=driving).names for s in ("a", "b")}
    rewrite(driving, splits={"train": train, "a": a, "b": b})
    assert {s: create_dataset("folder", s, root=driving).names for s in ("a", "b")} == first
    images = sorted(driving.glob("train/*/*_image.jpg"))
    assert first["a"] == hashed(images, driving, 1, "a", 0.3)
    # b: of those a left, each below 0.3 / (1 - 0.3): about 30% of them all
    rest = [p for p in images if p.stem not in first["a"]]
    assert first["b"] == hashed(rest, driving, 0, "b", 0.3 / 0.7)
    rewrite(driving, splits={"train": train, "x": {"from": "train", "images": "train/seq0[12]/*"},
                             "y": {"from": "train", "images": "train/seq02/*"}})
    with pytest.raises(DataError, match=r"image train/seq02/2000_image\.jpg matches the images "
                                        r"globs of both splits\.x and splits\.y"):
        create_dataset("folder", "train", root=driving)


@pytest.mark.parametrize("pattern", ["{stem.foo}.png", "{stem.upper}.png", "{stem[0]}.png",
                                     "{stem!r}.png", "{stem:>8}.png", "{}.png", "{0}.png"])
def test_mask_placeholders_must_be_exactly_one_name(tmp_path, pattern):
    write_description(tmp_path, classes=CLASSES,
                      splits={"train": {"images": "*.png", "masks": f"m/{pattern}"}})
    with pytest.raises(ConfigError) as info:
        create_dataset("folder", "train", root=tmp_path)
    message = str(info.value)
    assert f"mask pattern 'm/{pattern}' uses {pattern[:-4]}; the placeholders are {{stem}}" \
        in message and len(message.splitlines()) == 1


def test_unbalanced_braces_and_literal_braces_in_mask_patterns(tmp_path):
    write_description(tmp_path, classes=CLASSES,
                      splits={"train": {"images": "*.png", "masks": "m/{stem.png"}})
    with pytest.raises(ConfigError, match=r"mask pattern 'm/\{stem\.png' is malformed"):
        create_dataset("folder", "train", root=tmp_path)
    save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    save(tmp_path / "m" / "{x}a.png", np.zeros((4, 4), np.uint8))
    write_description(tmp_path, classes=CLASSES,
                      splits={"train": {"images": "*.png", "masks": "m/{{x}}{stem}.png"}})
    assert create_dataset("folder", "train", root=tmp_path).pairs[0][1].name == "{x}a.png"
