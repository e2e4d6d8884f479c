"""Label Studio: brush RLE against the SDK's bytes, export, import, the scripted annotator."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from ralis.data.base import ClassInfo
from ralis.labelling.formats import (
    ExportContext,
    ImageAnswer,
    ImageInfo,
    ImportContext,
    LabelFileError,
    RequestBox,
    get_format,
    ls_import,
    ls_rle,
)
from ralis.labelling.formats import labelstudio as ls

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "data" / "labelstudio_golden.json"
LS_PYTHON = ROOT / ".venv-ls" / "bin" / "python"
CLASSES = ClassInfo(("road", "car", "sky"), 255, ((128, 64, 128), (0, 0, 142), (70, 130, 180)))
H_A, W_A, H_B, W_B = 7, 11, 12, 9  # non-square, so a transposition shows


def golden_cases() -> list[dict]:
    return json.loads(GOLDEN.read_text())["cases"]


def mask_of(case: dict) -> np.ndarray:
    runs = case["mask_runs"]
    return np.repeat(np.arange(len(runs)) % 2 == 1, runs).reshape(case["height"], case["width"])


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------------------- RLE


@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c["name"])
def test_golden_rle_decodes_exactly(case):
    mask = mask_of(case)
    assert ls_rle.decode(case["rle"], case["height"], case["width"]).tolist() == mask.tolist()


@pytest.mark.parametrize("case", [c for c in golden_cases() if c["encoder"] == "sdk.mask2rle"],
                         ids=lambda c: c["name"])
def test_encoder_writes_the_sdks_bytes(case):
    mask = mask_of(case)
    rle = ls_rle.encode(mask)
    assert rle == case["rle"]
    assert all(type(v) is int for v in rle)  # JSON-ready


def test_golden_covers_the_hard_cases():
    cases = {c["name"]: c for c in golden_cases()}
    assert mask_of(cases["empty-5x3"]).sum() == 0 and mask_of(cases["full-4x6"]).all()
    assert cases["full-140x130"]["height"] * cases["full-140x130"]["width"] * 4 > 65536
    assert cases["byte-aligned"]["rle"][-1] == 0  # the SDK's extra padding byte
    assert any(c["encoder"] == "literal-stream" for c in cases.values())


def test_round_trip_random_masks_and_row_major_order():
    rng = np.random.default_rng(0)
    for h, w in [(7, 11), (11, 7), (1, 1), (1, 300), (300, 1), (129, 257)]:
        mask = rng.random((h, w)) < rng.uniform(0.05, 0.95)
        assert (ls_rle.decode(ls_rle.encode(mask), h, w) == mask).all()
    mask = np.zeros((7, 11), bool)
    mask[0, 1:5] = True  # row-major: values 4..19 of 308 are painted
    rle = ls_rle.encode(mask)
    assert ls_rle.decode(rle, 11, 7).tolist() != mask.T.tolist()
    assert np.flatnonzero(ls_rle.decode(rle, 11, 7)).tolist() == [1, 2, 3, 4]


def test_1024x2048_is_fast():
    yy, xx = np.mgrid[:1024, :2048]
    mask = ((yy - 400) ** 2 + (xx - 900) ** 2 < 300 ** 2) | ((xx + yy) % 97 < 20)
    t = time.perf_counter()
    rle = ls_rle.encode(mask)
    back = ls_rle.decode(rle, 1024, 2048)
    assert time.perf_counter() - t < 2.0
    assert (back == mask).all()


@pytest.mark.parametrize("rle, what", [
    ("abc", "non-empty list"),
    ([], "non-empty list"),
    ([1, 2.5, 3], "not a list of integers"),
    (["1", "2"], "not a list of integers"),
    ([True, False] * 8, "not a list of integers"),
    ([[1, 2], [3]], "not a list of integers"),
    ([0, 0, 1, 300, 0, 0, 0, 0], "outside 0..255"),
    ([0, -1, 0, 0, 0, 0, 0, 0], "outside 0..255"),
    ([0, 0, 0, 28], "shorter than the header"),
])
def test_bad_rle_is_one_line(rle, what):
    with pytest.raises(LabelFileError) as exc:
        ls_rle.decode(rle, 7, 1, "f.json: task 3")
    assert what in one_line(exc) and "f.json: task 3" in str(exc.value)


def test_truncated_wrong_count_and_overrun_rle():
    mask = np.zeros((7, 11), bool)
    mask[2:5, 3:9] = True
    rle = ls_rle.encode(mask)
    with pytest.raises(LabelFileError) as exc:
        ls_rle.decode(rle[:-4], 7, 11)
    assert "truncated" in one_line(exc)
    with pytest.raises(LabelFileError) as exc:
        ls_rle.decode(rle, 7, 12)
    assert "308 values" in one_line(exc) and "7x12" in str(exc.value)
    # A header claiming 8 values followed by one run of 9: a run past the end.
    tail = (7 << 16) | (2 << 12) | (3 << 8) | (7 << 4) | 15  # word 8, sizes 3, 4, 8, 16
    overrun = ls_rle._pack(np.array([8, tail, 0b1_01_1000_00000000]),
                           np.array([32, 21, 15])).tolist()
    with pytest.raises(LabelFileError) as exc:
        ls_rle.decode(overrun, 2, 1)
    assert "past the 8 values" in one_line(exc)


@pytest.mark.skipif(not LS_PYTHON.exists(), reason="needs .venv-ls (label-studio-sdk==2.1.2)")
def test_the_real_sdk_decodes_our_encoder(tmp_path):
    rng = np.random.default_rng(5)
    masks = [rng.random((7, 11)) < 0.4, np.ones((140, 130), bool), np.zeros((3, 5), bool)]
    masks.append(np.pad(np.ones((20, 30), bool), ((3, 2), (5, 1))))
    (tmp_path / "in.json").write_text(json.dumps([ls_rle.encode(m) for m in masks]))
    code = ("import json, sys; from label_studio_sdk.converter.brush import decode_rle; "
            "print(json.dumps([decode_rle(r).tolist() for r in json.load(open(sys.argv[1]))]))")
    out = subprocess.run([str(LS_PYTHON), "-c", code, str(tmp_path / "in.json")],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    for mask, flat in zip(masks, json.loads(out), strict=True):
        rgba = np.asarray(flat).reshape(*mask.shape, 4)
        assert (rgba[..., 3] > 128).tolist() == mask.tolist()
        assert (rgba == np.where(mask, 255, 0)[..., None]).all()


# ----------------------------------------------------------------------------- the format


def infos() -> dict[str, ImageInfo]:
    return {"a.png": ImageInfo("a.png", Path("/nonexistent/a.png"), H_A, W_A),
            "sub/b.png": ImageInfo("sub/b.png", Path("/nonexistent/sub/b.png"), H_B, W_B)}


BOXES = [RequestBox(4, "a.png", 1, 2, 3, 4), RequestBox(9, "a.png", 4, 6, 3, 5),
         RequestBox(17, "sub/b.png", 6, 0, 6, 9)]


def export_ctx(tmp_path: Path, **kw) -> ExportContext:
    args = {"project": "demo", "round": 2, "classes": CLASSES, "images": infos(),
            "requests": BOXES, "out_dir": tmp_path, **kw}
    return ExportContext(**args)


def import_ctx() -> ImportContext:
    extra = ImageInfo("other/b2.png", Path("/nonexistent/b2.png"), 5, 5)
    return ImportContext(CLASSES, {**infos(), extra.name: extra})


def truth() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    gt = {n: rng.integers(0, 3, size=(i.height, i.width)) for n, i in infos().items()}
    gt["a.png"][2, 3] = 255  # an unlabelled pixel inside a box stays unlabelled
    return gt


def expected(gt: np.ndarray, name: str) -> np.ndarray:
    inside = ls._inside([b for b in BOXES if b.image == name], *gt.shape)
    return np.where(inside, gt, 255)


def answer_file(tmp_path: Path, **kw) -> Path:
    fmt = get_format("labelstudio")
    ctx = export_ctx(tmp_path, **kw)
    gt = truth()
    answers = [ImageAnswer(n, gt[n], [b for b in BOXES if b.image == n]) for n in gt]
    return fmt.write_answer(tmp_path / "export.json", answers, ctx)


def load(path: Path) -> list:
    return json.loads(path.read_text())


def save(tmp_path: Path, doc: object, name: str = "edited.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def labels_of(path: Path) -> dict[str, np.ndarray]:
    return {i.name: i.labels for i in get_format("labelstudio").import_labels(path, import_ctx())}


def test_config_xml(tmp_path):
    paths = get_format("labelstudio").export_requests(export_ctx(tmp_path))
    assert [p.name for p in paths] == ["labelstudio_tasks.json", "labelstudio_config.xml"]
    root = ET.parse(paths[1]).getroot()
    image = root.find("Image")
    assert image.get("name") == "image" and image.get("value") == "$image"
    for tag, name in [("BrushLabels", "label"), ("PolygonLabels", "polygon")]:
        control = root.find(tag)
        assert control.get("name") == name and control.get("toName") == "image"
        assert [(x.get("value"), x.get("background")) for x in control.findall("Label")] == [
            ("road", "#804080"), ("car", "#00008e"), ("sky", "#4682b4")]
    request = root.find("RectangleLabels")
    assert request.get("name") == "request"
    assert [x.get("value") for x in request.findall("Label")] == ["label this region"]


def test_config_without_colours_and_odd_names(tmp_path):
    classes = ClassInfo(('a "quoted" <class>', "b&c", "x"), 255, None)
    get_format("labelstudio").export_requests(export_ctx(tmp_path, classes=classes))
    labels = ET.parse(tmp_path / "labelstudio_config.xml").getroot().find("BrushLabels")
    values = [x.get("value") for x in labels.findall("Label")]
    colours = [x.get("background") for x in labels.findall("Label")]
    assert values == list(classes.names)
    assert len(set(colours)) == 3 and all(len(c) == 7 and c[0] == "#" for c in colours)


def test_tasks_known_answer(tmp_path):
    get_format("labelstudio").export_requests(export_ctx(tmp_path, project_id="c0ffee",
                                                         image_root_url="http://h:8/img/"))
    tasks = load(tmp_path / "labelstudio_tasks.json")
    origin = {"ralis_project": "demo", "ralis_project_id": "c0ffee", "ralis_round": 2}
    assert [t["data"] for t in tasks] == [
        {"image": "http://h:8/img/a.png", "ralis_image": "a.png", **origin,
         "ralis_regions": [4, 9]},
        {"image": "http://h:8/img/sub/b.png", "ralis_image": "sub/b.png", **origin,
         "ralis_regions": [17]}]
    (pred,) = tasks[0]["predictions"]
    first = pred["result"][0]
    assert (first["type"], first["from_name"], first["to_name"]) == (
        "rectanglelabels", "request", "image")
    assert (first["original_width"], first["original_height"]) == (W_A, H_A)
    v = first["value"]
    assert v["rectanglelabels"] == ["label this region"]
    assert v["x"] == pytest.approx(100 * 2 / 11) and v["y"] == pytest.approx(100 * 1 / 7)
    assert v["width"] == pytest.approx(100 * 4 / 11) and v["height"] == pytest.approx(100 * 3 / 7)
    assert len(pred["result"]) == 2  # no model: boxes only


def test_tasks_default_url_is_local_files(tmp_path):
    get_format("labelstudio").export_requests(export_ctx(tmp_path))
    urls = [t["data"]["image"] for t in load(tmp_path / "labelstudio_tasks.json")]
    assert urls == ["/data/local-files/?d=nonexistent/a.png",
                    "/data/local-files/?d=nonexistent/sub/b.png"]
    odd = {"a b#&.png": ImageInfo("a b#&.png", Path("relative.png"), H_A, W_A)}
    ctx = export_ctx(tmp_path, images=odd, requests=[RequestBox(1, "a b#&.png", 0, 0, 2, 2)])
    get_format("labelstudio").export_requests(ctx)
    task = load(tmp_path / "labelstudio_tasks.json")[0]
    assert task["data"]["image"] == "/data/local-files/?d=a%20b%23%26.png"
    assert task["data"]["ralis_image"] == "a b#&.png"


def test_prediction_only_inside_the_boxes(tmp_path):
    pred = {"a.png": np.zeros((H_A, W_A), int), "sub/b.png": np.full((H_B, W_B), 2)}
    pred["a.png"][:, 8:] = 1  # car only right of column 8 (box 9 covers columns 6..10)
    pred["sub/b.png"][:6] = 0  # road only above the box of sub/b.png: not shown
    get_format("labelstudio").export_requests(export_ctx(tmp_path, prediction=pred.get))
    tasks = load(tmp_path / "labelstudio_tasks.json")
    for task, name in zip(tasks, ["a.png", "sub/b.png"], strict=True):
        brushes = [r for r in task["predictions"][0]["result"] if r["type"] == "brushlabels"]
        h, w = pred[name].shape
        inside = ls._inside([b for b in BOXES if b.image == name], h, w)
        got = {r["value"]["brushlabels"][0]: ls_rle.decode(r["value"]["rle"], h, w)
               for r in brushes}
        want = {CLASSES.names[c]: (pred[name] == c) & inside
                for c in np.unique(pred[name][inside])}
        assert got.keys() == want.keys()
        assert all((got[k] == want[k]).all() for k in got)
        assert all(r["from_name"] == "label" and r["original_width"] == w for r in brushes)
    assert {r["value"]["brushlabels"][0] for r in tasks[1]["predictions"][0]["result"]
            if r["type"] == "brushlabels"} == {"sky"}


def test_round_trip_scripted_annotator(tmp_path):
    got = labels_of(answer_file(tmp_path))
    gt = truth()
    assert got.keys() == gt.keys()
    for name in gt:
        assert got[name].dtype == np.int32
        assert got[name].tolist() == expected(gt[name], name).tolist()
    assert got["a.png"][2, 3] == 255


def test_round_trip_ignores_the_model_prediction(tmp_path):
    wrong = {n: np.full((i.height, i.width), 1) for n, i in infos().items()}
    path = answer_file(tmp_path, prediction=wrong.get)
    parent = load(path)[0]["annotations"][0]["prediction"]
    assert any(r["type"] == "brushlabels" for r in parent["result"])
    got, gt = labels_of(path), truth()
    assert all(got[n].tolist() == expected(gt[n], n).tolist() for n in gt)


def brush(mask: np.ndarray, label: str, **kw) -> dict:
    h, w = mask.shape
    return {"type": "brushlabels", "from_name": "label", "to_name": "image",
            "original_width": w, "original_height": h,
            "value": {"format": "rle", "rle": ls_rle.encode(mask), "brushlabels": [label]}, **kw}


def task_with(results: list, name: str = "a.png", **annotation) -> dict:
    return {"id": 1, "data": {"image": "/x/" + name, "ralis_image": name},
            "annotations": [{"id": 1, "result": results, **annotation}]}


def test_overlaps_union_and_conflicts(tmp_path):
    m1, m2, m3 = (np.zeros((H_A, W_A), bool) for _ in range(3))
    m1[0:3, 0:4] = True
    m2[2:5, 2:6] = True  # road again: union
    m3[4:7, 5:9] = True  # car, overlapping road at rows 4, columns 5
    path = save(tmp_path, [task_with([brush(m1, "road"), brush(m2, "road"),
                                      brush(m3, "car")])])
    (item,) = get_format("labelstudio").import_labels(path, import_ctx())
    want = np.full((H_A, W_A), 255)
    want[m1 | m2] = 0
    want[m3] = 1
    want[m3 & (m1 | m2)] = 255
    assert item.labels.tolist() == want.tolist()
    assert item.conflicts == int((m3 & (m1 | m2)).sum()) == 1


def test_polygon_known_answer(tmp_path):
    # Columns 2..4 and rows 1..2: the pixel edges x 2..5, y 1..3, in percent of 11 x 7.
    pts = [[100 * 2 / 11, 100 / 7], [100 * 5 / 11, 100 / 7], [100 * 5 / 11, 300 / 7],
           [100 * 2 / 11, 300 / 7]]
    tri = [[0, 0], [100 * 3.2 / 11, 0], [0, 100 * 3.2 / 7]]  # centres below x + y = 3.2
    result = [{"type": "polygonlabels", "from_name": "polygon", "original_width": W_A,
               "original_height": H_A, "value": {"points": pts, "polygonlabels": ["sky"]}},
              {"type": "polygonlabels", "from_name": "polygon",
               "value": {"points": tri, "polygonlabels": ["car"], "closed": True}}]
    (item,) = get_format("labelstudio").import_labels(save(tmp_path, [task_with(result)]),
                                                      import_ctx())
    want = np.full((H_A, W_A), 255)
    want[1:3, 2:5] = 2
    want[[0, 0, 0, 1, 1, 2], [0, 1, 2, 0, 1, 0]] = 1
    assert item.labels.tolist() == want.tolist()


def test_polygon_matches_a_point_in_polygon_test():
    from matplotlib.path import Path as MplPath

    rng = np.random.default_rng(11)
    h, w = 23, 37
    centres = np.stack(np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5), -1).reshape(-1, 2)
    for _ in range(20):
        n = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))  # a star-shaped, simple polygon
        radius = rng.uniform(0.2, 0.7, n) * 50
        pts = np.stack([50 + radius * np.cos(angles), 50 + radius * np.sin(angles)], -1)
        pts += rng.uniform(-1e-3, 1e-3, pts.shape)  # off the pixel centres: no ties
        got = ls_import.polygon_mask(pts.tolist(), h, w, "t")
        want = MplPath(pts * [w / 100, h / 100]).contains_points(centres).reshape(h, w)
        assert got.tolist() == want.tolist()
    # Points outside the image are clipped, not an error.
    assert ls_import.polygon_mask([[-50, -50], [150, -50], [150, 150], [-50, 150]], h, w, "t").all()


def test_latest_non_cancelled_annotation_counts(tmp_path):
    road, car, sky = (np.zeros((H_A, W_A), bool) for _ in range(3))
    road[0, 0], car[1, 1], sky[2, 2] = True, True, True
    task = task_with([])
    task["annotations"] = [
        {"id": 1, "result": [brush(car, "car")], "created_at": "2024-01-01T10:00:00Z",
         "updated_at": "2024-03-01T10:00:00.5Z"},  # updated last: wins
        {"id": 2, "result": [brush(road, "road")], "created_at": "2024-02-01T10:00:00Z",
         "updated_at": "2024-02-01T10:00:00Z"},
        {"id": 3, "result": [brush(sky, "sky")], "created_at": "2024-05-01T10:00:00Z",
         "updated_at": "2024-05-01T10:00:00Z", "was_cancelled": True}]
    (item,) = get_format("labelstudio").import_labels(save(tmp_path, [task]), import_ctx())
    assert np.argwhere(item.labels != 255).tolist() == [[1, 1]] and item.labels[1, 1] == 1
    # Only cancelled annotations, or none: the task labels nothing.
    task["annotations"] = [task["annotations"][2]]
    other = task_with([brush(road, "road")], "sub/b.png")
    other["annotations"] = []
    assert get_format("labelstudio").import_labels(save(tmp_path, [task, other]),
                                                   import_ctx()) == []
    # No times at all: the later one in the list.
    task["annotations"] = [{"result": [brush(car, "car")]}, {"result": [brush(road, "road")]}]
    (item,) = get_format("labelstudio").import_labels(save(tmp_path, [task]), import_ctx())
    assert item.labels[0, 0] == 0 and (item.labels != 255).sum() == 1


def test_tasks_of_one_image_merge(tmp_path):
    road, car = np.zeros((H_A, W_A), bool), np.zeros((H_A, W_A), bool)
    road[0, :3], car[6, 4:] = True, True
    path = save(tmp_path, [task_with([brush(road, "road")]), task_with([brush(car, "car")])])
    (item,) = get_format("labelstudio").import_labels(path, import_ctx())
    assert (item.labels == 0).sum() == 3 and (item.labels == 1).sum() == 7


def test_image_found_by_url_basename(tmp_path):
    mask = np.zeros((H_B, W_B), bool)
    mask[3, 4] = True
    for url in ["/data/upload/4/3f2a1b4c-b.png", "/data/local-files/?d=images/sub/b.png",
                "http://host/img/sub/b.png?x=1", "/data/local-files/?d=b.png"]:
        task = task_with([brush(mask, "sky")], "sub/b.png")
        del task["data"]["ralis_image"]
        task["data"]["image"] = url
        assert list(labels_of(save(tmp_path, [task]))) == ["sub/b.png"]
    twin = ImageInfo("x/b.png", Path("/n/x/b.png"), H_B, W_B)
    ctx = ImportContext(CLASSES, {**infos(), twin.name: twin})
    fmt = get_format("labelstudio")
    task["data"]["image"] = "/data/local-files/?d=images/x/b.png"
    assert [i.name for i in fmt.import_labels(save(tmp_path, [task]), ctx)] == ["x/b.png"]
    for url in ["/data/upload/4/unknown.png", "/data/upload/4/3f2a1b4c-b.png"]:
        task["data"]["image"] = url
        with pytest.raises(LabelFileError) as exc:
            fmt.import_labels(save(tmp_path, [task]), ctx)
        assert "no single project image matches" in one_line(exc)


def to_json_min(tasks: list) -> list:
    """What Label Studio's converter writes for JSON_MIN (one record per annotation; values
    without their type, under their control's name)."""
    records = []
    for task in tasks:
        for a in task["annotations"]:
            rec = {**task["data"], "id": task["id"]}
            for r in a["result"]:
                v = {**r["value"], "original_width": r["original_width"],
                     "original_height": r["original_height"]}
                rec.setdefault(r["from_name"], []).append(v)
            rec.update({"annotator": 1, "annotation_id": a["id"], "created_at": a["created_at"],
                        "updated_at": a["updated_at"], "lead_time": 1.0})
            records.append(rec)
    return records


