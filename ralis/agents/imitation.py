"""``agent.mode=imitation``: an entropy-started scorer that imitates a ground-truth expert,
DAgger-style (:mod:`ralis.rl.imitation`).

The expert (``agent.imitation_expert``) is a fixed policy that reads the game pool's ground
truth, which a real labelling run never has: ``oracle``, gate 1's error oracle (in each pool the
candidate whose labelled pixels the current model gets most wrong), or ``lookahead`` (head game:
the candidate predicted to lower D_R's class-balanced cross-entropy most if labelled next, a
first-order one-step lookahead, :mod:`ralis.game.influence`). The scorer learns to pick what the
expert would from what a real run does see (the entropy and descriptor of each candidate). In training
episode ``i`` each pool takes the expert's pick with probability ``agent.imitation_beta **
(i - 1)`` and the scorer's greedy pick otherwise; every step is kept with the expert's picks
for every pool, and after each step ``agent.updates_per_step`` minibatches lower the
cross-entropy of the expert's picks. Scorer, buffer, clipping, divergence guard and the
held-out hand-out are :class:`~ralis.agents.residual.ResidualLearner`'s.
"""

from __future__ import annotations

import time

import torch

from ralis.agents.residual import ResidualLearner
from ralis.game.policies import FIXED_POLICIES
from ralis.game.scoring import policy_scores, residual_inputs
from ralis.rl.imitation import dagger_beta, imitation_loss, mix_picks
from ralis.run.session import step_seed

__all__ = ["ImitationTrainer"]


class ImitationTrainer(ResidualLearner):
    def batch_loss(self, entries: list[dict]) -> torch.Tensor:
        scores = torch.stack([self.scorer(e["entropy"], e["desc"]) for e in entries])
        return imitation_loss(scores, torch.stack([e["expert"] for e in entries]))

    def _play_episode(self) -> dict:
        cfg, a, game, spec = self.cfg, self.cfg.agent, self.game, self.spec
        self.episode += 1
        ep, start = self.episode, time.perf_counter()
        game.reset(ep)
        beta = dagger_beta(ep, a.imitation_beta)
        expert_of = FIXED_POLICIES.get(a.imitation_expert)
        total, losses, agree, picks, t = 0.0, [], 0, 0, 0
        obs = game.observe()
        while obs is not None:
            t += 1
            self.global_step += 1
            g = torch.Generator().manual_seed(step_seed(cfg.seed, ep * 100003 + t, "act"))
            expert = expert_of(obs, g)
            learner = policy_scores(self.scorer, obs, spec).argmax(1)
            agree, picks = agree + int((learner == expert).sum()), picks + expert.numel()
            actions = mix_picks(learner, expert, beta, g)
            entropy, desc = residual_inputs(obs, spec)
            self.push({"entropy": entropy, "desc": desc, "expert": expert})
            total += game.play(obs.pools.gather(1, actions.unsqueeze(1)).squeeze(1), g)
            obs = game.observe()
            losses += self.train_on_buffer()
        return {**self.episode_row(start, total, losses, beta, t),
                "expert_agreement": agree / picks if picks else None}
