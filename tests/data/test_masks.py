"""Mask decoding rules (ralis.data.masks): ids, palette, rgb, void and unknown colours, JPEG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ralis.data.base import ClassInfo
from ralis.data.masks import (
    MaskSpec,
    UnknownColors,
    UnknownColorsError,
    decode_mask,
    decode_masks,
)
from ralis.errors import ConfigError, DataError

ROAD, CAR, SKY = (128, 64, 128), (0, 0, 142), (70, 130, 180)
CLASSES = ClassInfo(("road", "car", "sky"), 255, (ROAD, CAR, SKY))
RGB = MaskSpec(CLASSES, "rgb", void_colors=((0, 0, 0), (155, 155, 155)))


def save(path: Path, image: Image.Image | np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image.save(path, **kwargs)
    return path


def colour_mask(rows: list[tuple[int, int, int]], width: int = 3) -> np.ndarray:
    """One colour per row."""
    return np.repeat(np.array(rows, np.uint8)[:, None, :], width, axis=1)


def palette_png(path: Path, indices: np.ndarray, colours: list[tuple[int, int, int]]) -> Path:
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    flat = [v for c in colours for v in c]
    im.putpalette(flat + [0] * (768 - len(flat)))
    return save(path, im)


def test_ids_known_answer_8_and_16_bit(tmp_path):
    ids = np.array([[0, 1, 2], [255, 2, 0]], np.uint8)
    assert decode_mask(save(tmp_path / "a.png", ids), MaskSpec(CLASSES)).tolist() == ids.tolist()
    wide = np.array([[0, 1], [1000, 2]], np.uint16)
    spec = MaskSpec(ClassInfo(("a", "b", "c"), 1000))
    assert decode_mask(save(tmp_path / "b.png", wide), spec).tolist() == [[0, 1], [1000, 2]]


def test_ids_out_of_range_names_the_values(tmp_path):
    path = save(tmp_path / "a.png", np.array([[0, 7, 9]], np.uint8))
    with pytest.raises(DataError, match=r"a\.png: mask has class ids \[7, 9\] outside 0\.\.2"):
        decode_mask(path, MaskSpec(CLASSES))


def test_rgb_known_answer_with_void_colours(tmp_path):
    mask = colour_mask([ROAD, CAR, SKY, (0, 0, 0), (155, 155, 155)])
    ids = decode_mask(save(tmp_path / "m.png", mask), RGB)
    assert ids[:, 0].tolist() == [0, 1, 2, 255, 255]
    assert ids.dtype == np.uint8 and ids.shape == (5, 3)  # the smallest dtype for ids <= 255


def test_unknown_colours_are_an_error_by_default_with_counts(tmp_path):
    mask = colour_mask([ROAD, (1, 2, 3), (1, 2, 3), (9, 9, 9)], width=4)
    path = save(tmp_path / "m.png", mask)
    with pytest.raises(UnknownColorsError) as info:
        decode_mask(path, RGB)
    message = str(info.value)
    assert "2 colour(s)" in message and "(1, 2, 3): 8 px" in message and "(9, 9, 9): 4 px" in message
    assert "void_colors" in message and "strict_colors: false" in message
    assert len(message.splitlines()) == 1
    assert info.value.colors.pixels == {(1 << 16) | (2 << 8) | 3: 8, (9 << 16) | (9 << 8) | 9: 4}


def test_opting_out_makes_unknown_colours_void(tmp_path):
    mask = colour_mask([ROAD, (1, 2, 3)])
    lenient = MaskSpec(CLASSES, "rgb", strict_colors=False)
    assert decode_mask(save(tmp_path / "m.png", mask), lenient)[:, 0].tolist() == [0, 255]


def test_tally_over_many_files_counts_pixels_files_and_first_files(tmp_path):
    a = save(tmp_path / "a.png", colour_mask([ROAD, (1, 2, 3)], width=2))
    b = save(tmp_path / "b.png", colour_mask([(1, 2, 3), (1, 2, 3), (5, 5, 5)], width=2))
    c = save(tmp_path / "c.png", colour_mask([SKY]))
    tally = decode_masks([a, b, c, a], RGB)  # a twice: counted once
    assert tally.items() == [
        {"color": [1, 2, 3], "pixels": 6, "files": 2, "first_files": [str(a), str(b)]},
        {"color": [5, 5, 5], "pixels": 2, "files": 1, "first_files": [str(b)]},
    ]
    message = tally.message("split train", 3, relative_to=tmp_path)
    assert message.startswith("split train: 2 colour(s) in 2 of 3 masks are not in the class table")
    assert "(1, 2, 3): 6 px in 2 file(s) (first a.png)" in message
    assert not UnknownColors()


def test_decoding_with_a_tally_does_not_raise(tmp_path):
    tally = UnknownColors()
    path = save(tmp_path / "m.png", colour_mask([CAR, (1, 2, 3)]))
    assert decode_mask(path, RGB, tally)[:, 0].tolist() == [1, 255]
    assert tally.total_pixels == 3


@pytest.mark.parametrize("name", ["m.jpg", "m.JPEG", "m.jfif"])
def test_jpeg_masks_are_refused_by_name(tmp_path, name):
    path = save(tmp_path / name, colour_mask([ROAD, CAR]), format="JPEG")
    with pytest.raises(DataError, match="is a JPEG: lossy compression .* export the masks as PNG"):
        decode_mask(path, RGB)


def test_jpeg_masks_are_refused_by_decoded_format(tmp_path):
    path = save(tmp_path / "m.png", colour_mask([ROAD, CAR]), format="JPEG")  # a lying suffix
    for spec in (RGB, MaskSpec(CLASSES)):
        with pytest.raises(DataError, match=r"m\.png is a JPEG"):
            decode_mask(path, spec)


def test_palette_png_with_ids_format_is_refused(tmp_path):
    path = palette_png(tmp_path / "p.png", np.array([[0, 1, 2]]), [SKY, ROAD, CAR])
    with pytest.raises(DataError, match="palette PNG but mask_format is ids.*palette.*rgb"):
        decode_mask(path, MaskSpec(CLASSES))


def test_palette_format_reads_indices_and_rgb_reads_colours(tmp_path):
    # palette index 0 is drawn in the road colour, 1 in car, 2 in sky: the declared class order
    path = palette_png(tmp_path / "p.png", np.array([[0, 1, 2, 0]]), [ROAD, CAR, SKY])
    assert decode_mask(path, MaskSpec(CLASSES, "palette")).tolist() == [[0, 1, 2, 0]]
    # another tool's order: index 0 is drawn in the sky colour, 1 in road, 2 in car
    other = palette_png(tmp_path / "q.png", np.array([[0, 1, 2, 0]]), [SKY, ROAD, CAR])
    assert decode_mask(other, RGB).tolist() == [[2, 0, 1, 2]]
    # without class colours the indices are taken as they are
    plain = ClassInfo(CLASSES.names, 255)
    assert decode_mask(other, MaskSpec(plain, "palette")).tolist() == [[0, 1, 2, 0]]


def test_palette_colours_that_contradict_the_class_colours_are_an_error(tmp_path):
    other = palette_png(tmp_path / "q.png", np.array([[0, 1, 2, 0]]), [SKY, ROAD, CAR])
    with pytest.raises(DataError) as info:
        decode_mask(other, MaskSpec(CLASSES, "palette"))
    message = str(info.value)
    assert "palette index 0 is drawn as (70, 130, 180) but class 0 (road) has color " \
           "(128, 64, 128) (and 2 more ids)" in message
    assert "use mask_format: rgb" in message and len(message.splitlines()) == 1
    # only the ids that occur count: index 2 (sky) drawn right, indices 0/1 unused and wrong;
    # the ignore index 255 is not a class, whatever its palette colour
    only_sky = palette_png(tmp_path / "s.png", np.array([[2, 255]]), [SKY, ROAD, SKY])
    assert decode_mask(only_sky, MaskSpec(CLASSES, "palette")).tolist() == [[2, 255]]


def test_format_and_mode_mismatches(tmp_path):
    grey = save(tmp_path / "g.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="mode L, not a palette PNG"):
        decode_mask(grey, MaskSpec(CLASSES, "palette"))
    with pytest.raises(DataError, match=r"single-channel image \(mode L\) but mask_format is rgb"):
        decode_mask(grey, RGB)
    colour = save(tmp_path / "c.png", colour_mask([ROAD]))
    with pytest.raises(DataError, match="mode RGB; .* use mask_format: rgb"):
        decode_mask(colour, MaskSpec(CLASSES))


def test_spec_validation():
    with pytest.raises(ConfigError, match="void_colors only apply to mask_format: rgb"):
        MaskSpec(CLASSES, "ids", void_colors=((0, 0, 0),))
    with pytest.raises(ConfigError, match="also class colours"):
        MaskSpec(CLASSES, "rgb", void_colors=(ROAD,))
    with pytest.raises(ConfigError, match="needs a color"):
        MaskSpec(ClassInfo(("a",), 255), "rgb")
    with pytest.raises(ConfigError, match="one of ids, palette, rgb"):
        MaskSpec(CLASSES, "jpeg")


def test_rgb_blocks_of_rows_give_the_same_ids_and_merged_counts(tmp_path, monkeypatch):
    import ralis.data.masks as masks

    mask = colour_mask([ROAD, (1, 2, 3), CAR, (1, 2, 3), (9, 9, 9), SKY, (0, 0, 0)], width=3)
    path = save(tmp_path / "m.png", mask)
    whole, tally = decode_mask(path, RGB, UnknownColors()), UnknownColors()
    monkeypatch.setattr(masks, "BLOCK_PIXELS", 4)  # one row of 3 pixels per block
    assert decode_mask(path, RGB, tally).tolist() == whole.tolist()
    assert whole[:, 0].tolist() == [0, 255, 1, 255, 255, 2, 255]
    assert [(i["color"], i["pixels"]) for i in tally.items()] == [([1, 2, 3], 6), ([9, 9, 9], 3)]


def test_rgb_decoding_memory_stays_near_the_mask_size(tmp_path):
    """A 2000x2000 colour mask: peak numpy/Python allocations under 12 bytes per pixel (the int64
    version needed over 40), ids in uint8."""
    import tracemalloc

    mask = np.empty((2000, 2000, 3), np.uint8)
    mask[:] = ROAD
    mask[::3] = CAR
    mask[:, ::7] = SKY
    path = save(tmp_path / "big.png", mask)
    tracemalloc.start()
    try:
        ids = decode_mask(path, RGB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ids.dtype == np.uint8 and peak < 12 * 2000 * 2000
    assert ids[0, 1] == 1 and ids[1, 1] == 0 and ids[1, 0] == 2


def test_ids_dtype_grows_with_the_ignore_index(tmp_path):
    wide = MaskSpec(ClassInfo(CLASSES.names, 300, CLASSES.colors), "rgb", strict_colors=False)
    ids = decode_mask(save(tmp_path / "m.png", colour_mask([CAR, (1, 1, 1)])), wide)
    assert ids.dtype == np.uint16 and ids[:, 0].tolist() == [1, 300]


def test_builtin_readers_follow_the_ids_rules(tmp_path):
    """read_ids (CamVid, Cityscapes): single-channel ids as stored; palette, colour and JPEG
    masks refused with one line."""
    from ralis.data.masks import read_ids

    ids = np.array([[0, 3, 11]], np.uint8)
    assert read_ids(save(tmp_path / "a.png", ids)).tolist() == ids.tolist()
    palette = palette_png(tmp_path / "p.png", np.array([[0, 1]]), [ROAD, CAR])
    with pytest.raises(DataError, match=r"p\.png is a palette PNG; expected a single-channel"):
        read_ids(palette)
    with pytest.raises(DataError, match="mode RGB; expected a single-channel"):
        read_ids(save(tmp_path / "c.png", colour_mask([ROAD])))
    jpeg = save(tmp_path / "j.png", np.zeros((8, 8), np.uint8), format="JPEG")
    with pytest.raises(DataError, match=r"j\.png is a JPEG: .*export the masks as PNG"):
        read_ids(jpeg)
