"""Frozen pixel features of an image set, computed once per game (the head game's inputs).

A :class:`PixelTable` holds, at the network's feature resolution ``(h, w)``, every pixel's
feature vector (the maps a segmentation net feeds its classifier, ``forward_features``), its
ground-truth label (the majority class of the image pixels it covers; the ignore index where
void is the majority) and the region it lies in (the region of its centre pixel; -1 outside
every region). Rows are ordered image by image, row-major inside an image: row
``k * h * w + i * w + j`` is pixel ``(i, j)`` of image ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ralis.data.base import normalize
from ralis.errors import ConfigError
from ralis.regions.base import Regions

__all__ = ["PixelTable", "extract_pixels", "block_labels", "centre_regions"]


@dataclass
class PixelTable:
    features: torch.Tensor  # [n * h * w, F] float16
    labels: torch.Tensor  # [n * h * w] long, ignore_index where void
    regions: torch.Tensor  # [n * h * w] long global region id (image * R + local), -1: none
    size: tuple[int, int]  # (h, w) feature resolution
    num_images: int

    @property
    def per_image(self) -> int:
        return self.size[0] * self.size[1]

    def image_rows(self, images: torch.Tensor) -> torch.Tensor:
        """``[n]`` image indices -> ``[n * h * w]`` row indices of their pixels, in order."""
        base = images.long().reshape(-1, 1) * self.per_image
        return (base + torch.arange(self.per_image)).reshape(-1)


def block_labels(masks: torch.Tensor, size: tuple[int, int], num_classes: int,
                 ignore_index: int) -> torch.Tensor:
    """Majority label of the image pixels under each feature pixel.

    ``masks [n, H, W]`` -> ``[n, h, w]`` long. Void (``ignore_index``) counts as a class of its
    own: a block that is mostly void is void. Blocks follow ``F.adaptive_avg_pool2d``.
    """
    ids = torch.where(masks == ignore_index, torch.full_like(masks, num_classes), masks)
    onehot = F.one_hot(ids.long().clamp(0, num_classes), num_classes + 1)
    share = F.adaptive_avg_pool2d(onehot.permute(0, 3, 1, 2).float(), size)
    out = share.max(1).indices
    return torch.where(out == num_classes, torch.full_like(out, ignore_index), out)


def centre_regions(regions: Regions, images: torch.Tensor, image_size: tuple[int, int],
                   size: tuple[int, int]) -> torch.Tensor:
    """Global region id of every feature pixel's centre image pixel: ``[n]`` image indices of the
    set -> ``[n, h, w]`` long (``image * R + local``; -1 where the centre is in no region)."""
    (H, W), (h, w) = image_size, size
    ys = ((torch.arange(h) + 0.5) * H / h).long().clamp(max=H - 1)
    xs = ((torch.arange(w) + 0.5) * W / w).long().clamp(max=W - 1)
    local = regions.labels(images)[:, ys][:, :, xs]
    base = images.long().reshape(-1, 1, 1) * regions.per_image
    return torch.where(local >= 0, base + local, torch.full_like(local, -1))


@torch.no_grad()
def extract_pixels(
    model: nn.Module,
    images_u8: torch.Tensor,
    masks: torch.Tensor,
    num_classes: int,
    ignore_index: int,
    regions: Regions | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> PixelTable:
    """Run ``model.forward_features`` once over ``images_u8 [n, 3, H, W]`` (eval mode) and
    tabulate features, block labels of ``masks [n, H, W]`` and (optionally) region ids."""
    if not hasattr(model, "forward_features"):
        raise ConfigError("the head game needs a network with forward_features (the maps fed "
                          "to its classifier), as ralis' own networks have; use agent.game=net")
    model.eval()
    feats, labels, ids = [], [], []
    n = images_u8.shape[0]
    H, W = images_u8.shape[-2:]
    size = None
    for start in range(0, n, batch_size):
        x = normalize(images_u8[start:start + batch_size]).to(device)
        f = model.forward_features(x).float().cpu()  # [b, F, h, w]
        size = tuple(f.shape[-2:])
        feats.append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).half())
        labels.append(block_labels(torch.as_tensor(masks[start:start + batch_size]).long(),
                                   size, num_classes, ignore_index).reshape(-1))
        if regions is not None:
            idx = torch.arange(start, min(n, start + batch_size))
            ids.append(centre_regions(regions, idx, (H, W), size).reshape(-1))
    if size is None:
        raise ConfigError("the head game needs at least one image in every set it plays on")
    region_ids = torch.cat(ids) if ids else torch.full((n * size[0] * size[1],), -1)
    return PixelTable(torch.cat(feats), torch.cat(labels), region_ids, size, n)
