"""The paper's data protocol: state set D_S, DQN-training set D_T and unlabelled pool D_V.

All three come from the training split, reproducibly from a seed. D_S is chosen, among a few
random draws, as the one whose class distribution is closest (KL) to the whole training split's,
as the paper asks ("the state set needs a similar class distribution to the train set").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ralis.errors import ConfigError
from ralis.files.arrays import iter_chunks


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


def per_image_counts(masks, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Labelled pixels per class of every image: ``masks [N, H, W]`` (a tensor or a lazy one,
    read in chunks) -> ``[N, C]`` long."""
    rows = []
    for _, chunk in iter_chunks(masks):
        n = chunk.shape[0]
        flat = chunk.reshape(n, -1)
        keep = (flat != ignore_index) & (flat < num_classes) & (flat >= 0)
        offsets = torch.arange(n).unsqueeze(1) * num_classes
        rows.append(torch.bincount((flat + offsets)[keep],
                                   minlength=n * num_classes).view(n, num_classes))
    return torch.cat(rows) if rows else torch.zeros(0, num_classes, dtype=torch.long)


def make_splits(
    counts: torch.Tensor,
    state_images: int,
    dqn_train_images: int,
    pool_images: int | None,
    seed: int,
    draws: int = 200,
) -> Splits:
    """Split the training split into D_S, D_T, D_V from its per-image class counts ``[N, C]``
    (:func:`per_image_counts` of its ground truth)."""
    n = counts.shape[0]
    need = state_images + dqn_train_images + (pool_images or 1)
    if need > n:
        raise ConfigError(
            f"the training split has {n} images but D_S + D_T + D_V need {need}; lower "
            "data.state_images / data.dqn_train_images / data.pool_images"
        )
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    total = counts.sum(0).double()
    target = total / total.sum() if total.sum() > 0 else total
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
