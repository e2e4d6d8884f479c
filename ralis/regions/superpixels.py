"""Superpixel regions: the SLIC segments of every image (scikit-image), one integer id each.

SLIC (Achanta et al. 2012) cuts an image into about ``n_segments`` compact segments that follow
colour edges, so a region rarely straddles two objects (Cai et al. 2021 label such regions with
one click, their dominant class). Segments are computed once per image at the working resolution
and cached (``superpixel_labels``).

Images hold different numbers of segments; ids are padded to the largest count ``R`` so that
``id = image * R + local`` as for rectangles. Padding ids have no pixels, are never candidates
(:meth:`SuperpixelRegions.valid`) and give constant (zero) features.

A :class:`SuperpixelRegions` belongs to one image set (its ``index`` into the label maps of the
split it was computed on); subsets share the label maps and the per-region statistics.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence

import numpy as np
import torch

from ralis.errors import ConfigError, DataError
from ralis.files.arrays import default_cache_root, iter_chunks
from ralis.progress import progress_bar

PIXEL_CHUNK = 1 << 23  # pixels per chunk of the scatter reductions
SLIC_VERSION = 1  # bump when the way segments are computed changes (invalidates caches)


def _slic():
    try:
        from skimage.segmentation import slic
    except ImportError:  # pragma: no cover - the dev extra installs it
        raise ConfigError("superpixel regions (data.regions=slic) need scikit-image: "
                          "pip install 'ralis[superpixels]'") from None
    return slic


def slic_image(image_u8: np.ndarray, n_segments: int, compactness: float) -> np.ndarray:
    """SLIC segments of one ``[3, H, W]`` uint8 image: ``[H, W]`` int16 ids ``0..k-1``."""
    slic = _slic()
    seg = slic(np.ascontiguousarray(image_u8.transpose(1, 2, 0)), n_segments=n_segments,
               compactness=compactness, start_label=0, channel_axis=-1)
    _, dense = np.unique(seg, return_inverse=True)  # contiguous ids
    return dense.reshape(seg.shape).astype(np.int16)


def _cache_key(images_u8, n_segments: int, compactness: float) -> str:
    import skimage

    h = hashlib.sha256()
    h.update(f"slic-v{SLIC_VERSION}|{skimage.__version__}|{n_segments}|{compactness!r}|"
             f"{tuple(images_u8.shape)}".encode())
    for _, chunk in iter_chunks(images_u8):
        h.update(np.ascontiguousarray(chunk.numpy()).tobytes())
    return h.hexdigest()[:24]


def superpixel_labels(images_u8, n_segments: int, compactness: float = 10.0,
                      cache_dir: str | None = None, progress: bool = True) -> np.ndarray:
    """SLIC segment ids of every image, ``[n, H, W]`` int16, from the cache when there.

    The cache file is keyed by the images' bytes, the SLIC settings and scikit-image's version,
    written atomically, and opened memory-mapped (only the images asked for are read).
    """
    if n_segments < 1:
        raise ConfigError(f"data.superpixels must be at least 1, got {n_segments}")
    if compactness <= 0:
        raise ConfigError(f"data.slic_compactness must be positive, got {compactness}")
    _slic()
    root = default_cache_root(cache_dir) / "superpixels"
    path = root / f"slic-{_cache_key(images_u8, n_segments, compactness)}.npy"
    if path.exists():
        try:
            labels = np.load(path, mmap_mode="r")
            if labels.shape == (images_u8.shape[0], *images_u8.shape[-2:]):
                return labels
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed
    n = images_u8.shape[0]
    out = np.empty((n, *images_u8.shape[-2:]), dtype=np.int16)
    for i in progress_bar(range(n), desc="superpixels", unit="img", disable=not progress,
                          leave=False):
        out[i] = slic_image(np.asarray(images_u8[i]), n_segments, compactness)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, out)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the recomputation next time
    return out


class _Stats:
    """Per-region pixel counts, boxes and anchors of every image of a label-map array."""

    def __init__(self, labels: np.ndarray, per_image: int) -> None:
        n, H, W = labels.shape
        total = n * per_image
        self.pixels = torch.zeros(total, dtype=torch.long)
        big = torch.iinfo(torch.long).max
        y0 = torch.full((total,), big, dtype=torch.long)
        x0 = torch.full((total,), big, dtype=torch.long)
        y1 = torch.full((total,), -1, dtype=torch.long)
        x1 = torch.full((total,), -1, dtype=torch.long)
        sy = torch.zeros(total, dtype=torch.float64)
        sx = torch.zeros(total, dtype=torch.float64)
        best = torch.full((total,), float("inf"), dtype=torch.float64)
        first = torch.full((total,), big, dtype=torch.long)
        ys = torch.arange(H).view(H, 1).expand(H, W).reshape(-1)
        xs = torch.arange(W).view(1, W).expand(H, W).reshape(-1)
        step = max(1, PIXEL_CHUNK // (H * W))
        # one read of the label maps, in chunks of whole images: a region lies in one image, so
        # its statistics are final once its chunk is done (no loop over regions or pixels)
        for start in range(0, n, step):
            gid, c = self._gid(labels, start, step, per_image)
            yy, xx = ys.repeat(c), xs.repeat(c)
            self.pixels += torch.bincount(gid, minlength=total)
            y0.scatter_reduce_(0, gid, yy, "amin")
            x0.scatter_reduce_(0, gid, xx, "amin")
            y1.scatter_reduce_(0, gid, yy, "amax")
            x1.scatter_reduce_(0, gid, xx, "amax")
            sy.index_add_(0, gid, yy.double())
            sx.index_add_(0, gid, xx.double())
            # anchor: the region's pixel nearest its centroid (ties: the first in raster order)
            count = self.pixels[gid].double()
            d = (yy - sy[gid] / count) ** 2 + (xx - sx[gid] / count) ** 2
            best.scatter_reduce_(0, gid, d, "amin")
            hit = d == best[gid]
            flat = torch.arange(start * H * W, (start + c) * H * W)
            first.scatter_reduce_(0, gid[hit], flat[hit], "amin")
        live = self.pixels > 0
        self.boxes = torch.where(live.unsqueeze(1), torch.stack([y0, x0, y1 + 1, x1 + 1], 1), 0)
        pix = torch.where(live, first, 0) % (H * W)
        self.anchors = torch.where(live.unsqueeze(1), torch.stack([pix // W, pix % W], 1), 0)

    @staticmethod
    def _gid(labels: np.ndarray, start: int, step: int, per_image: int
             ) -> tuple[torch.Tensor, int]:
        lab = torch.from_numpy(np.asarray(labels[start:start + step]).astype(np.int64))
        c = lab.shape[0]
        offsets = (torch.arange(start, start + c) * per_image).view(c, 1, 1)
        return (lab + offsets).reshape(-1), c


class SuperpixelRegions:
    """The superpixel regions of one image set.

    Args:
        labels: ``[n0, H, W]`` segment ids of the split the set was drawn from (int16, may be
            memory-mapped).
        superpixels: SLIC's ``n_segments``.
        unit_pixels: pixels of one budget unit (a rectangle of the grid, so that both kinds
            spend the same pixels per budget); default ``H * W / superpixels``.
        index: the set's images as indices into ``labels`` (default: all of them).
    """

    kind = "slic"

    def __init__(self, labels: np.ndarray, superpixels: int, unit_pixels: float | None = None,
                 index: Sequence[int] | None = None, per_image: int | None = None,
                 _stats: _Stats | None = None) -> None:
        if labels.ndim != 3:
            raise DataError(f"superpixel label maps must be [n, H, W], got {labels.shape}")
        self._labels = labels
        self.superpixels = int(superpixels)
        self.image_size = (int(labels.shape[1]), int(labels.shape[2]))
        self.unit_pixels = float(unit_pixels if unit_pixels is not None else
                                 self.image_size[0] * self.image_size[1] / self.superpixels)
        if per_image is None:
            per_image = int(labels.max()) + 1 if labels.size else 1
        self.per_image = int(per_image)
        self.index = torch.arange(labels.shape[0]) if index is None else torch.as_tensor(
            list(index), dtype=torch.long)
        self._stats = _stats if _stats is not None else _Stats(labels, self.per_image)

    # --- identity -------------------------------------------------------------------------
    @property
    def num_images(self) -> int:
        return self.index.numel()

    @property
    def nominal_pixels(self) -> float:
        """Pixels of a budget unit (``unit_pixels``)."""
        return self.unit_pixels

    def describe(self) -> dict:
        return {"kind": "slic", "superpixels": self.superpixels, "per_image": self.per_image,
                "unit_pixels": self.unit_pixels, "image_size": list(self.image_size)}

    def subset(self, indices: Sequence[int]) -> SuperpixelRegions:
        idx = self.index[torch.as_tensor(list(indices), dtype=torch.long)]
        return SuperpixelRegions(self._labels, self.superpixels, self.unit_pixels, idx.tolist(),
                                 self.per_image, self._stats)

    def concat(self, other: SuperpixelRegions) -> SuperpixelRegions:
        if other._labels is not self._labels:
            raise ValueError("cannot join image sets whose superpixels were computed apart")
        return SuperpixelRegions(self._labels, self.superpixels, self.unit_pixels,
                                 torch.cat([self.index, other.index]).tolist(), self.per_image,
                                 self._stats)

    # --- per-region lookups -------------------------------------------------------------------
    def _base_ids(self, region_ids: torch.Tensor) -> torch.Tensor:
        ids = region_ids.long()
        return self.index[ids // self.per_image] * self.per_image + ids % self.per_image

    def split(self, region_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[M]`` -> ``(image [M], local segment id [M])``."""
        return region_ids // self.per_image, region_ids % self.per_image

    def valid(self, num_images: int) -> torch.Tensor:
        """Which ids are regions (padding ids are not): ``[num_images * R]`` bool."""
        if num_images != self.num_images:
            raise ValueError(f"these superpixels cover {self.num_images} images, not {num_images}")
        base = (self.index.view(-1, 1) * self.per_image + torch.arange(self.per_image)).reshape(-1)
        return self._stats.pixels[base] > 0

    def pixels(self, region_ids: torch.Tensor) -> torch.Tensor:
        return self._stats.pixels[self._base_ids(region_ids)]

    def boxes(self, region_ids: torch.Tensor) -> torch.Tensor:
        """``[M]`` -> ``[M, 4]`` bounding boxes ``(y0, x0, y1, x1)`` (end exclusive)."""
        return self._stats.boxes[self._base_ids(region_ids)]

    def anchors(self, region_ids: torch.Tensor) -> torch.Tensor:
        """``[M]`` -> ``[M, 2]`` ``(y, x)``: the region's pixel nearest its centroid."""
        return self._stats.anchors[self._base_ids(region_ids)]

    def labels(self, images: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Segment ids of some images of the set: ``[n] -> [n, H, W]`` long."""
        idx = self.index[torch.as_tensor(images, dtype=torch.long).reshape(-1)].numpy()
        if idx.size == 0:
            return torch.zeros(0, *self.image_size, dtype=torch.long)
        return torch.from_numpy(np.asarray(self._labels[idx]).astype(np.int64))

    def crop_masks(self, region_ids: torch.Tensor) -> list[torch.Tensor]:
        """Which pixels of each region's box belong to it: ``[M] -> M x [h_i, w_i]`` bool."""
        boxes = self.boxes(region_ids).tolist()
        image, local = self.split(region_ids)
        out: list[torch.Tensor] = [None] * len(boxes)  # type: ignore[list-item]
        for k in torch.unique(image).tolist():  # one label map read per image
            lab = self.labels([k])[0]
            for j in (image == k).nonzero().squeeze(1).tolist():
                y0, x0, y1, x1 = boxes[j]
                out[j] = lab[y0:y1, x0:x1] == local[j]
        return out

    def mask(self, region_ids: torch.Tensor, num_images: int) -> torch.Tensor:
        """Boolean pixel mask ``[num_images, H, W]``, True inside the given regions."""
        flags = torch.zeros(num_images * self.per_image, dtype=torch.bool)
        flags[region_ids.long()] = True
        flags = flags.view(num_images, self.per_image)
        out = torch.zeros(num_images, *self.image_size, dtype=torch.bool)
        images = torch.unique(region_ids.long() // self.per_image)
        if images.numel():
            lab = self.labels(images)
            out[images] = flags[images].gather(1, lab.reshape(images.numel(), -1)).view_as(lab)
        return out

    # --- per-region reductions of per-pixel maps (scatter; no loop over regions) -------------
    def _gid(self, images: torch.Tensor | None, n: int) -> torch.Tensor:
        images = torch.arange(n) if images is None else torch.as_tensor(images).reshape(-1)
        if images.numel() != n:
            raise ValueError(f"{n} maps but {images.numel()} image indices")
        lab = self.labels(images)
        return (lab + (torch.arange(n) * self.per_image).view(n, 1, 1)).reshape(-1)

    def region_mean(self, maps: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of a per-pixel map over every region of ``images``: ``[n, H, W]`` -> ``[n, R]``
        (0 for padding ids). ``images``: the maps' images in the set (default ``0..n-1``)."""
        return self._means(self._gid(images, maps.shape[0]), maps, maps.shape[0])

    def _means(self, gid: torch.Tensor, maps: torch.Tensor, n: int) -> torch.Tensor:
        """Region means of ``maps [n, H, W]`` given each pixel's id ``gid``: ``[n, R]``."""
        R = self.per_image
        sums = torch.zeros(n * R, dtype=torch.float64).index_add_(
            0, gid, maps.reshape(-1).double())
        count = torch.bincount(gid, minlength=n * R)
        return (sums / count.clamp(min=1)).float().view(n, R)

    def bincount(self, ids: torch.Tensor, nbins: int, images: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """Per-region counts of integer ids in ``[0, nbins)``: ``[n, H, W] -> [n, R, nbins]``."""
        n, R = ids.shape[0], self.per_image
        gid = self._gid(images, n)
        flat = gid * nbins + ids.reshape(-1).long()
        return torch.bincount(flat, minlength=n * R * nbins).view(n, R, nbins)

    def cell_pool(self, values: torch.Tensor, out: int, poolings: Sequence[str],
                  images: torch.Tensor | None = None) -> torch.Tensor:
        """Min / mean / max of a per-pixel map over an ``out x out`` grid of cells laid on each
        region's bounding box, counting only the region's own pixels. A cell with none of them
        takes the region's mean (0 for padding ids).

        ``[n, H, W]`` -> ``[n, R, len(poolings) * out * out]``, ``[min | mean | max]`` order.
        """
        n, R = values.shape[0], self.per_image
        H, W = self.image_size
        images_t = torch.arange(n) if images is None else torch.as_tensor(images).reshape(-1)
        gid = self._gid(images_t, n)
        base = (self.index[images_t].view(n, 1) * R + torch.arange(R)).reshape(-1)
        box = self._stats.boxes[base]  # [n*R, 4]
        ys = torch.arange(H).view(H, 1).expand(H, W).reshape(-1).repeat(n)
        xs = torch.arange(W).view(1, W).expand(H, W).reshape(-1).repeat(n)
        b = box[gid]
        hh, ww = (b[:, 2] - b[:, 0]).clamp(min=1), (b[:, 3] - b[:, 1]).clamp(min=1)
        cy = ((ys - b[:, 0]) * out) // hh
        cx = ((xs - b[:, 1]) * out) // ww
        cell = gid * (out * out) + cy * out + cx
        v = values.reshape(-1).float()
        size = n * R * out * out
        fill = self._means(gid, values, n).reshape(-1).repeat_interleave(out * out)
        per_cell = torch.bincount(cell, minlength=size)
        hit = per_cell > 0
        pooled = []
        for p in poolings:
            if p == "mean":
                r = torch.zeros(size).index_add_(0, cell, v) / per_cell.clamp(min=1)
            else:
                r = torch.zeros(size).scatter_reduce_(0, cell, v, "amin" if p == "min" else "amax",
                                                      include_self=False)
            pooled.append(torch.where(hit, r, fill).view(n, R, out * out))
        return torch.cat(pooled, dim=-1)
