"""``agent.mode=credit``: a value learner with per-step credit over an entropy-started scorer.

The scorer (:class:`~ralis.rl.scorers.EntropyResidual`, an MLP residual of ``agent.
residual_hidden`` units) starts as entropy. Each step is one replay entry; a minibatch of
steps regresses the sum of each step's K chosen scores on its reward (value decomposition,
:mod:`ralis.rl.credit`), plus ``agent.gamma`` times the target scorer's best next-step sum.
Learner hygiene: rewards divided by their running SD, targets clipped to
``agent.target_clip``, Adam, gradient norm clipped to ``agent.grad_clip``,
``agent.updates_per_step`` minibatches per step, and a divergence guard (a non-finite or
exploding loss stops the run with one line). Exploration: with probability ε a step's K picks
are uniform, ε linear over ``agent.eps_decay`` episodes. The policy handed out is the one with
the best mean selection-split mIoU on held-out selection episodes, judged every
``agent.heldout_every`` episodes; episode 0 is the start scorer (entropy itself).
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
from ralis.game.scoring import policy_scores, residual_inputs
from ralis.metrics import distribution_entropy
from ralis.rl.credit import RunningScale, vdn_loss, vdn_target
from ralis.rl.dqn import linear_epsilon
from ralis.rl.scorers import EntropyResidual
from ralis.run.session import step_seed
from ralis.training.divergence import blame

__all__ = ["CreditTrainer", "LOSS_LIMIT"]

LOSS_LIMIT = 1e4
"""A minibatch loss above this (in reward-SD units squared) means the values diverged."""


class CreditTrainer(Persistent, Trainer):
    def __init__(self, cfg, run, proto, progress: bool = True):
        Trainer.__init__(self, cfg, run, proto, progress)
        a = cfg.agent
        check_training_episodes(a.episodes)
        torch.manual_seed(cfg.seed)
        self.scorer = EntropyResidual(proto.num_classes, a.residual_hidden)
        self.target = copy.deepcopy(self.scorer)
        self.optimizer = torch.optim.Adam(self.scorer.parameters(), lr=a.lr)
        self.scale = RunningScale()
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
                "scorer": self.scorer.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scale": self.scale.state_dict(),
                "buffer": self.buffer, "position": self.position,
                "sampler": self.sampler.get_state(), "best": self.best}

    def load_tree(self, ck: dict) -> None:
        self.scorer.load_state_dict(ck["scorer"])
        self.target.load_state_dict(ck["target"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scale.load_state_dict(ck["scale"])
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

    def update(self) -> float:
        a = self.cfg.agent
        picks = torch.randint(len(self.buffer), (a.batch_size,), generator=self.sampler)
        self.scorer.train()
        q_sum, targets = [], []
        for i in picks.tolist():
            e = self.buffer[i]
            q = self.scorer(e["entropy"], e["desc"])
            q_sum.append(q.gather(1, e["actions"].unsqueeze(1)).squeeze(1).sum())
            nxt = None
            if a.gamma and e["next"] is not None:
                with torch.no_grad():
                    nxt = self.target(*e["next"]).max(1).values.sum().reshape(1)
            r = torch.tensor([self.scale.scale(e["reward"])])
            targets.append(vdn_target(r, nxt, a.gamma, a.target_clip))
        loss = vdn_loss(torch.stack(q_sum).unsqueeze(1), torch.cat(targets))
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.scorer.parameters(), a.grad_clip)
        self.optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value) or value > LOSS_LIMIT:
            raise RalisError(f"the credit learner's values diverged (loss {value:.3g} at "
                             f"episode {self.episode}); lower agent.lr={a.lr:g} or "
                             f"agent.target_clip={a.target_clip:g}")
        return value

    def play_episode(self) -> dict:
        with blame(f"train.lr={self.cfg.train.lr:g}"):
            return self._play_episode()

    def _play_episode(self) -> dict:
        cfg, a, game, spec = self.cfg, self.cfg.agent, self.game, self.spec
        self.episode += 1
        ep, start = self.episode, time.perf_counter()
        game.reset(ep)
        epsilon = linear_epsilon(ep - 1, a.eps_start, a.eps_end, max(1, int(a.eps_decay)))
        total, losses, t = 0.0, [], 0
        obs = game.observe()
        while obs is not None:
            t += 1
            self.global_step += 1
            g = torch.Generator().manual_seed(step_seed(cfg.seed, ep * 100003 + t, "act"))
            K, N = obs.pools.shape
            if float(torch.rand((), generator=g)) < epsilon:
                actions = torch.randint(N, (K,), generator=g)
            else:
                actions = policy_scores(self.scorer, obs, spec).argmax(1)
            entropy, desc = residual_inputs(obs, spec)
            reward = game.play(obs.pools.gather(1, actions.unsqueeze(1)).squeeze(1), g)
            total += reward
            self.scale.update(reward)
            obs = game.observe()
            nxt = residual_inputs(obs, spec) if obs is not None and a.gamma else None
            self.push({"entropy": entropy, "desc": desc, "actions": actions,
                       "reward": reward, "next": nxt})
            if len(self.buffer) >= a.batch_size:
                losses += [self.update() for _ in range(a.updates_per_step)]
            if self.global_step % a.target_sync == 0:
                self.target.load_state_dict(self.scorer.state_dict())
        miou = game.last.get("reward_miou", game.past) if t else game.past
        return {"episode": ep, "return": total, "final_miou": miou,
                "start_miou": self.start_miou, "epsilon": epsilon,
                "loss": sum(losses) / len(losses) if losses else None,
                "dqn_lr": a.lr, "labelled": game.labelled_count(),
                "class_entropy": distribution_entropy(game.labelled_distribution()),
                "wall": time.perf_counter() - start}

    def after_episode(self, row: dict) -> None:
        a = self.cfg.agent
        if self.episode % a.heldout_every and self.episode != a.episodes:
            return
        if self.best["selection_miou"] is None:  # episode 0: the start scorer is entropy
            self.selection.baselines()
            self.best["selection_miou"] = self.selection.baseline_mean("entropy")
        scorer = copy.deepcopy(self.scorer)
        judged = self.selection.judge(self.episode, greedy_pick(
            lambda o: policy_scores(scorer, o, self.spec)))
        if judged["selection_miou"] > self.best["selection_miou"]:
            self.best = {"episode": self.episode, "selection_miou": judged["selection_miou"],
                         "state": copy.deepcopy(self.scorer.state_dict())}


