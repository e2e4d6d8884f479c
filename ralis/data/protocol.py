"""Load everything one run needs, per the paper's protocol, as in-memory tensors.

D_S, D_T and D_V come from the training split (see :mod:`ralis.data.splits`); D_R is the
reward split (CamVid val) and the test split gives the reported numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ralis.config import DataConfig
from ralis.data import create_dataset
from ralis.data.base import ClassInfo, SegmentationDataset
from ralis.data.regions import RegionGrid
from ralis.data.splits import Splits, make_splits
from ralis.errors import DataError


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

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    @property
    def ignore_index(self) -> int:
        return self.classes.ignore_index


def _dataset(cfg: DataConfig, split: str) -> SegmentationDataset:
    options: dict = {}
    if cfg.dataset == "synthetic":
        sizes = dict(zip(("train", "val", "test"), cfg.synthetic_images, strict=True))
        options = {"num_images": sizes.get(split), "seed": cfg.split_seed}
    return create_dataset(cfg.dataset, split, root=cfg.root, resolution=cfg.resolution, **options)


def load_images(ds: SegmentationDataset, desc: str, progress: bool = True) -> ImageSet:
    pairs = [ds.load_u8(i) for i in tqdm(range(len(ds)), desc=desc, leave=False,
                                         disable=not progress)]
    sizes = {tuple(p[0].shape[-2:]) for p in pairs}
    if len(sizes) > 1:
        raise DataError(
            f"{desc.split(' ', 1)[-1]}: images have different sizes {sorted(sizes)[:3]}; set a "
            "working resolution (--resolution HxW)"
        )
    return ImageSet(
        torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]), list(ds.names)
    )


def load_protocol(cfg: DataConfig, progress: bool = True) -> Protocol:
    """Read the three splits, check sizes, cut the region grid and draw D_S / D_T / D_V."""
    train_ds = _dataset(cfg, cfg.train_split)
    reward_ds = _dataset(cfg, cfg.reward_split)
    test_ds = _dataset(cfg, cfg.test_split)
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
    grid = RegionGrid(tuple(train.images_u8.shape[-2:]), tuple(cfg.region_size))
    classes = train_ds.classes
    splits = make_splits(
        train.masks, classes.num_classes, classes.ignore_index, cfg.state_images,
        cfg.dqn_train_images, cfg.pool_images, cfg.split_seed,
    )
    return Protocol(
        classes=classes, grid=grid, splits=splits,
        state=train.subset(splits.state), dqn_train=train.subset(splits.dqn_train),
        pool=train.subset(splits.pool), reward=reward, test=test,
    )
