"""Palette masks whose palette order changes between files, with classes that give no colours:
the same index drawn in two colours is refused (a file at a time cannot tell, two can), pointing
to ``mask_format: rgb`` with colours; it was read as ids and gave wrong shares silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ralis.config import DataConfig
from ralis.data.base import ClassInfo
from ralis.data.check import check_data
from ralis.data.folder import FolderDataset
from ralis.data.masks import MaskSpec, decode_mask
from ralis.errors import DataError

from .conftest import save, write_description

RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)
PLAIN = ClassInfo(("building", "road", "water"), 255, None)  # no colours


def palette_png(path: Path, indices: np.ndarray, colours: list) -> Path:
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    flat = [v for c in colours for v in c]
    im.putpalette(flat + [0] * (768 - len(flat)))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def test_one_index_in_two_colours_is_refused(tmp_path):
    from ralis.data.palettes import PaletteColors

    spec = MaskSpec(PLAIN, "palette")
    a = palette_png(tmp_path / "a.png", np.array([[0, 1, 255]]), [RED, GREEN])
    b = palette_png(tmp_path / "b.png", np.array([[0, 1]]), [GREEN, RED])  # the order of use
    c = palette_png(tmp_path / "c.png", np.array([[1, 1]]), [BLUE, GREEN])  # 0 unused: fine
    tally = PaletteColors()
    assert decode_mask(a, spec, palettes=tally).tolist() == [[0, 1, 255]]
    assert decode_mask(c, spec, palettes=tally).tolist() == [[1, 1]]
    with pytest.raises(DataError, match=r"b\.png: palette index 0 is drawn as \(0, 200, 0\), but "
                                        r"as \(200, 0, 0\) in .*a\.png.*mask_format: rgb"):
        decode_mask(b, spec, palettes=tally)
    assert decode_mask(b, spec).tolist() == [[0, 1]]  # alone, a file cannot tell


@pytest.fixture
def shuffled(tmp_path) -> Path:
    """Four palette masks, half of them drawing building and road in the other order."""
    root = tmp_path / "shuffled"
    for k in range(4):
        save(root / "images" / f"{k}.png", np.full((4, 6, 3), 40 * k, np.uint8))
        mask = np.zeros((4, 6), np.uint8)
        mask[2:] = 1
        palette_png(root / "masks" / f"{k}.png", mask, [RED, GREEN] if k < 2 else [GREEN, RED])
    write_description(
        root, name="shuffled", mask_format="palette",
        classes=[{"name": n, "id": i} for i, n in enumerate(PLAIN.names)],
        splits={"train": {"images": "images/[01].png", "masks": "masks/{stem}.png"},
                "test": {"images": "images/[23].png", "masks": "masks/{stem}.png"}})
    return root


def test_data_check_refuses_a_palette_order_that_changes(shuffled):
    report = check_data(DataConfig(dataset="folder", root=str(shuffled), train_split="train",
                                   reward_split="test", test_split="test"), progress=False)
    assert any("palette index 0 is drawn as (0, 200, 0)" in e and "mask_format: rgb" in e
               for e in report["errors"]), report["errors"]


def test_splits_share_the_palette_colours(shuffled):
    from ralis.data.palettes import PaletteColors

    tally = PaletteColors()
    train = FolderDataset("train", shuffled, cache=False, palettes=tally)
    [train.load_u8(i) for i in range(len(train))]
    test = FolderDataset("test", shuffled, cache=False, palettes=tally)
    with pytest.raises(DataError, match="palette index 0"):
        test.load_u8(0)
