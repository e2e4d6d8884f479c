"""Checks that keep wrong numbers from being reported: too much void, classes missing from an
evaluation split, the reward and test sets sharing images, the train split sharing images with
the reward or the test set.

Each check returns None when all is well, else a one-line message that says what is wrong and
how to accept it. :func:`ralis.data.protocol.load_protocol` raises them as DataErrors and
``ralis data check`` lists them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ralis.config import DataConfig
from ralis.data.base import ClassInfo


@dataclass(frozen=True)
class LabelStats:
    """Pixel counts of one split: per class ``counts`` (``[C]``) and ``void`` (ignore index or
    any value outside the classes)."""

    counts: tuple[int, ...]
    void: int

    @property
    def labelled(self) -> int:
        return sum(self.counts)

    @property
    def total(self) -> int:
        return self.labelled + self.void

    @property
    def void_fraction(self) -> float:
        return self.void / self.total if self.total else 1.0

    def shares(self) -> list[float]:
        """Fraction of labelled pixels per class (all 0 when nothing is labelled)."""
        n = self.labelled
        return [c / n if n else 0.0 for c in self.counts]

    def missing(self) -> list[int]:
        return [i for i, c in enumerate(self.counts) if c == 0]

    def __add__(self, other: LabelStats) -> LabelStats:
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return LabelStats(counts, self.void + other.void)


def label_stats(masks: torch.Tensor, num_classes: int) -> LabelStats:
    """Count class and void pixels of masks ``[...]`` (long) in one bincount."""
    flat = masks.reshape(-1)
    valid = (flat >= 0) & (flat < num_classes)
    counts = torch.bincount(torch.where(valid, flat, num_classes), minlength=num_classes + 1)
    return LabelStats(tuple(int(c) for c in counts[:num_classes]), int(counts[num_classes]))


def void_problem(where: str, stats: LabelStats, classes: ClassInfo, limit: float) -> str | None:
    """Too much void: usually a wrong colour table, mask format or ignore index."""
    fraction = stats.void_fraction
    if fraction <= limit:
        return None
    accept = min(1.0, math.ceil(fraction * 100) / 100)
    return (
        f"{where}: {100 * fraction:.1f}% of mask pixels are void (ignore index "
        f"{classes.ignore_index}), above data.max_void_fraction={limit:g}; a wrong class table, "
        "mask_format or ignore_index makes labels void, so check with `ralis data check`, or "
        f"accept it with --set data.max_void_fraction={accept:g}"
    )


def missing_problem(where: str, stats: LabelStats, classes: ClassInfo) -> str | None:
    """Classes that never occur in a split used for evaluation."""
    missing = stats.missing()
    if not missing:
        return None
    names = ", ".join(classes.names[i] for i in missing)
    return (
        f"{where}: class(es) {names} never occur in this evaluation split, so its mIoU cannot "
        "measure them; use a split that has them (or carve one, e.g. test: {from: train, "
        "fraction: 0.2}), or accept it with --set data.allow_missing_classes=true"
    )


def overlap_problem(
    reward_where: str, reward_keys: Sequence[str], test_where: str, test_keys: Sequence[str]
) -> str | None:
    """D_R (early stopping, reward) and the test set must not share images."""
    shared = sorted(set(reward_keys) & set(test_keys))
    if not shared:
        return None
    return (
        f"D_R ({reward_where}) and the test set ({test_where}) share {len(shared)} of "
        f"{len(set(test_keys))} test images (e.g. {shared[0]}), so the test numbers would be "
        "tuned on the test set; use different splits (or carve one, e.g. test: {from: train, "
        "fraction: 0.2}), or accept it with --set data.allow_same_reward_test=true"
    )


def train_overlap_problem(
    train_where: str, train_keys: Sequence[str], role: str, where: str, keys: Sequence[str]
) -> str | None:
    """The train split (D_S, D_T and the pool D_V are drawn from it) must not share images with
    ``role`` (``D_R`` or ``test``), whose numbers would otherwise be measured on training images."""
    shared = sorted(set(train_keys) & set(keys))
    if not shared:
        return None
    what = "test" if role == "test" else "D_R"
    effect = ("the test numbers would be measured on images the model trains on" if role == "test"
              else "the reward and early stopping would be measured on training images")
    return (
        f"the train split ({train_where}) and the {what} split ({where}) share {len(shared)} of "
        f"{len(set(keys))} {what} images (e.g. {shared[0]}), so {effect}; use splits with "
        "different images (or carve one, e.g. test: {from: train, fraction: 0.2}), or accept it "
        "with --set data.allow_train_overlap=true"
    )


def overlap_problems(
    cfg: DataConfig, keys: Mapping[str, Sequence[str]]
) -> list[tuple[str, bool]]:
    """Every shared-images problem between the run's splits, as ``(message, accepted)``;
    ``accepted`` when the config allows it. ``keys``: sample keys by role (``train``,
    ``reward``, ``test``); a missing or empty role is skipped."""
    def where(split: str) -> str:
        return f"{cfg.dataset}/{split}"

    train, reward, test = keys.get("train"), keys.get("reward"), keys.get("test")
    problems: list[tuple[str, bool]] = []
    if reward and test:
        problem = overlap_problem(where(cfg.reward_split), reward, where(cfg.test_split), test)
        if problem:
            problems.append((problem, cfg.allow_same_reward_test))
    for role, split, other in (("test", cfg.test_split, test),
                               ("reward", cfg.reward_split, reward)):
        if train and other:
            problem = train_overlap_problem(where(cfg.train_split), train, role, where(split),
                                            other)
            if problem:
                problems.append((problem, cfg.allow_train_overlap))
    return problems
