"""Datasets: the shared contract (:mod:`ralis.data.base`) and the registered readers.

``create_dataset("camvid", "train", root=..., resolution=(180, 240))`` builds a reader by name;
registered names: ``camvid``, ``cityscapes``, ``folder`` (your own data, see
:mod:`ralis.data.folder`) and ``synthetic`` (generated street scenes, no download).

Masks are decoded by one set of rules in :mod:`ralis.data.masks`: a ``folder`` dataset's with
:func:`~ralis.data.masks.decode_mask` (its ``mask_format``), CamVid's and Cityscapes' class-id PNGs
with :func:`~ralis.data.masks.read_ids`, the ``ids`` rules of the same module (lossless, one
channel, no palette PNG). The label checks a run makes are in :mod:`ralis.data.sanity`, and
``ralis data check`` (:mod:`ralis.data.check`) reports them per split without training.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from ralis.data.base import ClassInfo, SegmentationDataset, Subset
from ralis.data.camvid import CamVid
from ralis.data.cityscapes import Cityscapes
from ralis.data.folder import FolderDataset
from ralis.data.synthetic import SyntheticStreets
from ralis.errors import ConfigError
from ralis.registry import Registry

__all__ = [
    "DATASETS",
    "ClassInfo",
    "SegmentationDataset",
    "Subset",
    "create_dataset",
    "dataset_classes",
]

DatasetFactory = Callable[..., SegmentationDataset]

DATASETS: Registry[DatasetFactory] = Registry("dataset")
DATASETS.register("camvid")(CamVid)
DATASETS.register("cityscapes")(Cityscapes)
DATASETS.register("folder")(FolderDataset)
DATASETS.register("synthetic")(SyntheticStreets)


def _check_options(name: str, factory: DatasetFactory, options: dict[str, object]) -> None:
    """Unknown keyword options -> ConfigError listing the ones the dataset takes."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    fixed = {"split", "root", "resolution"}
    unknown = sorted(set(options) - set(params))
    if unknown:
        valid = ", ".join(p for p in params if p not in fixed) or "none"
        raise ConfigError(f"dataset {name!r} has no option {', '.join(unknown)}; options: {valid}")


def create_dataset(
    name: str,
    split: str,
    root: str | Path | None = None,
    resolution: tuple[int, int] | None = None,
    **options: object,
) -> SegmentationDataset:
    """Build the registered dataset ``name`` for one split.

    Args:
        name: a registered name (``DATASETS.names()``); unknown -> ConfigError listing them.
        split: split name (``train``/``val``/``test``, or a ``folder`` description's splits).
        root: dataset folder (or description file for ``folder``); None -> the reader's default.
        resolution: ``(H, W)`` working resolution, None for the native size.
        **options: reader-specific options (e.g. ``seed``, ``num_images`` for ``synthetic``;
            ``cache`` for all).
    """
    factory = DATASETS.get(name)
    _check_options(name, factory, options)
    return factory(split=split, root=root, resolution=resolution, **options)


def dataset_classes(name: str, root: str | Path | None = None, **options: object) -> ClassInfo:
    """The class list of dataset ``name`` without loading any image (for ``folder``: reads the
    description only)."""
    factory = DATASETS.get(name)
    _check_options(name, factory, options)
    class_info = getattr(factory, "class_info", None)
    if class_info is None:  # a plain factory function: build a split and read its classes
        return factory(split="train", root=root, resolution=None, **options).classes
    return class_info(root=root, **options)
