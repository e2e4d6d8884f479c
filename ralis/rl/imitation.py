"""Imitation of an expert's picks, DAgger-style (Ross et al. 2011; for active learning: ALIL,
Liu et al. 2018).

An expert that knows the game's ground truth picks one candidate per pool. The learner plays a
mixture: in each pool it takes the expert's pick with probability ``beta`` (``beta`` decays over
episodes, so later episodes visit the states the learner itself leads to) and its own greedy
pick otherwise. Every visited step is kept with the expert's picks, and the scorer is trained to
put the expert's pick on top of each pool (a softmax over the pool's candidates). Pure functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dagger_beta", "mix_picks", "imitation_loss"]


def dagger_beta(episode: int, base: float) -> float:
    """The expert's share in training episode ``episode`` (1-based): ``base ** (episode - 1)``
    (1 in the first episode; ``base = 0``: the expert plays the first episode only)."""
    if episode < 1:
        raise ValueError("episodes count from 1")
    return 1.0 if episode == 1 else float(base) ** (episode - 1)


def mix_picks(learner: torch.Tensor, expert: torch.Tensor, beta: float,
              generator: torch.Generator) -> torch.Tensor:
    """``learner [K]``, ``expert [K]`` picks -> ``[K]``: the expert's in each pool with
    probability ``beta`` (one uniform draw per pool from ``generator``), the learner's
    otherwise."""
    take = torch.rand(learner.shape, generator=generator) < beta
    return torch.where(take, expert, learner)


def imitation_loss(scores: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the expert's picks under a softmax of each pool's scores.

    Args:
        scores: ``[B, K, N]`` the scorer's scores of ``B`` steps' ``K`` pools of ``N``.
        expert: ``[B, K]`` int64, the expert's pick in each pool.

    Returns:
        a scalar: the mean over the ``B x K`` pools of ``-log softmax(scores)[expert]``.
    """
    return F.cross_entropy(scores.reshape(-1, scores.shape[-1]).float(), expert.reshape(-1))
