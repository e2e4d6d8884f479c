"""The synthetic street-scene generator: determinism, shapes, class statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from ralis.data import create_dataset
from ralis.data.street_scenes import generate_scene
from ralis.data.synthetic import DEFAULT_RESOLUTION, SYNTHETIC_CLASSES
from ralis.errors import ConfigError


@pytest.fixture(scope="module")
def train_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The whole default train split, raw: uint8 [120, 120, 160, 3], int64 [120, 120, 160]."""
    ds = create_dataset("synthetic", "train", cache=False)
    pairs = [ds.load_raw(i) for i in range(len(ds))]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def test_same_seed_gives_identical_samples_in_any_order():
    a = create_dataset("synthetic", "train", seed=3)
    b = create_dataset("synthetic", "train", seed=3)
    for i in (5, 0, 17):  # b is read in a different order than a
        image_b, mask_b = b.load_raw(i)
        image_a, mask_a = a.load_raw(i)
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(mask_a, mask_b)


def test_different_seed_split_or_index_gives_different_samples():
    base = create_dataset("synthetic", "train", seed=0).load_raw(0)[0]
    others = [
        create_dataset("synthetic", "train", seed=1).load_raw(0)[0],
        create_dataset("synthetic", "val", seed=0).load_raw(0)[0],
        create_dataset("synthetic", "train", seed=0).load_raw(1)[0],
    ]
    for other in others:
        assert not np.array_equal(base, other)


def test_shapes_and_dtypes_through_the_base_class():
    ds = create_dataset("synthetic", "train")
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, *DEFAULT_RESOLUTION)
    assert mask.dtype == torch.long and mask.shape == DEFAULT_RESOLUTION
    assert ds.classes == SYNTHETIC_CLASSES and ds.classes.num_classes == 9
    assert ds.image_size == DEFAULT_RESOLUTION


def test_split_sizes_and_num_images_option():
    sizes = {s: len(create_dataset("synthetic", s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 120, "val": 30, "test": 40}
    assert len(create_dataset("synthetic", "val", num_images=7)) == 7


def test_non_default_resolution():
    ds = create_dataset("synthetic", "test", resolution=(48, 200), num_images=3)
    image, mask = ds[2]
    assert image.shape == (3, 48, 200) and mask.shape == (48, 200)
    raw_image, raw_mask = generate_scene(np.random.default_rng([0, 2, 2]), 240, 320)
    assert raw_image.shape == (240, 320, 3) and raw_image.dtype == np.uint8
    assert raw_mask.shape == (240, 320) and raw_mask.dtype == np.int64


def test_class_frequencies_span_two_orders_of_magnitude(train_arrays):
    _, masks = train_arrays
    counts = np.bincount(masks.ravel(), minlength=256)
    per_class = counts[: SYNTHETIC_CLASSES.num_classes]
    assert (per_class > 0).all(), f"a class never appears: {per_class}"
    assert per_class.max() / per_class.min() >= 100
    assert counts[SYNTHETIC_CLASSES.ignore_index] > 0
    other = np.delete(counts, list(range(9)) + [255])
    assert other.sum() == 0


def test_classes_are_not_separable_by_colour_alone(train_arrays):
    """Even a colour lookup table fitted on the data itself (16^3 bins) is far from perfect."""
    images, masks = train_arrays
    rgb = images.reshape(-1, 3).astype(np.int64) // 16
    labels = masks.ravel()
    keep = labels != SYNTHETIC_CLASSES.ignore_index
    key = (rgb[:, 0] * 256 + rgb[:, 1] * 16 + rgb[:, 2])[keep]
    table = np.zeros((4096, 9), np.int64)
    np.add.at(table, (key, labels[keep]), 1)
    best_accuracy = table.max(axis=1).sum() / keep.sum()
    assert best_accuracy < 0.85


def test_generation_is_fast():
    ds = create_dataset("synthetic", "train", cache=False)
    start = time.perf_counter()
    for i in range(len(ds)):
        ds.load_raw(i)
    assert time.perf_counter() - start < 3.0  # about 0.3 s on 2 CPU cores


@pytest.mark.parametrize(
    ("split", "options", "message"),
    [
        ("dev", {}, "valid splits: train, val, test"),
        ("train", {"resolution": (8, 8)}, "resolution"),
        ("train", {"seed": -1}, "seed"),
        ("train", {"num_images": 0}, "num_images"),
    ],
)
def test_bad_options_are_config_errors(split, options, message):
    with pytest.raises(ConfigError, match=message):
        create_dataset("synthetic", split, **options)
