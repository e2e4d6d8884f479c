"""What a shared file says about itself: the data it was trained on and its region grid."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ralis.files.arrays import iter_chunks

__all__ = ["data_hash", "data_record"]


def data_hash(images_u8: torch.Tensor, masks: torch.Tensor, names: list[str]) -> str:
    """SHA-256 of a training set as the network saw it: names, images and masks (working size).

    ``images_u8 [n, 3, H, W]`` uint8, ``masks [n, H, W]`` integer ids. Two files trained on the
    same images, labels and resolution share the hash.
    """
    h = hashlib.sha256()
    h.update("\n".join(names).encode())
    for x, dtype in ((images_u8, torch.uint8), (masks, torch.int64)):  # in chunks: same digest
        h.update(f"{tuple(x.shape)}".encode())
        for _, t in iter_chunks(x):
            t = t.detach().cpu().to(dtype).contiguous()
            if t.numel():
                h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def data_record(cfg: Any, proto: Any, images: Any) -> dict[str, Any]:
    """The training-data part of a model or policy record: dataset, classes, regions, hash.

    ``images``: the :class:`ralis.data.protocol.ImageSet` the file was trained on.
    """
    return {
        "preset": cfg.preset,
        "dataset": cfg.data.dataset,
        "dataset_name": getattr(proto, "name", None) or cfg.data.dataset,
        "classes": list(proto.classes.names),
        "num_classes": proto.num_classes,
        "ignore_index": proto.ignore_index,
        "region": proto.regions.describe(),
        "resolution": list(proto.grid.image_size),
        "training_images": len(images),
        "data_hash": data_hash(images.images_u8, images.masks, list(images.names)),
    }
