"""The disk cache: lazy tensors index like tensors, the cache equals the in-memory data, is
keyed by content, and a simulation on it makes exactly the same choices and numbers."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from ralis.config import apply_overrides, get_preset
from ralis.data import create_dataset
from ralis.data.protocol import load_images, load_protocol
from ralis.files.arrays import Concat, LazyTensor, iter_chunks
from ralis.loop.simulate import simulate


@pytest.fixture
def lazy(tmp_path):
    data = torch.randint(0, 250, (7, 3, 5), dtype=torch.uint8)
    path = tmp_path / "x.u8"
    path.write_bytes(data.numpy().tobytes())
    return data, LazyTensor(path, (3, 5), np.uint8, 7, torch.int64)


def test_lazy_tensor_indexes_like_a_tensor(lazy):
    data, x = lazy
    ref = data.long()
    assert x.shape == ref.shape and len(x) == 7 and x.dtype == torch.int64
    assert torch.equal(x[2], ref[2]) and torch.equal(x[-1], ref[-1])
    assert torch.equal(x[1:6:2], ref[1:6:2]) and torch.equal(x[:], ref)
    idx = torch.tensor([5, 0, 5, 3])
    assert torch.equal(x[idx], ref[idx]) and torch.equal(x[[4, 1]], ref[[4, 1]])
    assert torch.equal(x[3, 1:, 2:4], ref[3, 1:, 2:4])
    assert torch.equal(x[torch.tensor([1, 2]), 0], ref[torch.tensor([1, 2]), 0])
    flags = torch.tensor([True, False, True, False, False, False, True])
    assert torch.equal(x[flags], ref[flags])
    view = x.take([6, 2, 4])
    assert torch.equal(view[:], ref[[6, 2, 4]]) and torch.equal(view.take([2, 0])[1], ref[6])
    with pytest.raises(IndexError):
        x[7]
    joined = Concat([view, ref[:2]])
    assert len(joined) == 5 and torch.equal(joined[3], ref[0]) and torch.equal(joined[1], ref[2])
    assert torch.equal(joined[[4, 0]], torch.stack([ref[1], ref[6]]))
    chunks = list(iter_chunks(joined, rows=2))
    assert [s for s, _ in chunks] == [0, 2, 3] and torch.equal(
        torch.cat([c for _, c in chunks]), torch.cat([ref[[6, 2, 4]], ref[:2]]))


def test_cache_equals_memory_and_is_built_once(tmp_path):
    ds = create_dataset("synthetic", "train", resolution=(24, 32), num_images=5, seed=1)
    mem = load_images(ds, "mem", progress=False, storage="memory")
    disk = load_images(ds, "disk", progress=False, storage="disk", cache_dir=str(tmp_path))
    assert disk.lazy and not mem.lazy
    assert torch.equal(disk.images_u8[:], mem.images_u8) and torch.equal(disk.masks[:], mem.masks)
    assert disk.masks.stored == np.uint8  # 1 byte a pixel on disk, int64 when read
    (folder,) = tmp_path.iterdir()
    stamp = (folder / "images.u8").stat().st_mtime_ns
    again = load_images(ds, "disk", progress=False, storage="disk", cache_dir=str(tmp_path))
    assert (folder / "images.u8").stat().st_mtime_ns == stamp  # read, not rebuilt
    assert torch.equal(again.subset([4, 1]).masks[:], mem.masks[[4, 1]])


def test_a_changed_source_file_is_decoded_again(tmp_path, driving):
    ds = create_dataset("folder", "train", root=driving, resolution=(8, 12))
    load_images(ds, "a", progress=False, storage="disk", cache_dir=str(tmp_path / "c"))
    mask = sorted(driving.rglob("*_label.png"))[0]
    from PIL import Image

    Image.fromarray(np.full((8, 12), 2, np.uint8)).save(mask)
    os.utime(mask, ns=(time.time_ns(), time.time_ns() + 10**9))
    ds = create_dataset("folder", "train", root=driving, resolution=(8, 12))
    fresh = load_images(ds, "b", progress=False, storage="disk", cache_dir=str(tmp_path / "c"))
    assert len(list((tmp_path / "c").iterdir())) == 2  # a new key, a new cache
    assert int(fresh.masks[0].max()) == 2 and fresh.masks[0][0, 0] == 2


def test_simulation_on_the_disk_cache_equals_memory(tmp_path):
    cfg = apply_overrides(get_preset("synthetic-tiny"), ["al.eval_every=1", "seed=2"])
    mem = load_protocol(cfg.data, progress=False)
    disk_cfg = replace(cfg, data=replace(cfg.data, storage="disk", cache_dir=str(tmp_path / "c")))
    disk = load_protocol(disk_cfg.data, progress=False)
    assert disk.pool.lazy and disk.splits == mem.splits
    a = simulate(cfg, "entropy", tmp_path / "mem", progress=False, proto=mem)
    b = simulate(disk_cfg, "entropy", tmp_path / "disk", progress=False, proto=disk)
    assert (tmp_path / "mem" / "acquired_regions.csv").read_text() == (
        tmp_path / "disk" / "acquired_regions.csv").read_text()
    for x, y in zip(a["budgets"], b["budgets"], strict=True):
        assert (x["miou"], x["val_miou"], x["class_entropy"]) == (
            y["miou"], y["val_miou"], y["class_entropy"])
    assert [s["val_miou"] for s in a["steps"]] == [s["val_miou"] for s in b["steps"]]
