"""Images and masks at the working resolution, on disk, read lazily.

A split is decoded once per (dataset, split, resolution, reader settings, source files) into two
files of fixed-size records under the cache folder (``data.cache_dir``, else ``$RALIS_CACHE_DIR``,
else ``~/.cache/ralis``): ``images.u8`` (uint8 ``[3, H, W]`` per image) and ``masks.u8`` (uint8,
or uint16 when an id or the ignore index is above 255, ``[H, W]`` per image), with ``meta.json``.
The folder's name is a content key: the reader, its settings and every source file's path, size
and modification time, so a changed dataset is decoded again, never read stale. A build writes to
temporary files and renames them when complete, under a lock, so two processes never read half a
cache and a crashed build starts over.

:func:`build_split` returns :class:`ralis.files.arrays.LazyTensor` views on the two files (masks
come back as ``int64``); :class:`ralis.files.arrays.Concat` puts views end to end (D_T before the
pool in the final training).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ralis.errors import ConfigError, DataError
from ralis.files.arrays import LazyTensor
from ralis.files.folders import open_lock_file

CACHE_FORMAT = 1
# ------------------------------------------------------------------------------------ building
def mask_dtype(num_classes: int, ignore_index: int) -> np.dtype:
    return np.dtype(np.uint8 if max(num_classes - 1, ignore_index) < 256 else np.uint16)


def cache_key(parts: dict) -> str:
    text = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def build_split(folder: Path, count: int, size: tuple[int, int], stored_mask: np.dtype,
                load: Callable[[int], tuple[torch.Tensor, torch.Tensor]], names: list[str],
                key_parts: dict, progress: Callable | None = None) -> tuple[LazyTensor, LazyTensor]:
    """Decode ``count`` samples with ``load(i) -> (image uint8 [3,H,W], mask [H,W])`` into
    ``folder`` (once), and return lazy views on them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    H, W = size
    images_path, masks_path, meta_path = (folder / "images.u8", folder / "masks.u8",
                                          folder / "meta.json")
    lock = open_lock_file(folder / ".lock")  # no link followed, never truncated
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait, then read
        if not meta_path.is_file():
            tmp_i, tmp_m = folder / "images.u8.tmp", folder / "masks.u8.tmp"
            with open(tmp_i, "wb") as fi, open(tmp_m, "wb") as fm:
                items = progress(range(count)) if progress else range(count)
                for i in items:
                    image, mask = load(i)
                    if tuple(image.shape[-2:]) != (H, W):
                        raise DataError(
                            f"{names[i]}: image is {tuple(image.shape[-2:])} but the first is "
                            f"{(H, W)}; set a working resolution (--resolution HxW; for your own "
                            "data also resize: crop or tile)")
                    fi.write(image.numpy().astype(np.uint8, copy=False).tobytes())
                    fm.write(mask.numpy().astype(stored_mask).tobytes())
                fi.flush()
                fm.flush()
                os.fsync(fi.fileno())
                os.fsync(fm.fileno())
            os.replace(tmp_i, images_path)
            os.replace(tmp_m, masks_path)
            meta = {"format": CACHE_FORMAT, "count": count, "size": [H, W],
                    "mask_dtype": np.dtype(stored_mask).str, "names": names, "key": key_parts}
            tmp = folder / "meta.json.tmp"
            tmp.write_text(json.dumps(meta, default=str))
            os.replace(tmp, meta_path)
        meta = json.loads(meta_path.read_text())
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    if meta["count"] != count or meta["names"] != names:
        raise DataError(f"the cache {folder} does not match the dataset; delete it and run again")
    images = LazyTensor(images_path, (3, H, W), np.uint8, count, torch.uint8)
    masks = LazyTensor(masks_path, (H, W), np.dtype(meta["mask_dtype"]), count, torch.int64)
    return images, masks


def check_storage(storage: str) -> None:
    if storage not in ("auto", "memory", "disk"):
        raise ConfigError(f"data.storage must be auto, memory or disk, got {storage!r}")
