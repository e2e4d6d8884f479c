"""Small generated datasets in the two layouts of issue #11 (a driving set, an aerial set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

BUILDING, ROAD, WATER = (60, 16, 152), (110, 193, 228), (226, 169, 41)
UNLABELED = (155, 155, 155)


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def write_description(root: Path, **fields) -> Path:
    path = root / "ralis-dataset.yaml"
    path.write_text(yaml.safe_dump(fields, sort_keys=False))
    return path


@pytest.fixture
def driving(tmp_path) -> Path:
    """``train/<seq>/<id>_image.jpg`` with ``<id>_label.png`` id masks beside them.

    Sequences seq01 (3 frames), seq02 (2), seq05 (2); mask of frame k in seq s is filled with
    class ``k % 3`` and has its top-left pixel void (255). 3 classes.
    """
    root = tmp_path / "driving"
    for seq, frames in (("seq01", 3), ("seq02", 2), ("seq05", 2)):
        for k in range(frames):
            stem = f"{seq[-1]}{k:03d}"
            save(root / "train" / seq / f"{stem}_image.jpg",
                 np.full((8, 12, 3), 30 * k, np.uint8), format="JPEG")
            mask = np.full((8, 12), k % 3, np.uint8)
            mask[0, 0] = 255
            save(root / "train" / seq / f"{stem}_label.png", mask)
    write_description(
        root, name="drive",
        classes=[{"name": n, "id": i} for i, n in enumerate(("road", "car", "sky"))],
        splits={"train": {"images": "train/*/*_image.jpg", "replace": {"_image": "_label"},
                          "masks": "{relpath}.png"}},
    )
    return root


@pytest.fixture
def aerial(tmp_path) -> Path:
    """``Tile N/images/part_K.jpg`` with RGB colour masks in ``Tile N/masks/part_K.png``.

    Tile 1 holds two 8x12 images, Tile 2 one 12x8 image. Each mask: top half building, bottom
    half road, except the last row, which is water in Tile 1 and the declared void colour
    (155, 155, 155) in Tile 2.
    """
    root = tmp_path / "aerial"
    for tile, parts, (h, w) in (("Tile 1", 2, (8, 12)), ("Tile 2", 1, (12, 8))):
        for k in range(parts):
            save(root / tile / "images" / f"part_{k}.jpg", np.full((h, w, 3), 90, np.uint8),
                 format="JPEG")
            mask = np.zeros((h, w, 3), np.uint8)
            mask[: h // 2] = BUILDING
            mask[h // 2:] = ROAD
            mask[-1] = WATER if tile == "Tile 1" else UNLABELED
            save(root / tile / "masks" / f"part_{k}.png", mask)
    write_description(
        root, name="aerial",
        classes=[{"name": "building", "id": 0, "color": list(BUILDING)},
                 {"name": "road", "id": 1, "color": list(ROAD)},
                 {"name": "water", "id": 2, "color": list(WATER)}],
        mask_format="rgb", void_colors=[list(UNLABELED)],
        splits={"train": {"images": "Tile */images/*.jpg", "replace": {"/images/": "/masks/"},
                          "masks": "{relpath}.png"}},
    )
    return root
