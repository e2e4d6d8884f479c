"""The labelling game the query agent learns from: one interface, one module per game.

An episode labels regions of the game's pool step by step. At each step the game shows
``K`` pools of ``N`` candidate regions (:class:`Observation`); a policy picks one per pool;
the game labels them (a simulated annotator reveals their ground truth), updates its
segmentation model and pays a reward: 100 x the change of the model's mIoU on the reward
split D_R. Games differ in what "update the model" means:

* ``net`` (:mod:`ralis.game.net`): the paper's game. SGD passes of the whole network on the
  newest regions; the reward carries that training's noise.
* ``head`` (:mod:`ralis.game.head`): the start model's features are frozen and a linear
  classifier head is refit on *all* labels so far, deterministically; the reward is a function
  of the labelled set alone.

Typical use (gate 1's fixed policies and the agent trainer both do this)::

    game.reset(episode)
    while (obs := game.observe()) is not None:
        chosen = obs.pools.gather(1, policy(obs).unsqueeze(1)).squeeze(1)   # [K]
        reward = game.play(chosen, generator)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ralis.registry import Registry

__all__ = ["Observation", "Game", "GAMES", "SPLIT_ROLES", "episode_copy"]

SPLIT_ROLES = ("reward", "selection", "test")
"""Sets a game can score its model on: D_R pays the reward, the selection split chooses
designs and handed-out policies, the test split is only ever reported."""


@dataclass
class Observation:
    """What the game shows at one step.

    ``pools [K, N]`` region ids of the game's pool; ``regional [K, N, C + 1 + P]`` each
    candidate's predicted class histogram and pooled entropy; ``entropy [K, N]`` its mean pixel
    entropy (the entropy baseline's score); ``error [K, N]`` the share of its labelled pixels
    the current model gets wrong (ground truth: for oracles only; ``None`` outside a game);
    ``labelled [C]`` the class shares of the pixels labelled so far. The query network's inputs,
    ``state [R_S, Ds]`` and ``actions [K, N, Da]`` (:mod:`ralis.rl.state_features`,
    :mod:`ralis.rl.action_features`), are computed
    the first time they are read (fixed policies never need them), as are the lookahead scores
    ``[K, N]`` (:meth:`lookahead_of`: each candidate's predicted drop of the reward split's loss,
    :mod:`ralis.game.influence`; ``lookahead`` reads the ground truth, for oracles only), which
    only games that can look ahead offer.
    """

    step: int
    pools: torch.Tensor
    regional: torch.Tensor
    entropy: torch.Tensor
    error: torch.Tensor | None
    labelled: torch.Tensor
    make_state: Callable[[], torch.Tensor] = field(repr=False, default=None)
    make_actions: Callable[[], torch.Tensor] = field(repr=False, default=None)
    make_lookahead: Callable[[str], torch.Tensor] | None = field(repr=False, default=None)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def state(self) -> torch.Tensor:
        if "state" not in self._cache:
            self._cache["state"] = self.make_state()
        return self._cache["state"]

    @property
    def actions(self) -> torch.Tensor:
        if "actions" not in self._cache:
            self._cache["actions"] = self.make_actions()
        return self._cache["actions"]

    @property
    def lookahead(self) -> torch.Tensor:
        return self.lookahead_of("truth")

    def lookahead_of(self, kind: str) -> torch.Tensor:
        """``[K, N]`` lookahead scores: ``truth`` (ground truth, for oracles) or a label-free
        kind (:data:`ralis.game.influence.UNLABELLED`)."""
        if self.make_lookahead is None:
            raise ValueError("this game offers no lookahead; the lookahead policies need "
                             "agent.game=head")
        key = f"lookahead-{kind}"
        if key not in self._cache:
            self._cache[key] = self.make_lookahead(kind)
        return self._cache[key]


class Game(Protocol):
    name: str
    start_score: float  # the start model's D_R mIoU (fraction)

    def reset(self, episode: int) -> None:
        """Start episode ``episode`` (its candidate pools depend on it): start weights, no
        labels."""

    def observe(self) -> Observation | None:
        """The next step's candidates, or ``None`` when the episode's budget is spent."""

    def play(self, chosen: torch.Tensor, generator: torch.Generator) -> float:
        """Label ``chosen [K]``, update the model, return the reward (100 x change of D_R
        mIoU); ``generator`` drives any training randomness."""

    def score(self, role: str) -> float:
        """The current model's mIoU (fraction) on ``role``, one of :data:`SPLIT_ROLES`."""

    def labelled_distribution(self) -> torch.Tensor:
        """``[C]`` class shares of the pixels labelled in this episode."""

    def labelled_count(self) -> int:
        """Regions labelled in this episode."""

    def snapshot(self) -> Any:
        """The episode's state, to :meth:`restore` later (one-step lookaheads, probes)."""

    def restore(self, snap: Any) -> None:
        """Return to a :meth:`snapshot` (which stays valid: it can be restored again)."""


def episode_copy(obj: Any, shared: Any) -> Any:
    """A deep copy of ``obj`` that keeps ``shared`` (e.g. the pool's ground-truth masks, which
    an oracle only reads) as the same object instead of copying it."""
    memo = {} if shared is None else {id(shared): shared}
    return copy.deepcopy(obj, memo)


GAMES: Registry = Registry("agent game")
"""``agent.game`` names -> game classes (registered by their modules)."""
