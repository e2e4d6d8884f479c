"""Load everything one run needs, per the paper's protocol, as in-memory tensors.

D_S, D_T and D_V come from the training split (see :mod:`ralis.data.splits`); D_R is the
reward split (CamVid val) and the test split gives the reported numbers.

Before anything trains, the labels are checked (see :mod:`ralis.data.sanity`): no split may be
mostly void (``data.max_void_fraction``), every class must occur in D_R and the test split
(``data.allow_missing_classes``), D_R and the test split must not share images
(``data.allow_same_reward_test``), and the train split must share none with D_R or the test split
(``data.allow_train_overlap``; a ``test_split`` equal to the ``train_split`` needs it). Images are
compared by their readers' sample keys (the image file).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch

from ralis.config import DataConfig
from ralis.data import create_dataset
from ralis.data.base import ClassInfo, SegmentationDataset
from ralis.data.cache import build_split, cache_key, check_storage, mask_dtype
from ralis.data.orphans import orphan_warning
from ralis.data.palettes import PaletteColors
from ralis.data.sanity import label_stats, missing_problem, overlap_problems, void_problem
from ralis.data.splits import Splits, make_splits, per_image_counts
from ralis.errors import DataError
from ralis.files.arrays import default_cache_root, is_lazy, iter_chunks, take_rows
from ralis.progress import progress_bar
from ralis.provenance import __version__
from ralis.regions import RegionGrid, Regions, SuperpixelRegions, superpixel_labels


@dataclass
class ImageSet:
    """Images and full ground-truth masks of one set: tensors in memory, or lazy views on the
    disk cache (:mod:`ralis.data.cache`) that index the same way."""

    images_u8: torch.Tensor  # [n, 3, H, W] uint8 (or a LazyTensor)
    masks: torch.Tensor  # [n, H, W] long (or a LazyTensor read as long)
    names: list[str]
    regions: Regions | None = None  # the images' regions (sets drawn from the train split)

    def __len__(self) -> int:
        return self.images_u8.shape[0]

    def subset(self, indices: tuple[int, ...] | list[int]) -> ImageSet:
        idx = [int(i) for i in indices]
        return ImageSet(take_rows(self.images_u8, idx), take_rows(self.masks, idx),
                        [self.names[i] for i in idx],
                        None if self.regions is None else self.regions.subset(idx))

    @property
    def lazy(self) -> bool:
        return is_lazy(self.images_u8)


@dataclass
class Protocol:
    classes: ClassInfo
    grid: RegionGrid  # the rectangle grid: pretraining crops, and the regions of kind rect
    splits: Splits
    state: ImageSet  # D_S
    dqn_train: ImageSet  # D_T
    pool: ImageSet  # D_V
    reward: ImageSet  # D_R
    test: ImageSet
    name: str = ""  # display name of the dataset (a description's `name`, or camvid, ...)
    selection: ImageSet | None = None  # chooses agent designs and policies (None: use D_R)

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    @property
    def regions(self) -> Regions:
        """The pool's regions (rectangles or superpixels)."""
        return self.regions_of(self.pool)

    def regions_of(self, images: ImageSet) -> Regions:
        """The regions of one of the train split's sets (D_S, D_T, the pool)."""
        return images.regions if images.regions is not None else self.grid

    @property
    def ignore_index(self) -> int:
        return self.classes.ignore_index


def dataset_for(cfg: DataConfig, split: str, **extra: object) -> SegmentationDataset:
    """The reader of one split as the config describes it (``extra``: reader options)."""
    options: dict = dict(extra)
    if cfg.dataset == "synthetic":
        sizes = dict(zip(("train", "val", "test"), cfg.synthetic_images, strict=True))
        options.update(num_images=sizes.get(split), seed=cfg.split_seed)
    return create_dataset(cfg.dataset, split, root=cfg.root, resolution=cfg.resolution, **options)



MEMORY_LIMIT = 1 << 30  # data.storage=auto keeps a split in memory up to this many bytes


def _source_stats(ds: SegmentationDataset, index: int) -> list:
    out = []
    for path in ds.source_files(index):
        try:
            st = os.stat(path)
            out.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([str(path), None, None])
    return out