def test_json_min_export(tmp_path):
    path = answer_file(tmp_path)
    records = to_json_min(load(path))
    got = labels_of(save(tmp_path, records, "min.json"))
    want = labels_of(path)
    assert got.keys() == want.keys()
    assert all(got[n].tolist() == want[n].tolist() for n in want)
    # A later record of the same task wins; a task without annotations labels nothing.
    later = {**records[0], "annotation_id": 7, "updated_at": "2025-01-01T00:00:00Z",
             "label": [records[0]["label"][0]]}
    empty = {k: v for k, v in records[1].items() if k not in ("label", "request")}
    empty["annotation_id"] = None
    got = labels_of(save(tmp_path, [records[0], later, empty], "min2.json"))
    assert list(got) == ["a.png"]
    assert set(np.unique(got["a.png"]).tolist()) == {CLASSES.names.index(
        later["label"][0]["brushlabels"][0]), 255}


@pytest.mark.skipif(not LS_PYTHON.exists(), reason="needs .venv-ls (label-studio-sdk==2.1.2)")
def test_the_real_sdk_json_min_and_decoder_read_our_export(tmp_path):
    """Label Studio's own converter turns write_answer's JSON into JSON_MIN (and decodes the
    brushes): ralis reads both to the same labels, and the SDK's masks agree with ours."""
    get_format("labelstudio").export_requests(export_ctx(tmp_path))
    path = answer_file(tmp_path)
    code = """
import json, sys, numpy as np
from label_studio_sdk.converter import Converter
from label_studio_sdk.converter.brush import decode_from_annotation
config, export, out = sys.argv[1:]
Converter(config, project_dir=None, download_resources=False).convert_to_json_min(
    export, out, is_dir=False)
masks = {}
for task in json.load(open(export)):
    res = [dict(r["value"], type=r["type"], original_width=r["original_width"],
                original_height=r["original_height"]) for r in task["annotations"][0]["result"]
           if r["type"] == "brushlabels"]
    for k, v in decode_from_annotation("label", res).items():
        masks[task["data"]["ralis_image"] + "|" + k] = (v > 128).tolist()
print(json.dumps(masks))
"""
    out = subprocess.run([str(LS_PYTHON), "-c", code, str(tmp_path / "labelstudio_config.xml"),
                          str(path), str(tmp_path / "min")],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    got = labels_of(tmp_path / "min" / "result.json")
    want = labels_of(path)
    assert got.keys() == want.keys()
    assert all(got[n].tolist() == want[n].tolist() for n in want)
    for key, mask in json.loads(out).items():
        name, label = key.split("|")[0], key.split("|")[1].split("-")[1]
        assert mask == (want[name] == CLASSES.names.index(label)).tolist()


# ----------------------------------------------------------------------------- bad input


def edited(tmp_path: Path, edit) -> Path:
    doc = load(answer_file(tmp_path))
    edit(doc)
    return save(tmp_path, doc)


def result0(doc: list) -> dict:
    """The first brush result of the first task's annotation."""
    return next(r for r in doc[0]["annotations"][0]["result"] if r["type"] == "brushlabels")


def _set(d: dict, key: str, value: object) -> None:
    d[key] = value


BAD_EDITS = {
    "unknown class": (lambda d: _set(result0(d)["value"], "brushlabels", ["bus"]),
                      "unknown class 'bus'; valid classes: road, car, sky"),
    "two labels": (lambda d: _set(result0(d)["value"], "brushlabels", ["road", "car"]),
                   "exactly one class"),
    "wrong width": (lambda d: _set(result0(d), "original_width", 12),
                    "a 7x12 (HxW) result for an image of 7x11"),
    "no size": (lambda d: result0(d).pop("original_height"), "original_width/original_height"),
    "no rle": (lambda d: result0(d)["value"].pop("rle"), "format 'rle'"),
    "other format": (lambda d: _set(result0(d)["value"], "format", "png"), "format is 'png'"),
    "bad rle": (lambda d: _set(result0(d)["value"], "rle", result0(d)["value"]["rle"][:-6]),
                "bad brush RLE (truncated"),
    "rle of floats": (lambda d: _set(result0(d)["value"], "rle", [1.5] * 10),
                      "not a list of integers"),
    "no value": (lambda d: result0(d).pop("value"), "needs a type and a value"),
    "choices": (lambda d: d[0]["annotations"][0]["result"].append(
        {"type": "choices", "from_name": "q", "value": {"choices": ["x"]}}),
        "a choices result of control 'q'"),
    "other rectangles": (lambda d: _set(d[0]["annotations"][0]["result"][0], "from_name", "box"),
                         "a rectanglelabels result of control 'box'"),
    "bad polygon": (lambda d: d[0]["annotations"][0]["result"].append(
        {"type": "polygonlabels", "value": {"points": [[1, 2], [3, 4]],
                                            "polygonlabels": ["car"]}}), "at least 3 [x, y]"),
    "nan polygon": (lambda d: d[0]["annotations"][0]["result"].append(
        {"type": "polygonlabels", "value": {"points": [[1, 2], [3, 4], [5, None]],
                                            "polygonlabels": ["car"]}}), "at least 3 [x, y]"),
    "unknown image": (lambda d: _set(d[0]["data"], "ralis_image", "zzz.png"),
                      "image 'zzz.png' is not in this project"),
    "no data": (lambda d: d[0].pop("data"), "needs a data object"),
    "annotations not a list": (lambda d: _set(d[0], "annotations", {"a": 1}),
                               "an annotations list"),
    "annotation not an object": (lambda d: _set(d[0], "annotations", [3]),
                                 "annotation 0 is not an object"),
    "result not a list": (lambda d: _set(d[0]["annotations"][0], "result", {"x": 1}),
                          "result is not a list"),
    "bad time": (lambda d: _set(d[0]["annotations"][0], "updated_at", "yesterday"),
                 "is not an ISO date"),
    "no image at all": (lambda d: d[0].__setitem__("data", {"text": "x"}),
                        "neither ralis_image nor an image URL"),
}


@pytest.mark.parametrize("name", list(BAD_EDITS))
def test_bad_export_is_one_line(tmp_path, name):
    edit, needle = BAD_EDITS[name]
    path = edited(tmp_path, edit)
    with pytest.raises(LabelFileError) as exc:
        labels_of(path)
    msg = one_line(exc)
    assert needle in msg and str(path) in msg


def test_malformed_and_truncated_json(tmp_path):
    text = answer_file(tmp_path).read_text()
    for body, needle in [(text[: len(text) // 2], "is not valid JSON"), ("", "is not valid JSON"),
                         ('{"tasks": []}', "expected a list of tasks"),
                         ("[1, 2]", "entry 0 is not a task object")]:
        path = tmp_path / "broken.json"
        path.write_text(body)
        with pytest.raises(LabelFileError) as exc:
            labels_of(path)
        assert needle in one_line(exc) and str(path) in str(exc.value)
    path.write_bytes(b"\xff\xfe[\x00")
    with pytest.raises(LabelFileError) as exc:
        labels_of(path)
    assert "not UTF-8" in one_line(exc)
    with pytest.raises(LabelFileError) as exc:
        labels_of(tmp_path / "missing.json")
    assert "cannot read" in one_line(exc)


def test_empty_export_and_unchanged_input(tmp_path):
    assert labels_of(save(tmp_path, [])) == {}
    path = answer_file(tmp_path)
    before = copy.deepcopy(load(path))
    labels_of(path)
    assert load(path) == before


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".venv-ls" / "bin" / "label-studio").exists(),
                    reason="needs .venv-ls with label-studio==1.23.2")
def test_real_label_studio_server_end_to_end():
    """benchmarks/labelstudio_e2e.py --standalone: a real server on localhost (about a minute)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "labelstudio_e2e.py"),
                           "--standalone", "--port", "18097"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "0 pixel differences" in done.stdout.strip().splitlines()[-1]
