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

from dataclasses import dataclass

import torch

from ralis.config import DataConfig
from ralis.data import create_dataset
from ralis.data.base import ClassInfo, SegmentationDataset
from ralis.data.regions import RegionGrid
from ralis.data.sanity import label_stats, missing_problem, overlap_problems, void_problem
from ralis.data.splits import Splits, make_splits
from ralis.errors import DataError
from ralis.progress import progress_bar


@dataclass
class ImageSet:
    """Images and full ground-truth masks of one set."""

    images_u8: torch.Tensor  # [n, 3, H, W] uint8
    masks: torch.Tensor  # [n, H, W] long
    names: list[str]

    def __len__(self) -> int:
        return self.images_u8.shape[0]

    def subset(self, indices: tuple[int, ...] | list[int]) -> ImageSet:
        idx = torch.tensor(list(indices), dtype=torch.long)
        return ImageSet(self.images_u8[idx], self.masks[idx], [self.names[i] for i in idx.tolist()])


@dataclass
class Protocol:
    classes: ClassInfo
    grid: RegionGrid
    splits: Splits
    state: ImageSet  # D_S
    dqn_train: ImageSet  # D_T
    pool: ImageSet  # D_V
    reward: ImageSet  # D_R
    test: ImageSet
    name: str = ""  # display name of the dataset (a description's `name`, or camvid, ...)

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

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



def load_images(ds: SegmentationDataset, desc: str, progress: bool = True) -> ImageSet:
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


def load_protocol(cfg: DataConfig, progress: bool = True) -> Protocol:
    """Read the three splits, check sizes and labels, cut the region grid, draw D_S / D_T / D_V."""
    train_ds = dataset_for(cfg, cfg.train_split)
    reward_ds = dataset_for(cfg, cfg.reward_split)
    test_ds = dataset_for(cfg, cfg.test_split)
    keys = {role: [ds.sample_key(i) for i in range(len(ds))]
            for role, ds in (("train", train_ds), ("reward", reward_ds), ("test", test_ds))}
    for problem, accepted in overlap_problems(cfg, keys):
        if not accepted:
            raise DataError(problem)
    train = load_images(train_ds, f"loading {cfg.dataset}/{cfg.train_split}", progress)
    reward = load_images(reward_ds, f"loading {cfg.dataset}/{cfg.reward_split}", progress)
    test = load_images(test_ds, f"loading {cfg.dataset}/{cfg.test_split}", progress)
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
    grid = RegionGrid(tuple(train.images_u8.shape[-2:]), tuple(cfg.region_size))
    splits = make_splits(
        train.masks, classes.num_classes, classes.ignore_index, cfg.state_images,
        cfg.dqn_train_images, cfg.pool_images, cfg.split_seed,
    )
    return Protocol(
        classes=classes, grid=grid, splits=splits,
        state=train.subset(splits.state), dqn_train=train.subset(splits.dqn_train),
        pool=train.subset(splits.pool), reward=reward, test=test, name=train_ds.dataset_name,
    )


def check_labels(
    cfg: DataConfig, classes: ClassInfo, sets: list[tuple[str, ImageSet, bool]]
) -> None:
    """Raise a DataError for a mostly-void split or a class missing from an evaluation split.

    ``sets``: ``(split name, images, used for evaluation)``.
    """
    for split, images, evaluated in sets:
        stats = label_stats(images.masks, classes.num_classes)
        where = f"{cfg.dataset}/{split}"
        problem = void_problem(where, stats, classes, cfg.max_void_fraction)
        if problem is None and evaluated and not cfg.allow_missing_classes:
            problem = missing_problem(where, stats, classes)
        if problem:
            raise DataError(problem)
