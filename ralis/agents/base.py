"""What every agent training shares: the run, the start model, the game, and the choice of the
policy it hands out on held-out selection episodes.

The learners (one module each) are the paper's DQN (:mod:`ralis.agents.dqn`, ``agent.mode``
``faithful`` / ``fixed``), a DQN with per-step credit over an entropy-started scorer
(:mod:`ralis.agents.credit`, ``credit``), episode-level search of an entropy-started scorer
(:mod:`ralis.agents.search`, ``search``) and imitation of a ground-truth expert
(:mod:`ralis.agents.imitation`, ``imitation``; the step learners share
:mod:`ralis.agents.residual`). ``Trainer.run()`` plays the remaining episodes
resumably and returns the summary written to ``agent.json``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from ralis.agents.start import game_split, start_model
from ralis.config import RunConfig
from ralis.data.protocol import Protocol
from ralis.files.record import data_record
from ralis.game import GAMES
from ralis.game.base import Observation
from ralis.game.heldout import evaluate, fixed_pick, selection_episodes
from ralis.rl.observe import FeatureSpec
from ralis.run.rundir import Run
from ralis.run.store import RunStore

__all__ = ["Trainer", "Selection", "SELECTION_ROLES"]

SELECTION_ROLES = ("reward", "selection")
"""Held-out selection episodes are scored on D_R and on the selection split (never test)."""


class Trainer:
    """State shared by every learner: run, protocol, feature layout, start model and game."""

    def __init__(self, cfg: RunConfig, run: Run, proto: Protocol, progress: bool = True):
        self.cfg, self.run_dir, self.out, self.proto = cfg, run, run.root, proto
        self.progress, self.store = progress, run.store
        self.spec = FeatureSpec.from_config(cfg.agent, proto.num_classes,
                                            proto.regions_of(proto.state), len(proto.state))
        self.theta_start = start_model(cfg, proto, run, progress)
        start_images, self.game_images = game_split(cfg, proto)
        self.game = GAMES.get(cfg.agent.game)(cfg, proto, self.theta_start, start_images,
                                             self.game_images, self.spec, cfg.seed)
        self.start_miou = self.game.start_score

    def policy_meta(self) -> dict:
        """The record every policy file of this training carries."""
        a = self.cfg.agent
        return {**data_record(self.cfg, self.proto, self.game_images), "mode": a.mode,
                "seed": self.cfg.seed, "start_from": a.start_from, "game": a.game,
                "run_id": self.run_dir.run_id}


class Selection:
    """Chooses the policy a training hands out, on ``seeds`` held-out selection episodes.

    Every judged policy plays greedily on the same episodes (the same candidate pools) as
    random and entropy did once; the one with the highest mean selection-split mIoU wins.
    Rows go to the run store's ``heldout`` table (``episode`` 0: the baselines), so the
    held-out learning curve survives interruptions and the report can draw it.
    """

    def __init__(self, game, store: RunStore, seeds: int) -> None:
        self.game, self.store = game, store
        self.episodes = selection_episodes(seeds)

    def _rows(self, episode: int, policy: str) -> list[dict]:
        return [r for r in self.store.heldout()
                if r["episode"] == episode and r["policy"] == policy]

    def baselines(self) -> None:
        """Play random and entropy once on the selection episodes (skipped when stored)."""
        for name in ("random", "entropy"):
            if not self._rows(0, name):
                rows = evaluate(self.game, {name: lambda e, n=name: fixed_pick(n, e)},
                                self.episodes, SELECTION_ROLES)
                self.store.add_heldout([{**r, "episode": 0} for r in rows])

    def baseline_mean(self, policy: str) -> float:
        """Mean selection-split mIoU of a baseline (``random`` or ``entropy``)."""
        return statistics.fmean(r["miou"] for r in self._rows(0, policy)
                                if r["role"] == "selection")

    def judge(self, episode: int, pick: Callable[[Observation], torch.Tensor]) -> dict:
        """Play ``pick`` greedily on the selection episodes (stored as ``episode``'s row);
        returns the mean selection mIoU and its paired advantages over random and entropy."""
        self.baselines()
        if not self._rows(episode, "agent"):
            rows = evaluate(self.game, {"agent": lambda e: pick}, self.episodes,
                            SELECTION_ROLES)
            self.store.add_heldout([{**r, "episode": episode} for r in rows])
        return self.summary(episode)

    def improves(self, best_miou: float | None, episode: int,
                 pick: Callable[[Observation], torch.Tensor]) -> float | None:
        """Judge ``pick`` as ``episode``'s policy; its mean selection mIoU when it beats
        ``best_miou`` (``None``: nothing judged yet, so it does), else ``None``."""
        miou = self.judge(episode, pick)["selection_miou"]
        return miou if best_miou is None or miou > best_miou else None

    def summary(self, episode: int) -> dict:
        def by_seed(ep, policy):
            return {r["seed"]: r["miou"] for r in self._rows(ep, policy)
                    if r["role"] == "selection"}

        agent = by_seed(episode, "agent")
        out = {"episode": episode, "selection_miou": statistics.fmean(agent.values())}
        for name in ("random", "entropy"):
            base = by_seed(0, name)
            diff = [100.0 * (agent[s] - base[s]) for s in agent]
            out[f"minus_{name}"] = statistics.fmean(diff)
        return out
