"""COCO format: known answers, round trip, category remapping, conflicts and every bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ralis.data.base import ClassInfo
from ralis.labelling.formats import coco as coco_mod
from ralis.labelling.formats.base import (
    FORMATS,
    ExportContext,
    ImageAnswer,
    ImageInfo,
    ImportContext,
    LabelFileError,
    RequestBox,
    get_format,
)

CLASSES = ClassInfo(("sky", "road", "car"), ignore_index=255)
IGN = 255
H, W = 7, 11  # non-square: a transposition bug shows


@pytest.fixture
def images(tmp_path: Path) -> dict[str, ImageInfo]:
    return {
        "a/img1.png": ImageInfo("a/img1.png", tmp_path / "a/img1.png", H, W),
        "b.png": ImageInfo("b.png", tmp_path / "b.png", 5, 9),
    }


@pytest.fixture
def ictx(images: dict[str, ImageInfo]) -> ImportContext:
    return ImportContext(CLASSES, images)


def doc(segs: list[tuple[int, object]], *, image: str = "a/img1.png", w: int = W, h: int = H,
        cats: list[tuple[int, str]] | None = None) -> dict:
    """A COCO dict with one image (file id 42) and ``segs`` = [(category_id, segmentation)]."""
    cats = cats if cats is not None else [(1, "sky"), (2, "road"), (3, "car")]
    return {"images": [{"id": 42, "file_name": image, "width": w, "height": h}],
            "categories": [{"id": i, "name": n} for i, n in cats],
            "annotations": [{"id": k + 1, "image_id": 42, "category_id": c, "segmentation": s,
                             "iscrowd": 0} for k, (c, s) in enumerate(segs)]}


def load(tmp_path: Path, d: dict | str, ictx: ImportContext):
    p = tmp_path / "labels.json"
    p.write_text(d if isinstance(d, str) else json.dumps(d), encoding="utf-8")
    return get_format("coco").import_labels(p, ictx)


def rle_str(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))["counts"].decode()


# Mask with pixels (row 0, col 1), (row 1, col 1), (row 6, col 10) on a 7x11 image: column-major
# indices 7, 8 and 76, so COCO runs are [7 background, 2 fg, 67 background, 1 fg].
KNOWN = np.zeros((H, W), bool)
KNOWN[0, 1] = KNOWN[1, 1] = KNOWN[6, 10] = True
KNOWN_COUNTS = [7, 2, 67, 1]
KNOWN_STRING = "72S2O"  # pycocotools 2.0.11's compressed form of KNOWN_COUNTS


def test_registered() -> None:
    assert "coco" in FORMATS and get_format("coco").name == "coco"


# ---------------------------------------------------------------------------- known answers
def test_polygon_known_answer(tmp_path: Path, ictx: ImportContext) -> None:
    # rectangle with corners on pixel edges x 2..6, y 1..4 -> rows 1..3, columns 2..5
    (out,) = load(tmp_path, doc([(2, [[2, 1, 6, 1, 6, 4, 2, 4]])]), ictx)
    want = np.full((H, W), IGN)
    want[1:4, 2:6] = 1  # "road" is our class 1
    assert out.name == "a/img1.png" and out.labels.shape == (H, W)
    np.testing.assert_array_equal(out.labels, want)
    assert out.conflicts == 0


def test_uncompressed_rle_known_answer(tmp_path: Path, ictx: ImportContext) -> None:
    seg = {"size": [H, W], "counts": KNOWN_COUNTS}
    (out,) = load(tmp_path, doc([(3, seg)]), ictx)
    np.testing.assert_array_equal(out.labels, np.where(KNOWN, 2, IGN))


def test_compressed_rle_known_answer(tmp_path: Path, ictx: ImportContext) -> None:
    assert rle_str(KNOWN) == KNOWN_STRING
    (out,) = load(tmp_path, doc([(3, {"size": [H, W], "counts": KNOWN_STRING})]), ictx)
    np.testing.assert_array_equal(out.labels, np.where(KNOWN, 2, IGN))


def test_uncompressed_and_compressed_give_the_same_canvas(tmp_path: Path,
                                                          ictx: ImportContext) -> None:
    rng = np.random.default_rng(0)
    m = rng.random((H, W)) < 0.4
    v = m.T.ravel().astype(int)  # column-major
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(v)) + 1, [v.size]])
    counts = ([0] if v[0] else []) + np.diff(bounds).tolist()  # runs start with background
    assert sum(counts) == H * W
    (a,) = load(tmp_path, doc([(1, {"size": [H, W], "counts": counts})]), ictx)
    (b,) = load(tmp_path, doc([(1, {"size": [H, W], "counts": rle_str(m)})]), ictx)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.labels, np.where(m, 0, IGN))


# ---------------------------------------------------------------------------- rules
def test_category_ids_remapped_by_name(tmp_path: Path, ictx: ImportContext) -> None:
    cats = [(7, "car"), (3, "sky"), (12, "ralis-request"), (5, "road")]
    top = np.zeros((H, W), bool)
    top[:2] = True
    bottom = np.zeros((H, W), bool)
    bottom[5:] = True
    d = doc([(7, {"size": [H, W], "counts": rle_str(top)}),
             (3, {"size": [H, W], "counts": rle_str(bottom)}),
             (12, [[0, 0, 11, 0, 11, 7, 0, 7]])], cats=cats)  # request box: ignored
    (out,) = load(tmp_path, d, ictx)
    want = np.full((H, W), IGN)
    want[:2] = 2  # car
    want[5:] = 0  # sky
    np.testing.assert_array_equal(out.labels, want)


def test_union_within_class_and_conflict_between_classes(tmp_path: Path,
                                                         ictx: ImportContext) -> None:
    left = [[0, 0, 6, 0, 6, 7, 0, 7]]  # columns 0..5
    right = [[4, 0, 11, 0, 11, 7, 4, 7]]  # columns 4..10
    (same,) = load(tmp_path, doc([(1, left), (1, right)]), ictx)
    np.testing.assert_array_equal(same.labels, np.zeros((H, W)))
    assert same.conflicts == 0
    (diff,) = load(tmp_path, doc([(1, left), (2, right)]), ictx)
    want = np.zeros((H, W), int)
    want[:, 4:] = 1
    want[:, 4:6] = IGN  # columns 4, 5 claimed by sky and road
    np.testing.assert_array_equal(diff.labels, want)
    assert diff.conflicts == 2 * H


def test_several_polygons_in_one_annotation_are_a_union(tmp_path: Path,
                                                        ictx: ImportContext) -> None:
    seg = [[0, 0, 2, 0, 2, 1, 0, 1], [9, 6, 11, 6, 11, 7, 9, 7]]
    (out,) = load(tmp_path, doc([(3, seg)]), ictx)
    want = np.full((H, W), IGN)
    want[0, 0:2] = 2
    want[6, 9:11] = 2
    np.testing.assert_array_equal(out.labels, want)


def test_image_matched_by_unique_basename(tmp_path: Path, ictx: ImportContext) -> None:
    (out,) = load(tmp_path, doc([(1, [[0, 0, 1, 0, 1, 1]])], image="export/img1.png"), ictx)
    assert out.name == "a/img1.png"


@pytest.mark.parametrize("name", ["C:\\export\\img1.png", "/abs/img1.png", "../a/img1.png",
                                  "a/../../img1.png"])
def test_image_names_leaving_the_folder_are_refused(tmp_path: Path, ictx: ImportContext,
                                                    name: str) -> None:
    with pytest.raises(LabelFileError, match="points outside the images folder"):
        load(tmp_path, doc([(1, [[0, 0, 1, 0, 1, 1]])], image=name), ictx)


def test_image_without_annotations_gives_an_empty_canvas(tmp_path: Path,
                                                         ictx: ImportContext) -> None:
    (out,) = load(tmp_path, doc([]), ictx)
    assert out.name == "a/img1.png" and (out.labels == IGN).all()


# ---------------------------------------------------------------------------- round trip
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_export_requests_and_round_trip(tmp_path: Path,
                                        images: dict[str, ImageInfo]) -> None:
    requests = [RequestBox(3, "a/img1.png", top=1, left=2, height=4, width=6),
                RequestBox(5, "a/img1.png", top=5, left=8, height=2, width=3),
                RequestBox(9, "b.png", top=0, left=0, height=5, width=4)]
    ctx = ExportContext(project="p", round=2, classes=CLASSES, images=images,
                        requests=requests, out_dir=tmp_path / "rounds/2")
    fmt = get_format("coco")
    (path,) = fmt.export_requests(ctx)
    assert path == tmp_path / "rounds/2/coco_requests.json"
    req = json.loads(path.read_text())
    assert req["info"]["ralis_round"] == 2
    ims = {i["id"]: i for i in req["images"]}
    assert sorted((i["file_name"], i["width"], i["height"]) for i in ims.values()) == [
        ("a/img1.png", W, H), ("b.png", 9, 5)]
    cats = {c["id"]: c["name"] for c in req["categories"]}
    assert cats == {1: "sky", 2: "road", 3: "car", 4: "ralis-request"}
    got = sorted((a["ralis_region"], ims[a["image_id"]]["file_name"], a["bbox"], a["area"],
                  a["iscrowd"], cats[a["category_id"]]) for a in req["annotations"])
    assert got == [(3, "a/img1.png", [2, 1, 6, 4], 24, 0, "ralis-request"),
                   (5, "a/img1.png", [8, 5, 3, 2], 6, 0, "ralis-request"),
                   (9, "b.png", [0, 0, 4, 5], 20, 0, "ralis-request")]

    rng = np.random.default_rng(1)
    gts = {n: rng.choice([0, 1, 2, IGN], size=(im.height, im.width), p=[.3, .3, .3, .1])
           for n, im in images.items()}
    answers = [ImageAnswer(n, gts[n], [r for r in requests if r.image == n]) for n in gts]
    ans_path = fmt.write_answer(tmp_path / "export/coco.json", answers, ctx)

    written = json.loads(ans_path.read_text())
    masks = [a for a in written["annotations"] if a["iscrowd"] == 1]
    assert masks and all(isinstance(a["segmentation"]["counts"], str) for a in masks)
    for a in masks:
        m = mask_utils.decode({"size": a["segmentation"]["size"],
                               "counts": a["segmentation"]["counts"]})
        assert a["area"] == int(m.sum())
        ys, xs = np.nonzero(m)
        assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                             ys.max() - ys.min() + 1]

    out = {o.name: o for o in fmt.import_labels(ans_path, ImportContext(CLASSES, images))}
    assert set(out) == set(images)
    for n, im in images.items():
        inside = np.zeros((im.height, im.width), bool)
        for r in requests:
            if r.image == n:
                inside[r.top:r.top + r.height, r.left:r.left + r.width] = True
        np.testing.assert_array_equal(out[n].labels, np.where(inside, gts[n], IGN))
        assert out[n].conflicts == 0


# ---------------------------------------------------------------------------- bad input
def _one(tmp_path: Path, d: dict | str, ictx: ImportContext, *needles: str) -> str:
    with pytest.raises(LabelFileError) as e:
        load(tmp_path, d, ictx)
    msg = str(e.value)
    assert "\n" not in msg and "labels.json" in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


GOOD = doc([(1, {"size": [H, W], "counts": KNOWN_STRING})])


def _edit(f) -> dict:
    d = copy.deepcopy(GOOD)
    f(d)
    return d


def _seg(seg: object) -> dict:
    return doc([(1, seg)])


BAD = {
    "malformed json": ('{"images": [}', "not valid JSON"),
    "truncated json": (json.dumps(GOOD)[:-20], "not valid JSON"),
    "top level list": ("[]", "not a COCO JSON object"),
    "no images": (_edit(lambda d: d.pop("images")), "'images'"),
    "no annotations": (_edit(lambda d: d.pop("annotations")), "'annotations'"),
    "annotation not object": (_edit(lambda d: d["annotations"].append(3)), "annotations[1]"),
    "no segmentation": (_edit(lambda d: d["annotations"][0].pop("segmentation")),
                        "'segmentation'"),
    "no image_id": (_edit(lambda d: d["annotations"][0].pop("image_id")), "'image_id'"),
    "no category_id": (_edit(lambda d: d["annotations"][0].pop("category_id")),
                       "'category_id'"),
    "no file_name": (_edit(lambda d: d["images"][0].pop("file_name")), "'file_name'"),
    "width not int": (_edit(lambda d: d["images"][0].update(width="11")), "'width'"),
    "unknown image_id": (_edit(lambda d: d["annotations"][0].update(image_id=7)), "image_id 7"),
    "unknown category_id": (_edit(lambda d: d["annotations"][0].update(category_id=9)),
                            "category_id 9"),
    "unknown class name": (doc([(1, [[0, 0, 4, 0, 4, 4]])], cats=[(1, "truck")]),
                           "valid classes: sky, road, car"),
    "unknown image": (doc([], image="c/other.png"), "'c/other.png'"),
    "image size differs": (doc([], w=12), "native size"),
    "duplicate image id": (_edit(lambda d: d["images"].append(
        {"id": 42, "file_name": "b.png", "width": 9, "height": 5})), "used twice"),
    "image listed twice": (_edit(lambda d: d["images"].append(
        {"id": 43, "file_name": "img1.png", "width": W, "height": H})), "list each image once"),
    "duplicate category id": (doc([], cats=[(1, "sky"), (1, "road")]), "used twice"),
    "rle size differs": (_seg({"size": [W, H], "counts": KNOWN_STRING}), "[11, 7]"),
    "rle size missing": (_seg({"counts": KNOWN_STRING}), "'size'"),
    "rle counts missing": (_seg({"size": [H, W]}), "'counts'"),
    "rle counts too few": (_seg({"size": [H, W], "counts": [7, 2, 60, 1]}), "add up to 70"),
    "rle counts too many": (_seg({"size": [H, W], "counts": [7, 2, 67, 2]}), "add up to 78"),
    "rle counts negative": (_seg({"size": [H, W], "counts": [-1, 78]}), "non-negative"),
    "rle counts huge": (_seg({"size": [H, W], "counts": [2**40, 1]}), "non-negative"),
    "rle counts not ints": (_seg({"size": [H, W], "counts": [7.0, 70]}), "non-negative"),
    "rle counts bool": (_seg({"size": [H, W], "counts": [True, 76]}), "non-negative"),
    "rle string short": (_seg({"size": [H, W], "counts": rle_str(np.ones((H, W - 1)))}),
                         "exactly"),
    "rle string long": (_seg({"size": [H, W], "counts": rle_str(np.ones((H, W + 1)))}),
                        "exactly"),
    "rle string truncated": (_seg({"size": [H, W], "counts": "72S2"}), "exactly"),
    "rle string ends in continuation": (_seg({"size": [H, W], "counts": "72S2OP"}),
                                        "truncated"),
    "rle string bad chars": (_seg({"size": [H, W], "counts": "72 S2O"}), "COCO RLE string"),
    "rle string non ascii": (_seg({"size": [H, W], "counts": "72S2\u00e9"}), "COCO RLE string"),
    "rle string empty": (_seg({"size": [H, W], "counts": ""}), "COCO RLE string"),
    "rle string overlong group": (_seg({"size": [H, W], "counts": "PPPPPPP0"}),
                                  "COCO RLE string"),
    "rle counts wrong type": (_seg({"size": [H, W], "counts": 77}), "'counts'"),
    "polygon odd": (_seg([[0, 0, 4, 0, 4, 4, 0]]), "odd number"),
    "polygon two points": (_seg([[0, 0, 4, 4]]), "at least 3"),
    "polygon not numbers": (_seg([[0, 0, "4", 0, 4, 4]]), "flat list of numbers"),
    "polygon nested wrong": (_seg([0, 0, 4, 0, 4, 4]), "flat list of numbers"),
    "polygon nan": (_seg([[0, 0, float("nan"), 0, 4, 4]]), "not finite"),
    "polygon huge": (_seg([[0, 0, 1e12, 0, 4, 4]]), "far outside"),
    "empty segmentation": (_seg([]), "no segmentation"),
    "segmentation wrong type": (_seg("abc"), "'segmentation'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_error(case: str, tmp_path: Path, ictx: ImportContext) -> None:
    d, needle = BAD[case]
    _one(tmp_path, d, ictx, needle)


def test_ambiguous_basename(tmp_path: Path) -> None:
    ims = {n: ImageInfo(n, tmp_path / n, H, W) for n in ("x/i.png", "y/i.png")}
    _one(tmp_path, doc([], image="i.png"), ImportContext(CLASSES, ims), "several")


def test_not_utf8(tmp_path: Path, ictx: ImportContext) -> None:
    p = tmp_path / "labels.json"
    p.write_bytes(b'{"images": "\xff\xfe"}')
    with pytest.raises(LabelFileError, match="UTF-8"):
        coco_mod.CocoFormat().import_labels(p, ictx)


def test_bad_file_leaves_a_good_one_importable(tmp_path: Path, ictx: ImportContext) -> None:
    """Validation must keep malformed RLE away from pycocotools' C code (no crash, no garbage):
    after every bad case, a good file still decodes exactly."""
    for d, _ in BAD.values():
        with pytest.raises(LabelFileError):
            load(tmp_path, d, ictx)
    (out,) = load(tmp_path, GOOD, ictx)
    np.testing.assert_array_equal(out.labels, np.where(KNOWN, 0, IGN))
