"""The paper's data protocol: state set D_S, DQN-training set D_T and unlabelled pool D_V.

All three come from the training split, reproducibly from a seed. D_S is chosen, among a few
random draws, as the one whose class distribution is closest (KL) to the whole training split's,
as the paper asks ("the state set needs a similar class distribution to the train set").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ralis.errors import ConfigError
from ralis.metrics import class_distribution


@dataclass(frozen=True)
class Splits:
    """Image indices into the training split."""

    state: tuple[int, ...]  # D_S
    dqn_train: tuple[int, ...]  # D_T (also θ0's labelled start set)
    pool: tuple[int, ...]  # D_V


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-7) -> float:
    """KL(p || q) of two distributions ``[C]`` (natural log)."""
    p, q = p.double() + eps, q.double() + eps
    p, q = p / p.sum(), q / q.sum()
    return float((p * (p / q).log()).sum())


def make_splits(
    masks: torch.Tensor,
    num_classes: int,
    ignore_index: int,
    state_images: int,
    dqn_train_images: int,
    pool_images: int | None,
    seed: int,
    draws: int = 200,
) -> Splits:
    """Split ``masks [N, H, W]`` (the training split's ground truth) into D_S, D_T, D_V."""
    n = masks.shape[0]
    need = state_images + dqn_train_images + (pool_images or 1)
    if need > n:
        raise ConfigError(
            f"the training split has {n} images but D_S + D_T + D_V need {need}; lower "
            "data.state_images / data.dqn_train_images / data.pool_images"
        )
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    flat = masks.view(n, -1)
    keep = (flat != ignore_index) & (flat < num_classes) & (flat >= 0)
    offsets = torch.arange(n).unsqueeze(1) * num_classes
    counts = torch.bincount((flat + offsets)[keep], minlength=n * num_classes).view(n, num_classes)
    target = class_distribution(masks, num_classes, ignore_index)
    best, best_kl = None, float("inf")
    for _ in range(draws):
        cand = torch.randperm(n, generator=g)[:state_images]
        kl = kl_divergence(target, counts[cand].sum(0).double())
        if kl < best_kl:
            best, best_kl = cand, kl
    assert best is not None
    state = set(best.tolist())
    rest = [int(i) for i in order.tolist() if int(i) not in state]
    dqn_train = rest[:dqn_train_images]
    pool = rest[dqn_train_images:]
    if pool_images is not None:
        pool = pool[:pool_images]
    return Splits(tuple(sorted(state)), tuple(sorted(dqn_train)), tuple(sorted(pool)))
