"""Held-out greedy episodes: how a policy does on seeds that never trained it.

Episode numbers fix a game's candidate pools (:meth:`ralis.game.base.Game.reset`). Three
disjoint ranges keep the roles apart:

* training episodes ``1 .. MAX_TRAINING_EPISODES`` (DQN episodes, search candidates);
* selection episodes from :data:`SELECTION_EPISODES`: choose the policy a training hands out
  (scored on the selection split);
* gate episodes from :data:`GATE_EPISODES`: ``benchmarks/agent_heldout.py`` (the only
  episodes scored on the test split).

Gate 1 (``benchmarks/game_signal.py``) plays fixed policies only, on episodes ``1000 + seed``
of its own game; no agent is trained or chosen there.

A policy here is a *pick* function, ``Observation -> [K]`` indices into the pools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from ralis.errors import ConfigError
from ralis.game.base import Game, Observation
from ralis.game.policies import FIXED_POLICIES
from ralis.run.session import step_seed

__all__ = ["MAX_TRAINING_EPISODES", "SELECTION_EPISODES", "GATE_EPISODES", "selection_episodes",
           "gate_episodes", "check_training_episodes", "play", "fixed_pick", "greedy_pick",
           "evaluate", "random_prefix_states"]

MAX_TRAINING_EPISODES = 100_000
SELECTION_EPISODES = 500_001
GATE_EPISODES = 900_001

Pick = Callable[[Observation], torch.Tensor]


def selection_episodes(n: int) -> list[int]:
    return list(range(SELECTION_EPISODES, SELECTION_EPISODES + n))


def gate_episodes(n: int) -> list[int]:
    return list(range(GATE_EPISODES, GATE_EPISODES + n))


def check_training_episodes(last: int) -> None:
    if last > MAX_TRAINING_EPISODES:
        raise ConfigError(f"at most {MAX_TRAINING_EPISODES} training episodes (their seeds must "
                          "stay apart from the held-out ones); lower agent.episodes")


def fixed_pick(name: str, episode: int) -> Pick:
    """A fixed policy (:data:`ralis.game.policies.FIXED_POLICIES`) whose randomness depends on
    the episode and step only."""
    policy = FIXED_POLICIES.get(name)

    def pick(obs: Observation) -> torch.Tensor:
        g = torch.Generator().manual_seed(step_seed(episode, obs.step, f"heldout-{name}"))
        return policy(obs, g)

    return pick


def greedy_pick(score: Callable[[Observation], torch.Tensor]) -> Pick:
    """``score(obs) -> [K, N]`` -> the argmax of each pool."""
    return lambda obs: score(obs).argmax(dim=1)


def play(game: Game, pick: Pick, episode: int) -> float:
    """Play one whole episode; returns its return (sum of rewards). No training randomness
    beyond a generator fixed by the episode (the net game's SGD)."""
    game.reset(episode)
    total = 0.0
    while (obs := game.observe()) is not None:
        chosen = obs.pools.gather(1, pick(obs).unsqueeze(1)).squeeze(1)
        g = torch.Generator().manual_seed(step_seed(episode, obs.step, "heldout-train"))
        total += game.play(chosen, g)
    return total


def evaluate(game: Game, picks: dict[str, Callable[[int], Pick]], episodes: Sequence[int],
             roles: Sequence[str]) -> list[dict]:
    """Play every policy of ``picks`` (name -> episode -> pick) on every episode; rows
    ``{"seed": episode, "policy", "role", "miou"}`` (mIoU as a fraction)."""
    if "test" in roles and any(e < GATE_EPISODES for e in episodes):
        raise ValueError("only gate episodes may be scored on the test split")
    rows = []
    for episode in episodes:
        for name, make in picks.items():
            play(game, make(episode), episode)
            rows += [{"seed": episode, "policy": name, "role": r, "miou": game.score(r)}
                     for r in roles]
    return rows


def random_prefix_states(game: Game, first: int, count: int, steps: Sequence[int], stream: str
                         ) -> Iterator[tuple[int, Observation]]:
    """``(i, obs)`` at each of ``steps`` of episodes ``first + i`` (``i = 1 .. count``), whose
    pools are played by ``random`` up to the last of ``steps``; the random picks draw from
    ``step_seed(i, step, stream)`` only, so what a caller does with ``obs`` (before asking for
    the next one) never moves the states that follow. For probes of a game's states."""
    last = max(steps)
    policy = FIXED_POLICIES.get("random")
    for i in range(1, count + 1):
        game.reset(first + i)
        while (obs := game.observe()) is not None and obs.step <= last:
            if obs.step in steps:
                yield i, obs
            g = torch.Generator().manual_seed(step_seed(i, obs.step, stream))
            game.play(obs.pools.gather(1, policy(obs, g)[:, None])[:, 0])
