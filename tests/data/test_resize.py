"""resize: stretch | crop | tile for samples of mixed sizes."""

from __future__ import annotations

import numpy as np
import pytest

from ralis.data import create_dataset
from ralis.data.resize import crop_geometry, cut_tile, fit_to_size, tile_grid
from ralis.errors import ConfigError, DataError

from .conftest import save, write_description

CLASSES = [{"name": n, "id": i} for i, n in enumerate(("a", "b", "c", "d"))]


def column_mask(h: int, w: int) -> np.ndarray:
    """Class = column index // (w // 4): four vertical stripes 0..3."""
    return np.repeat((np.arange(w) * 4 // w)[None, :], h, axis=0).astype(np.uint8)


def test_crop_geometry_known_answers():
    assert crop_geometry(100, 200, (50, 50)) == (50, 100, 0, 25)  # short side 100 -> 50
    assert crop_geometry(30, 40, (60, 40)) == (60, 80, 0, 20)  # scaled up to cover the height
    assert crop_geometry(40, 40, (40, 40)) == (40, 40, 0, 0)


def test_crop_keeps_the_centre_undistorted_and_stretch_squeezes():
    mask = column_mask(8, 16)  # stripes 4 px wide
    image = np.zeros((8, 16, 3), np.uint8)
    _, cropped = fit_to_size(image, mask, (8, 8), "crop")
    assert cropped[0].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]  # the middle two stripes, 4 px each
    _, stretched = fit_to_size(image, mask, (8, 8), "stretch")
    assert stretched[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # all four stripes, squeezed


def test_tile_grid_and_cut():
    assert tile_grid(10, 13, (4, 4)) == (2, 3)  # the remainder (2 rows, 1 column) is dropped
    a = np.arange(10 * 13).reshape(10, 13)
    assert cut_tile(a, 1, 2, (4, 4)).tolist() == a[4:8, 8:12].tolist()


def mixed_sizes(root):
    """Two images: 8x16 and 12x8 (HxW), masks with four column stripes."""
    for name, (h, w) in (("wide", (8, 16)), ("tall", (12, 8))):
        image = np.zeros((h, w, 3), np.uint8)
        image[..., 0] = np.arange(w)[None, :]  # red = column, to find tiles again
        image[..., 1] = np.arange(h)[:, None]  # green = row
        save(root / "img" / f"{name}.png", image)
        save(root / "lbl" / f"{name}.png", column_mask(h, w))


def describe(root, **fields):
    write_description(root, classes=CLASSES,
                      splits={"train": {"images": "img/*.png", "masks": "lbl/{stem}.png"}}, **fields)


def test_folder_tiles_are_samples_with_grid_names(tmp_path):
    mixed_sizes(tmp_path)
    describe(tmp_path, resolution=[4, 4], resize="tile")
    ds = create_dataset("folder", "train", root=tmp_path)
    assert ds.names == ["tall@r0c0", "tall@r0c1", "tall@r1c0", "tall@r1c1", "tall@r2c0",
                        "tall@r2c1", "wide@r0c0", "wide@r0c1", "wide@r0c2", "wide@r0c3",
                        "wide@r1c0", "wide@r1c1", "wide@r1c2", "wide@r1c3"]
    image, mask = ds.load_u8(ds.names.index("wide@r1c2"))
    assert image.shape == (3, 4, 4)
    assert image[0, 0].tolist() == [8, 9, 10, 11] and image[1, :, 0].tolist() == [4, 5, 6, 7]
    assert (mask == 2).all()  # columns 8..11 of a 16-wide mask: stripe 2
    assert ds.sample_key(0).endswith("tall.png@r0c0")


def test_folder_crop_brings_mixed_sizes_to_one_undistorted_size(tmp_path):
    mixed_sizes(tmp_path)
    describe(tmp_path, resolution=[4, 4], resize="crop")
    ds = create_dataset("folder", "train", root=tmp_path)
    assert ds.names == ["tall", "wide"]
    _, wide = ds.load_u8(1)  # 8x16 -> 4x8, centre 4 columns: stripes 1 and 2
    assert wide.shape == (4, 4) and wide[0].tolist() == [1, 1, 2, 2]
    _, tall = ds.load_u8(0)  # 12x8 -> 6x4, all four stripes, one column each
    assert tall[0].tolist() == [0, 1, 2, 3]


def test_tile_and_crop_need_a_size_and_tiles_must_fit(tmp_path):
    mixed_sizes(tmp_path)
    describe(tmp_path, resize="tile")
    with pytest.raises(ConfigError, match="resize: tile needs a working size"):
        create_dataset("folder", "train", root=tmp_path)
    assert len(create_dataset("folder", "train", root=tmp_path, resolution=(4, 8))) == 3 + 4  # 3x1 + 2x2
    describe(tmp_path, resize="tile", resolution=[10, 10])
    with pytest.raises(DataError, match=r"tall\.png is 12x8 \(HxW\), smaller than one 10x10 tile"):
        create_dataset("folder", "train", root=tmp_path)
    describe(tmp_path, resize="squash")
    with pytest.raises(ConfigError, match="resize must be one of stretch, crop, tile"):
        create_dataset("folder", "train", root=tmp_path)


@pytest.mark.parametrize(("size", "target"), [((7, 10), (4, 13)), ((13, 6), (26, 5)),
                                              ((102, 81), (81, 102)), ((2, 201), (201, 2))])
def test_mask_resize_picks_the_pixels_pil_nearest_picks(size, target):
    """Masks stay aligned with the (PIL, bilinear) image: the same source pixels as PIL's
    NEAREST, including the rounding at exact half-pixel ties."""
    from PIL import Image

    from ralis.data.resize import resize_mask

    mask = np.random.default_rng(0).integers(0, 60000, size).astype(np.int32)
    expected = np.array(Image.fromarray(mask).resize(target[::-1], Image.NEAREST))
    assert np.array_equal(resize_mask(mask, target), expected)


def test_sixteen_bit_ids_and_the_largest_ignore_index_survive_resizing(tmp_path):
    save(tmp_path / "img" / "a.png", np.zeros((6, 8, 3), np.uint8))
    mask = np.full((6, 8), 1, np.uint16)
    mask[:, :4] = 65535
    save(tmp_path / "lbl" / "a.png", mask)
    write_description(tmp_path, classes=CLASSES, ignore_index=65535,
                      splits={"train": {"images": "img/*.png", "masks": "lbl/{stem}.png"}})
    ds = create_dataset("folder", "train", root=tmp_path, resolution=(3, 4))
    _, resized = ds.load_u8(0)
    assert resized.tolist() == [[65535, 65535, 1, 1]] * 3
    _, raw = ds.load_raw(0)
    _, stretched = fit_to_size(np.zeros((6, 8, 3), np.uint8), raw, (12, 16))
    assert stretched.dtype == np.uint16 and int(stretched.max()) == 65535
