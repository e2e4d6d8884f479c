"""Fixed policies of the labelling game (gate 1 plays them; none learns): one pick per pool.

Each maps an :class:`~ralis.game.base.Observation` and a generator to ``[K]`` indices into the
pools' ``N`` candidates. ``oracle`` knows the ground truth of the game's pool (it picks, in each
pool, the candidate whose labelled pixels the current model gets most wrong); no real labelling
policy can, so it bounds what a policy could gain. ``lookahead`` knows it too: it picks the
candidate predicted to lower the reward split's loss most (a first-order one-step lookahead,
:mod:`ralis.game.influence`; head game only). ``lookahead-pseudo``, ``lookahead-expected`` and
``lookahead-calibrated`` are its label-free variants: they read the reward split's labels (a real
run has them) and the model's predictions for the candidates, never the candidates' labels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ralis.game.base import Observation
from ralis.game.influence import UNLABELLED
from ralis.registry import Registry

__all__ = ["FIXED_POLICIES", "best_of"]

FixedPolicy = Callable[[Observation, torch.Generator], torch.Tensor]
FIXED_POLICIES: Registry[FixedPolicy] = Registry("fixed policy")


def best_of(scores: torch.Tensor) -> torch.Tensor:
    """``[K, N]`` scores -> ``[K]`` index of each pool's highest (the first on ties)."""
    return scores.argmax(dim=1)


@FIXED_POLICIES.register("random")
def random_policy(obs: Observation, generator: torch.Generator) -> torch.Tensor:
    K, N = obs.pools.shape
    return torch.randint(N, (K,), generator=generator)


@FIXED_POLICIES.register("entropy")
def entropy_policy(obs: Observation, generator: torch.Generator) -> torch.Tensor:
    return best_of(obs.entropy)


@FIXED_POLICIES.register("oracle")
def error_oracle(obs: Observation, generator: torch.Generator) -> torch.Tensor:
    return best_of(obs.error)


@FIXED_POLICIES.register("lookahead")
def lookahead_oracle(obs: Observation, generator: torch.Generator) -> torch.Tensor:
    return best_of(obs.lookahead)


def _label_free(kind: str) -> FixedPolicy:
    def policy(obs: Observation, generator: torch.Generator) -> torch.Tensor:
        return best_of(obs.lookahead_of(kind))

    return policy


for _kind in UNLABELLED:  # lookahead-pseudo, lookahead-expected, lookahead-calibrated
    FIXED_POLICIES.register(f"lookahead-{_kind}")(_label_free(_kind))
