"""What the step-by-step learners of an entropy-started scorer share (``agent.mode`` ``credit``
and ``imitation``): the scorer (:class:`~ralis.rl.scorers.EntropyResidual`, an MLP residual
of ``agent.residual_hidden`` units, starting as entropy), Adam, a ring buffer of whole steps
(``agent.buffer_size``), minibatch updates with the gradient norm clipped to
``agent.grad_clip`` and a divergence guard, and the hand-out: the scorer with the best mean
selection-split mIoU on held-out selection episodes, judged every ``agent.heldout_every``
episodes and after the last; episode 0 is the start scorer, entropy itself.

A learner supplies ``batch_loss(entries) -> scalar`` (a minibatch of buffered steps) and
``_play_episode()``.
"""

from __future__ import annotations

import copy
import math
import time

import torch

from ralis.agents.base import Selection, Trainer
from ralis.agents.persist import Persistent
from ralis.errors import RalisError
from ralis.game.heldout import check_training_episodes, greedy_pick
from ralis.game.scoring import policy_scores
from ralis.metrics import distribution_entropy
from ralis.rl.scorers import EntropyResidual
from ralis.training.divergence import blame

__all__ = ["ResidualLearner", "LOSS_LIMIT"]

LOSS_LIMIT = 1e4
"""A minibatch loss above this means the learner diverged."""


class ResidualLearner(Persistent, Trainer):
    def __init__(self, cfg, run, proto, progress: bool = True):
        Trainer.__init__(self, cfg, run, proto, progress)
        a = cfg.agent
        check_training_episodes(a.episodes)
        torch.manual_seed(cfg.seed)
        self.scorer = EntropyResidual(proto.num_classes, a.residual_hidden)
        self.optimizer = torch.optim.Adam(self.scorer.parameters(), lr=a.lr)
        self.buffer: list[dict] = []
        self.position = 0
        self.sampler = torch.Generator().manual_seed(cfg.seed)
        self.episode = self.global_step = 0
        self.best = {"episode": 0, "selection_miou": None,
                     "state": copy.deepcopy(self.scorer.state_dict())}
        self.selection = Selection(self.game, self.store, a.heldout_seeds)

    # --- persistence ------------------------------------------------------------------------
    def state_tree(self) -> dict:
        return {"episode": self.episode, "global_step": self.global_step,
                "scorer": self.scorer.state_dict(), "optimizer": self.optimizer.state_dict(),
                "buffer": self.buffer, "position": self.position,
                "sampler": self.sampler.get_state(), "best": self.best}

    def load_tree(self, ck: dict) -> None:
        self.scorer.load_state_dict(ck["scorer"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.buffer, self.position = list(ck["buffer"]), int(ck["position"])
        self.sampler.set_state(ck["sampler"])
        self.best = dict(ck["best"])
        EntropyResidual(self.proto.num_classes, self.cfg.agent.residual_hidden).load_state_dict(
            self.best["state"])  # shapes checked
        self.episode, self.global_step = int(ck["episode"]), int(ck["global_step"])

    def handed_out(self) -> tuple[torch.nn.Module, dict]:
        net = EntropyResidual(self.proto.num_classes, self.cfg.agent.residual_hidden)
        net.load_state_dict(self.best["state"])
        return net, {"selection": "best held-out selection mIoU",
                     "selected_episode": self.best["episode"],
                     "selection_miou": self.best["selection_miou"]}

    # --- learning -----------------------------------------------------------------------------
    def push(self, entry: dict) -> None:
        if len(self.buffer) < self.cfg.agent.buffer_size:
            self.buffer.append(entry)
        else:
            self.buffer[self.position] = entry
            self.position = (self.position + 1) % len(self.buffer)

    def batch_loss(self, entries: list[dict]) -> torch.Tensor:
        raise NotImplementedError

    def update(self) -> float:
        """One minibatch of ``agent.batch_size`` buffered steps; returns its loss."""
        a = self.cfg.agent
        picks = torch.randint(len(self.buffer), (a.batch_size,), generator=self.sampler)
        self.scorer.train()
        loss = self.batch_loss([self.buffer[i] for i in picks.tolist()])
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.scorer.parameters(), a.grad_clip)
        self.optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value) or value > LOSS_LIMIT:
            raise RalisError(f"the {a.mode} learner diverged (loss {value:.3g} at episode "
                             f"{self.episode}); lower agent.lr={a.lr:g}{self.divergence_extra()}")
        return value

    def play_episode(self) -> dict:
        with blame(f"train.lr={self.cfg.train.lr:g}"):
            return self._play_episode()

    def _play_episode(self) -> dict:
        raise NotImplementedError

    def episode_row(self, start: float, total: float, losses: list[float], explore: float,
                    steps: int) -> dict:
        """The run store's row of the episode just played (``explore``: ε or the expert's
        share)."""
        game = self.game
        miou = game.last.get("reward_miou", game.past) if steps else game.past
        return {"episode": self.episode, "return": total, "final_miou": miou,
                "start_miou": self.start_miou, "epsilon": explore,
                "loss": sum(losses) / len(losses) if losses else None,
                "dqn_lr": self.cfg.agent.lr, "labelled": game.labelled_count(),
                "class_entropy": distribution_entropy(game.labelled_distribution()),
                "wall": time.perf_counter() - start}

    def divergence_extra(self) -> str:
        return ""

    def train_on_buffer(self) -> list[float]:
        """``agent.updates_per_step`` minibatches once the buffer holds a batch."""
        a = self.cfg.agent
        if len(self.buffer) < a.batch_size:
            return []
        return [self.update() for _ in range(a.updates_per_step)]

    def after_episode(self, row: dict) -> None:
        a = self.cfg.agent
        if self.episode % a.heldout_every and self.episode != a.episodes:
            return
        if self.best["selection_miou"] is None:  # episode 0: the start scorer is entropy
            self.selection.baselines()
            self.best["selection_miou"] = self.selection.baseline_mean("entropy")
        scorer = copy.deepcopy(self.scorer)
        won = self.selection.improves(self.best["selection_miou"], self.episode, greedy_pick(
            lambda o: policy_scores(scorer, o, self.spec)))
        if won is not None:
            self.best = {"episode": self.episode, "selection_miou": won,
                         "state": scorer.state_dict()}