def load_images(ds: SegmentationDataset, desc: str, progress: bool = True,
                storage: str = "memory", cache_dir: str | None = None) -> ImageSet:
    """All samples of a reader at the working resolution: in memory, or (``storage`` disk, or
    auto above :data:`MEMORY_LIMIT`) decoded once into the disk cache and read lazily."""
    if storage != "memory" and len(ds):
        H, W = ds.image_size
        wide = mask_dtype(ds.classes.num_classes, ds.classes.ignore_index)
        if storage == "disk" or len(ds) * H * W * (3 + 8) > MEMORY_LIMIT:
            ds.cache = False  # the reader must not keep decoded copies
            key = {"reader": type(ds).__name__, "dataset": ds.dataset_name,
                   "split": getattr(ds, "split", None), "resolution": [H, W],
                   "resize": ds.resize, "classes": list(ds.classes.names),
                   "ignore": ds.classes.ignore_index, "ralis": __version__,
                   "samples": [[ds.describe(i), _source_stats(ds, i)] for i in range(len(ds))]}
            split = str(getattr(ds, "split", "split")).replace("/", "_")
            folder = (default_cache_root(cache_dir)
                      / f"{ds.dataset_name}-{split}-{H}x{W}-{cache_key(key)}")
            images, masks = build_split(
                folder, len(ds), (H, W), wide, ds.load_u8, list(ds.names), key,
                lambda it: progress_bar(it, total=len(ds), desc=f"{desc} (caching)",
                                        leave=False, disable=not progress))
            return ImageSet(images, masks, list(ds.names))
    pairs = [ds.load_u8(i) for i in progress_bar(range(len(ds)), desc=desc, leave=False,
                                                 disable=not progress)]
    sizes = {tuple(p[0].shape[-2:]) for p in pairs}
    if len(sizes) > 1:
        raise DataError(
            f"{desc.split(' ', 1)[-1]}: images have different sizes {sorted(sizes)[:3]}; set a "
            "working resolution (--resolution HxW; for your own data also resize: crop or tile)"
        )
    return ImageSet(
        torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]), list(ds.names)
    )


def report_orphans(readers: tuple[SegmentationDataset, ...]) -> None:
    """A warning line on stderr for the masks without an image of the splits a run reads (a
    folder dataset's; :mod:`ralis.data.orphans`), once per split with its own files."""
    done: set[str] = set()
    for ds in readers:
        spec = getattr(ds, "spec", None)
        if spec is None:
            continue
        split = spec.splits[ds.split].source or ds.split
        if split not in done:
            done.add(split)
            line = orphan_warning(spec, split, f"folder/{split}")
            if line:
                print(f"warning: {line}", file=sys.stderr, flush=True)


