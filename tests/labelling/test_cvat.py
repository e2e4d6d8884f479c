"""CVAT for images 1.1 XML: RLE and raster known answers, round trips, conflicts, bad inputs."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import defusedxml.ElementTree as SafeET
import numpy as np
import pytest

from ralis.data.base import ClassInfo
from ralis.labelling.formats import (
    FORMATS,
    ExportContext,
    ImageAnswer,
    ImageInfo,
    ImportContext,
    LabelFileError,
    RequestBox,
    get_format,
)
from ralis.labelling.formats import cvat_raster as cvat

CLASSES = ClassInfo(("road", "car", "sky"), 255, ((128, 64, 128), (0, 0, 142), (70, 130, 180)))
IGN = 255


@pytest.fixture
def images(tmp_path: Path) -> dict[str, ImageInfo]:
    """Two non-square images (7x11 and 9x5, HxW), one inside a folder."""
    return {"seq/a.png": ImageInfo("seq/a.png", tmp_path / "seq/a.png", 7, 11),
            "b.png": ImageInfo("b.png", tmp_path / "b.png", 9, 5)}


@pytest.fixture
def ictx(images) -> ImportContext:
    return ImportContext(CLASSES, images)


def xml_file(tmp_path: Path, body: str, name: str = "annotations.xml") -> Path:
    """A CVAT-like file with ``body`` inside ``<annotations>``."""
    path = tmp_path / name
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n'
                    f"<version>1.1</version>\n{body}\n</annotations>\n", encoding="utf-8")
    return path


def image_a(shapes: str, name: str = "seq/a.png", w: int = 11, h: int = 7) -> str:
    return f'<image id="0" name="{name}" width="{w}" height="{h}">{shapes}</image>'


def load_one(path: Path, ctx: ImportContext):
    (out,) = get_format("cvat").import_labels(path, ctx)
    return out


def one_line_error(path: Path, ctx: ImportContext, *needles: str) -> str:
    with pytest.raises(LabelFileError) as exc:
        get_format("cvat").import_labels(path, ctx)
    msg = str(exc.value)
    assert "\n" not in msg and path.name in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# ----------------------------------------------------------------------------- RLE


# Hand-worked 3x4 (HxW): row-major 1 1 0 0 | 0 1 1 1 | 0 0 0 0 -> runs bg 0, fg 2, bg 3, fg 3,
# bg 4: the first count is 0 (the box starts with foreground) and there are 5 (odd) counts.
MASK_3X4 = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
RLE_3X4 = [0, 2, 3, 3, 4]


def test_rle_known_answer():
    assert cvat.encode_rle(MASK_3X4) == RLE_3X4
    np.testing.assert_array_equal(cvat.decode_rle(RLE_3X4, 3, 4), MASK_3X4)
    # column-major (COCO) order would give different counts: the test catches a transpose
    assert cvat.encode_rle(MASK_3X4.T) != RLE_3X4
    assert cvat.encode_rle(np.zeros((3, 4), bool)) == [12]
    assert cvat.encode_rle(np.ones((2, 3), bool)) == [0, 6]
    assert cvat.encode_rle([[0, 0, 1]]) == [2, 1]  # ends with foreground: even count


def test_rle_round_trip_random():
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(1, 9, 2)
        m = rng.random((h, w)) < rng.random()
        counts = cvat.encode_rle(m)
        assert sum(counts) == h * w and all(c > 0 for c in counts[1:])
        np.testing.assert_array_equal(cvat.decode_rle(counts, h, w), m)


def test_import_mask_known_answer(tmp_path, ictx):
    path = xml_file(tmp_path, image_a(
        '<mask label="car" source="manual" occluded="0" rle="0, 2, 3, 3, 4" left="5" top="2" '
        'width="4" height="3" z_order="0"></mask>'))
    out = load_one(path, ictx)
    want = np.full((7, 11), IGN)
    want[2:5, 5:9][MASK_3X4] = 1
    assert out.name == "seq/a.png" and out.conflicts == 0
    np.testing.assert_array_equal(out.labels, want)


def test_cvat_sdk_agrees_on_rle():
    masks = pytest.importorskip("cvat_sdk.masks")
    rng = np.random.default_rng(1)
    for _ in range(100):
        h, w = rng.integers(1, 10, 2)
        m = rng.random((h, w)) < rng.random()
        x1, y1 = rng.integers(0, w), rng.integers(0, h)
        x2, y2 = rng.integers(x1 + 1, w + 1), rng.integers(y1 + 1, h + 1)
        ref = masks.encode_mask(m, bbox=[x1, y1, x2, y2])
        assert ref[:-4] == cvat.encode_rle(m[y1:y2, x1:x2])
        assert ref[-4:] == [x1, y1, x2 - 1, y2 - 1]  # right/bottom inclusive in CVAT


# ----------------------------------------------------------------------------- shapes


def test_polygon_rectangle_known_answer(tmp_path, ictx):
    # corners (1,2)..(4,5) in CVAT's continuous coordinates cover columns 1..3 and rows 2..4
    path = xml_file(tmp_path, image_a(
        '<polygon label="road" points="1.00,2.00;4.00,2.00;4.00,5.00;1.00,5.00"/>'))
    want = np.full((7, 11), IGN)
    want[2:5, 1:4] = 0
    np.testing.assert_array_equal(load_one(path, ictx).labels, want)


def test_polygon_triangle_known_answer():
    got = cvat.fill_polygon(np.array([[0, 0], [4, 0], [0, 4]]), 5, 6)
    # pixel (r, c) is in when its centre has x + y <= 4: centres on the hypotenuse (a right
    # edge) count, those on the left edge x = 0 cannot occur; 4 + 3 + 2 + 1 pixels
    r, c = np.mgrid[0:5, 0:6]
    np.testing.assert_array_equal(got, r + c + 1 <= 4)
    assert got.sum() == 10


def test_polygon_matches_pixel_centre_test():
    from matplotlib.path import Path as MplPath

    rng = np.random.default_rng(2)
    h, w = 13, 17
    yy, xx = np.mgrid[0:h, 0:w]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    for _ in range(40):
        pts = rng.uniform(-3, 20, (7, 2))
        pts = pts[np.argsort(np.arctan2(*(pts - pts.mean(0)).T))]  # a simple (star) polygon
        want = MplPath(pts).contains_points(centres).reshape(h, w)
        np.testing.assert_array_equal(cvat.fill_polygon(pts, h, w), want)


def test_polygons_sharing_an_edge_split_its_pixels(tmp_path, ictx):
    # a 8x5 rectangle cut along its diagonal into two triangles of different classes
    path = xml_file(tmp_path, image_a(
        '<polygon label="road" points="1,1;9,1;1,6"/>'
        '<polygon label="car" points="9,1;9,6;1,6"/>'))
    out = load_one(path, ictx)
    assert out.conflicts == 0
    labelled = out.labels != IGN
    want = np.zeros((7, 11), bool)
    want[1:6, 1:9] = True
    np.testing.assert_array_equal(labelled, want)
    assert {0, 1} <= set(np.unique(out.labels[labelled]))


def test_class_boxes_and_ellipses_are_pixels(tmp_path, ictx):
    path = xml_file(tmp_path, image_a(
        '<box label="ralis-request" xtl="0" ytl="0" xbr="11" ybr="7"/>'
        '<box label="sky" xtl="0.00" ytl="0.00" xbr="3.00" ybr="2.00" occluded="0"/>'
        '<box label="road" xtl="6" ytl="2" xbr="8" ybr="6" rotation="90"/>'
        '<ellipse label="car" cx="5" cy="5" rx="1.5" ry="1.5"/>'))
    want = np.full((7, 11), IGN)
    want[0:2, 0:3] = 2
    want[3:5, 5:9] = 0  # 2 wide, 4 tall box turned by 90 degrees about its centre (7, 4)
    want[4:6, 4:6] = 1  # centres within 1.5 of (5, 5)
    out = load_one(path, ictx)
    assert out.conflicts == 1  # road and car both claim (4, 5)
    want[4, 5] = IGN
    np.testing.assert_array_equal(out.labels, want)


def test_rotated_ellipse_swaps_axes():
    a = cvat.fill_ellipse(5, 4, 3.2, 1.1, 90, 9, 11)
    b = cvat.fill_ellipse(5, 4, 1.1, 3.2, 0, 9, 11)
    np.testing.assert_array_equal(a, b)
    assert a.sum() > 0


def test_request_boxes_and_other_shapes_are_skipped(tmp_path, ictx):
    path = xml_file(tmp_path, image_a(
        '<box label="ralis-request" xtl="1" ytl="1" xbr="5" ybr="5">'
        '<attribute name="region">3</attribute></box>'
        '<polyline label="road" points="0,0;5,5"/><points label="car" points="1,1"/>'
        '<tag label="sky"/>') + image_a("", name="b.png", w=5, h=9))
    assert get_format("cvat").import_labels(path, ictx) == []


# ----------------------------------------------------------------------------- conflicts


def test_conflict_rule(tmp_path, ictx):
    path = xml_file(tmp_path, image_a(
        '<mask label="road" rle="0, 6" left="0" top="0" width="3" height="2"/>'
        '<mask label="road" rle="0, 6" left="2" top="0" width="3" height="2"/>'
        '<polygon label="sky" points="4,1;6,1;6,3;4,3"/>'))
    out = load_one(path, ictx)
    want = np.full((7, 11), IGN)
    want[0:2, 0:5] = 0  # union of the two road masks, their overlap (column 2) is no conflict
    want[1:3, 4:6] = 2
    want[1, 4] = IGN  # road and sky both claim (1, 4)
    assert out.conflicts == 1
    np.testing.assert_array_equal(out.labels, want)


# ----------------------------------------------------------------------------- round trip


def make_ctx(images, out_dir: Path, requests) -> ExportContext:
    return ExportContext("demo", 2, CLASSES, images, requests, out_dir)


def test_export_writes_cvat_for_images(tmp_path, images):
    requests = [RequestBox(7, "seq/a.png", 1, 2, 3, 4), RequestBox(9, "b.png", 0, 0, 9, 5),
                RequestBox(8, "seq/a.png", 4, 6, 3, 5)]
    ctx = make_ctx(images, tmp_path / "round", requests)
    paths = get_format("cvat").export_requests(ctx)
    assert [p.name for p in paths] == ["cvat_annotations.xml", "cvat_images.txt",
                                       "cvat_labels.json"]
    root = SafeET.parse(paths[0]).getroot()
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    task = root.find("meta/task")
    assert task.findtext("mode") == "annotation" and task.findtext("size") == "2"
    labels = {lb.findtext("name"): lb for lb in task.findall("labels/label")}
    assert list(labels) == ["road", "car", "sky", "ralis-request"]
    assert labels["car"].findtext("color") == "#00008e"
    assert labels["ralis-request"].findtext("attributes/attribute/name") == "region"
    imgs = root.findall("image")
    assert [(i.get("id"), i.get("name"), i.get("width"), i.get("height")) for i in imgs] == [
        ("0", "b.png", "5", "9"), ("1", "seq/a.png", "11", "7")]
    boxes = imgs[1].findall("box")
    assert [b.attrib for b in boxes][0] == {
        "label": "ralis-request", "source": "auto", "occluded": "0", "xtl": "2.00",
        "ytl": "1.00", "xbr": "6.00", "ybr": "4.00", "z_order": "0"}
    assert [b.findtext("attribute[@name='region']") for b in boxes] == ["7", "8"]
    assert paths[1].read_text().splitlines() == ["b.png", "seq/a.png"]
    spec = json.loads(paths[2].read_text())
    assert [s["name"] for s in spec] == ["road", "car", "sky", "ralis-request"]
    # the exported requests read back as "nothing labelled", never as labels
    assert get_format("cvat").import_labels(paths[0], ImportContext(CLASSES, images)) == []


def test_round_trip_non_square(tmp_path, images):
    rng = np.random.default_rng(3)
    requests = [RequestBox(1, "seq/a.png", 1, 2, 4, 6), RequestBox(2, "seq/a.png", 3, 7, 4, 4),
                RequestBox(3, "b.png", 2, 1, 6, 3)]
    ctx = make_ctx(images, tmp_path / "round", requests)
    get_format("cvat").export_requests(ctx)
    answers, inside = [], {}
    for name, info in images.items():
        gt = rng.integers(0, 3, (info.height, info.width))
        gt[rng.random(gt.shape) < 0.2] = IGN  # the person leaves some pixels unlabelled
        boxes = [b for b in requests if b.image == name]
        answers.append(ImageAnswer(name, gt, boxes))
        inside[name] = np.zeros(gt.shape, bool)
        for b in boxes:
            inside[name][b.top:b.top + b.height, b.left:b.left + b.width] = True
    answer = get_format("cvat").write_answer(tmp_path / "export/annotations.xml", answers, ctx)
    out = {o.name: o for o in get_format("cvat").import_labels(answer, ImportContext(
        CLASSES, images))}
    assert set(out) == set(images)
    for a in answers:
        want = np.where(inside[a.name], a.labels, IGN)
        np.testing.assert_array_equal(out[a.name].labels, want)
        assert out[a.name].conflicts == 0
    # the answer is CVAT's layout: one <mask> per class, tight box, width = right - left + 1
    masks = SafeET.parse(answer).getroot().findall("image[@name='b.png']/mask")
    assert sorted(m.get("label") for m in masks) == sorted(
        CLASSES.names[c] for c in np.unique(answers[1].labels[inside["b.png"]]) if c != IGN)


def test_round_trip_decodes_with_cvat_sdk(tmp_path, images):
    masks = pytest.importorskip("cvat_sdk.masks")
    gt = np.zeros((7, 11), int)
    gt[2:5, 3:9] = 1
    req = [RequestBox(1, "seq/a.png", 1, 2, 5, 8)]
    ctx = make_ctx(images, tmp_path, req)
    path = get_format("cvat").write_answer(tmp_path / "a.xml", [ImageAnswer("seq/a.png", gt,
                                                                            req)], ctx)
    for m in SafeET.parse(path).getroot().iter("mask"):
        left, top, w, h = (int(m.get(k)) for k in ("left", "top", "width", "height"))
        points = [int(c) for c in m.get("rle").split(",")] + [left, top, left + w - 1,
                                                                top + h - 1]
        full = masks.decode_mask(points, image_width=11, image_height=7)
        cid = CLASSES.names.index(m.get("label"))
        np.testing.assert_array_equal(full, (gt == cid) & (np.arange(7)[:, None] >= 1)
                                      & (np.arange(7)[:, None] < 6) & (np.arange(11) >= 2)
                                      & (np.arange(11) < 10))


def test_zip_and_folder_inputs(tmp_path, ictx):
    body = image_a('<mask label="sky" rle="0, 1" left="10" top="6" width="1" height="1"/>')
    folder = tmp_path / "task"
    folder.mkdir()
    xml = xml_file(folder, body)
    zpath = tmp_path / "task.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(xml, "annotations.xml")
        zf.writestr("images/x.png", b"")
    for path in (xml, folder, zpath):
        assert load_one(path, ictx).labels[6, 10] == 2


def test_registered():
    assert "cvat" in FORMATS and get_format("cvat").name == "cvat"


# ----------------------------------------------------------------------------- image names


def test_image_name_matching(tmp_path, ictx, images):
    mask = '<mask label="road" rle="0, 1" left="0" top="0" width="1" height="1"/>'
    # CVAT dropped the folder: matched by its unique file name
    assert load_one(xml_file(tmp_path, image_a(mask, name="a.png")), ictx).name == "seq/a.png"
    one_line_error(xml_file(tmp_path, image_a(mask, name="zzz.png")), ictx, "zzz.png",
                   "not in this project")
    two = dict(images, **{"other/a.png": ImageInfo("other/a.png", Path("x"), 7, 11)})
    one_line_error(xml_file(tmp_path, image_a(mask, name="a.png")), ImportContext(CLASSES, two),
                   "several", "other/a.png")


def test_image_size_must_match(tmp_path, ictx):
    path = xml_file(tmp_path, image_a(
        '<mask label="road" rle="0, 1" left="0" top="0" width="1" height="1"/>', w=7, h=11))
    one_line_error(path, ictx, "7x11", "11x7")


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(("rle", "box", "needle"), [
    ("1, 2.5, 9", (0, 0, 4, 3), "integer"),  # counts not integers
    ("-1, 13", (0, 0, 4, 3), "integer"),  # negative
    ("1, x, 3", (0, 0, 4, 3), "integer"),
    ("", (0, 0, 4, 3), "integer"),
    ("0, 2, 3, 3, 5", (0, 0, 4, 3), "add up to 13"),  # sum != width*height
    ("0, 2, 3, 3, 3", (0, 0, 4, 3), "add up to 11"),
    ("999999999999999, " * 9300 + "12", (0, 0, 4, 3), "add up to more"),  # would wrap int64
    ("0, 2, 3, 3, 4", (8, 0, 4, 3), "does not fit"),  # box past the right edge (11 wide)
    ("0, 2, 3, 3, 4", (0, 5, 4, 3), "does not fit"),  # box past the bottom (7 tall)
    ("0", (0, 0, 0, 3), "does not fit"),  # empty box
])
def test_bad_rle(tmp_path, ictx, rle, box, needle):
    left, top, w, h = box
    path = xml_file(tmp_path, image_a(
        f'<mask label="car" rle="{rle}" left="{left}" top="{top}" width="{w}" height="{h}"/>'))
    one_line_error(path, ictx, needle, "seq/a.png")


def test_bad_mask_box_numbers(tmp_path, ictx):
    path = xml_file(tmp_path, image_a(
        '<mask label="car" rle="0, 12" left="-1" top="0" width="4" height="3"/>'))
    one_line_error(path, ictx, "left=")


@pytest.mark.parametrize("text", [
    '<?xml version="1.0"?><annotations><image id="0" name="b.png"><mask',  # truncated
    '<annotations><image id="0" name="b.png"></annotations>',  # mismatched tag
    "",  # empty file
    "not xml at all",
])
def test_malformed_xml(tmp_path, ictx, text):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    one_line_error(path, ictx, "XML")


def test_entity_expansion_is_refused(tmp_path, ictx):
    path = tmp_path / "bomb.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                    '<!ENTITY lol2 "&lol;&lol;&lol;">]><annotations>&lol2;</annotations>')
    one_line_error(path, ictx, "forbidden")


def test_wrong_documents(tmp_path, ictx):
    path = tmp_path / "voc.xml"
    path.write_text("<annotation><object/></annotation>")
    one_line_error(path, ictx, "<annotation>")
    video = xml_file(tmp_path, '<track id="0" label="car"><box frame="0" xtl="0" ytl="0" '
                     'xbr="1" ybr="1" outside="0" occluded="0" keyframe="1"/></track>', "v.xml")
    one_line_error(video, ictx, "CVAT for video")
    one_line_error(tmp_path / "missing.xml", ictx, "no such file")
    zpath = tmp_path / "empty.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("readme.txt", "")
    one_line_error(zpath, ictx, "0 annotations.xml")
    trunc = tmp_path / "trunc.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("annotations.xml", "<annotations>" + "<image/>" * 1000 + "</annotations>")
    trunc.write_bytes(buf.getvalue()[:-30])  # central directory cut off
    with pytest.raises(LabelFileError) as exc:
        get_format("cvat").import_labels(trunc, ictx)
    assert "\n" not in str(exc.value)


def test_unknown_class_lists_valid_names(tmp_path, ictx):
    path = xml_file(tmp_path, image_a('<polygon label="truck" points="0,0;2,0;2,2"/>'))
    one_line_error(path, ictx, "'truck'", "road, car, sky")


def test_request_label_on_a_pixel_shape(tmp_path, ictx):
    path = xml_file(tmp_path, image_a('<polygon label="ralis-request" points="0,0;2,0;2,2"/>'))
    one_line_error(path, ictx, "ralis-request", "class label")


@pytest.mark.parametrize(("shape", "needle"), [
    ('<polygon label="road" points="0,0;2,0"/>', "at least 3"),
    ('<polygon label="road" points="0,0;2;2,2"/>', "points="),
    ('<polygon label="road" points="0,0;a,1;2,2"/>', "points="),
    ('<polygon label="road" points="0,0;nan,1;2,2"/>', "points="),
    ('<polygon label="road"/>', "'points' is missing"),
    ('<box label="road" xtl="0" ytl="0" xbr="inf" ybr="1"/>', "xbr="),
    ('<box label="road" xtl="3" ytl="0" xbr="1" ybr="1"/>', "inverted"),
    ('<box label="road" xtl="0" ytl="0" xbr="1"/>', "'ybr' is missing"),
    ('<ellipse label="road" cx="1" cy="1" rx="x" ry="1"/>', "rx="),
])
def test_bad_shapes(tmp_path, ictx, shape, needle):
    one_line_error(xml_file(tmp_path, image_a(shape)), ictx, needle)


def test_image_without_name(tmp_path, ictx):
    path = xml_file(tmp_path, '<image id="4" width="11" height="7"><polygon label="road" '
                    'points="0,0;2,0;2,2"/></image>')
    one_line_error(path, ictx, "id=4", "no name")


def test_colours_without_a_palette(tmp_path, images):
    classes = ClassInfo(tuple(f"c{i}" for i in range(12)), 255, None)
    ctx = ExportContext("demo", 0, classes, images, [RequestBox(0, "b.png", 0, 0, 1, 1)],
                        tmp_path)
    spec = json.loads(get_format("cvat").export_requests(ctx)[2].read_text())
    colours = [s["color"] for s in spec]
    assert len(set(colours)) == 13
    assert all(len(c) == 7 and c[0] == "#" and int(c[1:], 16) >= 0 for c in colours)
