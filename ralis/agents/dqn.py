"""The paper's learner: double DQN on per-pool transitions (reference section 5).

Each step's ``K`` picks become ``K`` transitions that share the step's reward; the query
network (:class:`~ralis.rl.qnet.QueryNetwork`) trains one minibatch per step. ``agent.mode``
``faithful`` reproduces the authors' quirks (global ε schedule, DQN lr decaying x0.97 per step,
the last policy handed out); ``fixed`` corrects them (ε linear over episodes, a constant lr) and
hands out the policy with the best mean selection-split mIoU on held-out selection episodes,
judged greedily every ``agent.heldout_every`` episodes and after the last one (never the best
*training* episode, whose score is partly luck). Played in ``agent.game=net`` its training
episodes are those of every earlier ralis version, bit for bit (judging does not touch the
training's random streams).
"""

from __future__ import annotations

import copy
import time

import torch

from ralis.agents.base import Selection, Trainer
from ralis.agents.persist import Persistent
from ralis.game.heldout import check_training_episodes, greedy_pick
from ralis.game.scoring import policy_scores
from ralis.metrics import distribution_entropy
from ralis.rl.dqn import dqn_update, epsilon_schedule, linear_epsilon, select_actions, sync_target
from ralis.rl.policy import build_qnet
from ralis.rl.replay import ReplayBuffer
from ralis.run.session import step_seed
from ralis.training.divergence import blame, check_loss, check_weights

__all__ = ["DQNTrainer", "epsilon_for"]


def epsilon_for(cfg, episode: int, global_step: int) -> float:
    a = cfg.agent
    if a.mode == "faithful":
        return epsilon_schedule(global_step, a.eps_start, a.eps_end, a.eps_decay)
    return linear_epsilon(episode, a.eps_start, a.eps_end, max(1, int(a.eps_decay)))


class DQNTrainer(Persistent, Trainer):
    """State of one DQN training; :meth:`run` plays the remaining episodes, resumably."""

    def __init__(self, cfg, run, proto, progress: bool = True):
        Trainer.__init__(self, cfg, run, proto, progress)
        torch.manual_seed(cfg.seed)
        self.policy = build_qnet(self.spec).to(cfg.device)
        self.target = build_qnet(self.spec).to(cfg.device)
        sync_target(self.policy, self.target)
        a = cfg.agent
        self.optimizer = torch.optim.SGD(self.policy.parameters(), lr=a.lr,
                                         momentum=cfg.train.momentum, weight_decay=a.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, a.lr_gamma)
        self.buffer = ReplayBuffer(a.buffer_size, torch.Generator().manual_seed(cfg.seed))
        self.episode = 0
        self.global_step = 0
        check_training_episodes(a.episodes)
        # the held-out choice (fixed mode); before the first judgement the current policy
        self.best = {"episode": None, "selection_miou": None, "state": None}
        self.selection = Selection(self.game, self.store, a.heldout_seeds)

    # --- persistence (Persistent) -----------------------------------------------------------
    def state_tree(self) -> dict:
        return {"episode": self.episode, "global_step": self.global_step,
                "policy": self.policy.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "buffer": self.buffer.state_dict(),
                "best": self.best}

    def load_tree(self, ck: dict) -> None:
        self.policy.load_state_dict(ck["policy"])
        self.target.load_state_dict(ck["target"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.buffer.load_state_dict(ck["buffer"])
        self.best = dict(ck["best"])
        if self.best["state"] is not None:
            build_qnet(self.spec).load_state_dict(self.best["state"])  # shapes checked
        self.episode, self.global_step = int(ck["episode"]), int(ck["global_step"])

    def handed_out(self) -> tuple[torch.nn.Module, dict]:
        """The last policy (faithful) or the best one on held-out selection episodes (fixed)."""
        if self.cfg.agent.mode == "faithful" or self.best["state"] is None:
            return self.policy, {"selection": "last policy"}
        net = build_qnet(self.spec)
        net.load_state_dict(self.best["state"])
        return net, {"selection": "best held-out selection mIoU",
                     "selected_episode": self.best["episode"],
                     "selection_miou": self.best["selection_miou"]}

    # --- one episode ------------------------------------------------------------------------
    def play_episode(self) -> dict:
        with blame(f"train.lr={self.cfg.train.lr:g}"):
            return self._play_episode()

    def _play_episode(self) -> dict:
        cfg, a, game = self.cfg, self.cfg.agent, self.game
        self.episode += 1
        ep = self.episode
        start = time.perf_counter()
        game.reset(ep)
        epsilon = epsilon_for(cfg, ep - 1, self.global_step)
        total_return, losses, t = 0.0, [], 0
        obs = game.observe()
        while obs is not None:
            t += 1
            self.global_step += 1
            torch.manual_seed(step_seed(cfg.seed, ep * 100003 + t, "torch"))
            g = torch.Generator().manual_seed(step_seed(cfg.seed, ep * 100003 + t, "act"))
            if a.mode == "faithful":
                epsilon = epsilon_for(cfg, ep - 1, self.global_step - 1)
            state, feats = obs.state, obs.actions
            actions = select_actions(self.policy, feats.to(cfg.device), state.to(cfg.device),
                                     epsilon, g)
            reward = game.play(obs.pools.gather(1, actions.unsqueeze(1)).squeeze(1), g)
            total_return += reward
            obs = game.observe()
            if obs is not None:
                # pool k at t pairs with pool k at t+1 (the authors' pairing); a shorter last
                # step reuses its pools cyclically
                nxt = obs.actions
                pair = nxt[torch.arange(feats.shape[0]) % nxt.shape[0]]
                self.buffer.push_step(state, feats, actions, reward, obs.state, pair)
            else:
                self.buffer.push_step(state, feats, actions, reward, None, None)
            if len(self.buffer) >= a.batch_size:
                loss = dqn_update(self.policy, self.target, self.optimizer,
                                  self.buffer.sample(a.batch_size), a.gamma)
                where = f"in a DQN update (episode {ep}, step {t})"
                check_loss(loss, where, f"agent.lr={a.lr:g}")
                check_weights(self.policy, where, f"agent.lr={a.lr:g}")
                losses.append(loss)
            if a.mode == "faithful":
                self.scheduler.step()
            if t % a.target_sync == 0:
                sync_target(self.policy, self.target)
        miou = game.last.get("reward_miou", game.past) if t else game.past
        row = {
            "episode": ep, "return": total_return, "final_miou": miou,
            "start_miou": self.start_miou, "epsilon": epsilon,
            "loss": sum(losses) / len(losses) if losses else None,
            "dqn_lr": self.optimizer.param_groups[0]["lr"], "labelled": game.labelled_count(),
            "class_entropy": distribution_entropy(game.labelled_distribution()),
            "wall": time.perf_counter() - start,
        }
        return row

    def after_episode(self, row: dict) -> None:
        """Fixed mode: judge the greedy policy on the held-out selection episodes."""
        a = self.cfg.agent
        if a.mode == "faithful" or (self.episode % a.heldout_every
                                    and self.episode != a.episodes):
            return
        net = copy.deepcopy(self.policy).cpu()
        won = self.selection.improves(self.best["selection_miou"], self.episode, greedy_pick(
            lambda o: policy_scores(net, o, self.spec)))
        if won is not None:
            self.best = {"episode": self.episode, "selection_miou": won,
                         "state": net.state_dict()}