def load_protocol(cfg: DataConfig, progress: bool = True) -> Protocol:
    """Read the three splits, check sizes and labels, cut the region grid, draw D_S / D_T / D_V."""
    shared = {"palettes": PaletteColors()} if cfg.dataset == "folder" else {}  # across splits
    train_ds = dataset_for(cfg, cfg.train_split, **shared)
    reward_ds = dataset_for(cfg, cfg.reward_split, **shared)
    test_ds = dataset_for(cfg, cfg.test_split, **shared)
    report_orphans((train_ds, reward_ds, test_ds))
    keys = {role: [ds.sample_key(i) for i in range(len(ds))]
            for role, ds in (("train", train_ds), ("reward", reward_ds), ("test", test_ds))}
    for problem, accepted in overlap_problems(cfg, keys):
        if not accepted:
            raise DataError(problem)
    selection_ds = None
    if cfg.selection_split is not None:
        selection_ds = dataset_for(cfg, cfg.selection_split)
        check_selection(cfg, [selection_ds.sample_key(i) for i in range(len(selection_ds))],
                        keys)
    check_storage(cfg.storage)
    train, reward, test = (
        load_images(ds, f"loading {cfg.dataset}/{split}", progress, cfg.storage, cfg.cache_dir)
        for ds, split in ((train_ds, cfg.train_split), (reward_ds, cfg.reward_split),
                          (test_ds, cfg.test_split)))
    for name, other in ((cfg.reward_split, reward), (cfg.test_split, test)):
        if other.images_u8.shape[-2:] != train.images_u8.shape[-2:]:
            raise DataError(
                f"{cfg.dataset}/{name} images are {tuple(other.images_u8.shape[-2:])} but "
                f"{cfg.train_split} images are {tuple(train.images_u8.shape[-2:])}; set a working "
                "resolution (--resolution HxW)"
            )
    classes = train_ds.classes
    check_labels(cfg, classes, [(cfg.train_split, train, False), (cfg.reward_split, reward, True),
                                (cfg.test_split, test, True)])
    selection = None
    if selection_ds is not None:
        selection = load_images(selection_ds, f"loading {cfg.dataset}/{cfg.selection_split}",
                                progress, cfg.storage, cfg.cache_dir)
        if selection.images_u8.shape[-2:] != train.images_u8.shape[-2:]:
            raise DataError(f"{cfg.dataset}/{cfg.selection_split} images are not the train "
                            "split's size; set a working resolution (--resolution HxW)")
        check_labels(cfg, classes, [(cfg.selection_split, selection, True)])
    grid = RegionGrid(tuple(train.images_u8.shape[-2:]), tuple(cfg.region_size))
    train.regions = train_regions(cfg, train, grid, progress)
    splits = make_splits(
        per_image_counts(train.masks, classes.num_classes, classes.ignore_index),
        cfg.state_images, cfg.dqn_train_images, cfg.pool_images, cfg.split_seed,
    )
    return Protocol(
        classes=classes, grid=grid, splits=splits,
        state=train.subset(splits.state), dqn_train=train.subset(splits.dqn_train),
        pool=train.subset(splits.pool), reward=reward, test=test, name=train_ds.dataset_name,
        selection=selection,
    )


def check_selection(cfg: DataConfig, selection: list[str], keys: dict[str, list[str]]) -> None:
    """The selection split (agent designs and policies are chosen on it) shares no image with
    the train split, D_R (it must judge what the reward did not see) or the test split (nothing
    is chosen by test)."""
    for role, split in (("train", cfg.train_split), ("reward", cfg.reward_split),
                        ("test", cfg.test_split)):
        shared = sorted(set(selection) & set(keys.get(role) or ()))
        if shared:
            raise DataError(
                f"the selection split ({cfg.dataset}/{cfg.selection_split}) and the {role} split "
                f"({cfg.dataset}/{split}) share {len(shared)} images (e.g. {shared[0]}); choose "
                "a selection split of its own with --set data.selection_split=SPLIT")


def train_regions(cfg: DataConfig, train: ImageSet, grid: RegionGrid, progress: bool = True
                  ) -> Regions:
    """The regions of the train split's images (D_S, D_T and the pool inherit them)."""
    if cfg.regions == "rect":
        return grid
    n = cfg.superpixels or grid.per_image  # default: as many as rectangles, of their size
    labels = superpixel_labels(train.images_u8, n, cfg.slic_compactness, cfg.cache_dir, progress)
    return SuperpixelRegions(labels, n, unit_pixels=grid.region_pixels)


def check_labels(
    cfg: DataConfig, classes: ClassInfo, sets: list[tuple[str, ImageSet, bool]]
) -> None:
    """Raise a DataError for a mostly-void split or a class missing from an evaluation split.

    ``sets``: ``(split name, images, used for evaluation)``.
    """
    for split, images, evaluated in sets:
        stats = None
        for _, chunk in iter_chunks(images.masks):
            part = label_stats(chunk, classes.num_classes)
            stats = part if stats is None else stats + part
        if stats is None:
            stats = label_stats(torch.zeros(0, dtype=torch.long), classes.num_classes)
        where = f"{cfg.dataset}/{split}"
        problem = void_problem(where, stats, classes, cfg.max_void_fraction)
        if problem is None and evaluated and not cfg.allow_missing_classes:
            problem = missing_problem(where, stats, classes)
        if problem:
            raise DataError(problem)
