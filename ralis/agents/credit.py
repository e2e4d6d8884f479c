"""``agent.mode=credit``: a value learner with per-step credit over an entropy-started scorer.

Each step is one replay entry; a minibatch of steps regresses the sum of each step's K chosen
scores on its reward (value decomposition, :mod:`ralis.rl.credit`), plus ``agent.gamma`` times
the target scorer's best next-step sum. Rewards are divided by their running SD and targets
clipped to ``agent.target_clip``. Exploration: with probability ε a step's K picks are
uniform, ε linear over ``agent.eps_decay`` episodes. The scorer, Adam, the clipping, the
divergence guard and the held-out hand-out are :class:`~ralis.agents.residual.ResidualLearner`'s.
"""

from __future__ import annotations

import copy
import time

import torch

from ralis.agents.residual import LOSS_LIMIT, ResidualLearner
from ralis.game.scoring import policy_scores, residual_inputs
from ralis.rl.credit import RunningScale, vdn_loss, vdn_target
from ralis.rl.dqn import linear_epsilon
from ralis.run.session import step_seed

__all__ = ["CreditTrainer", "LOSS_LIMIT"]


class CreditTrainer(ResidualLearner):
    def __init__(self, cfg, run, proto, progress: bool = True):
        super().__init__(cfg, run, proto, progress)
        self.target = copy.deepcopy(self.scorer)
        self.scale = RunningScale()

    def state_tree(self) -> dict:
        return {**super().state_tree(), "target": self.target.state_dict(),
                "scale": self.scale.state_dict()}

    def load_tree(self, ck: dict) -> None:
        super().load_tree(ck)
        self.target.load_state_dict(ck["target"])
        self.scale.load_state_dict(ck["scale"])

    def divergence_extra(self) -> str:
        return f" or agent.target_clip={self.cfg.agent.target_clip:g}"

    def batch_loss(self, entries: list[dict]) -> torch.Tensor:
        a = self.cfg.agent
        q_sum, targets = [], []
        for e in entries:
            q = self.scorer(e["entropy"], e["desc"])
            q_sum.append(q.gather(1, e["actions"].unsqueeze(1)).squeeze(1).sum())
            nxt = None
            if a.gamma and e["next"] is not None:
                with torch.no_grad():
                    nxt = self.target(*e["next"]).max(1).values.sum().reshape(1)
            r = torch.tensor([self.scale.scale(e["reward"])])
            targets.append(vdn_target(r, nxt, a.gamma, a.target_clip))
        return vdn_loss(torch.stack(q_sum).unsqueeze(1), torch.cat(targets))

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
            losses += self.train_on_buffer()
            if self.global_step % a.target_sync == 0:
                self.target.load_state_dict(self.scorer.state_dict())
        return self.episode_row(start, total, losses, epsilon, t)
