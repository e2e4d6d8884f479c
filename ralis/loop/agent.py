"""Training the RALIS query agent by playing the labelling game on D_T (reference section 5).

Each episode resets the segmentation net to its start weights, then labels D_T regions step by
step: K pools of N candidates, one region per pool chosen ε-greedily by the query network; the
net trains one pass on the new regions; the reward is 100 x the change of D_R mIoU. Transitions
are stored per pool in a replay buffer and the query network is trained by double DQN, one
minibatch per step. ``mode="faithful"`` reproduces the authors' quirks, ``"fixed"`` corrects them
(see :class:`ralis.config.AgentConfig`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ralis.config import RunConfig
from ralis.data.pool import RegionPool
from ralis.data.protocol import ImageSet, Protocol, load_protocol
from ralis.errors import ConfigError
from ralis.loop.oracle import Oracle
from ralis.loop.pretrain import train_supervised
from ralis.loop.session import git_revision, open_run_dir, set_threads, step_seed
from ralis.loop.store import RunStore, atomic_save, atomic_write_text, load_checkpoint
from ralis.loop.train import LabelledData, evaluate, make_optimizer, train_pass
from ralis.metrics import class_distribution, distribution_entropy, mean_iou
from ralis.models import load_model, save_model
from ralis.rl.dqn import dqn_update, epsilon_schedule, linear_epsilon, select_actions, sync_target
from ralis.rl.observe import FeatureSpec, observe_pools, observe_state
from ralis.rl.policy import build_qnet, save_policy
from ralis.rl.replay import ReplayBuffer


def game_split(cfg: RunConfig, proto: Protocol) -> tuple[ImageSet, ImageSet]:
    """(images that train the start model, images the game labels).

    ``agent.start_from="state"``: the first ``agent.start_images`` of D_S, and all of D_T.
    ``"dt-half"``: the first half of D_T, and the second half, so the start model is close to
    θ0's quality and has still never seen the labels the game hands out.
    """
    if cfg.agent.start_from == "dt-half":
        n = len(proto.dqn_train)
        if n < 2:
            raise ConfigError("agent.start_from=dt-half needs at least 2 D_T images")
        half = n // 2
        return (proto.dqn_train.subset(list(range(half))),
                proto.dqn_train.subset(list(range(half, n))))
    start = proto.state.subset(list(range(min(cfg.agent.start_images, len(proto.state)))))
    return start, proto.dqn_train


def start_model(cfg: RunConfig, proto: Protocol, out: Path, progress: bool) -> torch.nn.Module:
    """The episodes' start weights: a net that has never seen the game's labels.

    The paper uses a GTA-V-pretrained net; nothing can be downloaded here, so a net trained on
    the (labelled) state set D_S, or on half of D_T, stands in for it (:func:`game_split`).
    Saved once as ``start_model.pt``.
    """
    path = out / "start_model.pt"
    if not path.exists():
        images, _ = game_split(cfg, proto)
        where = "half of D_T" if cfg.agent.start_from == "dt-half" else "D_S"
        model, metrics = train_supervised(cfg, proto, images, f"agent start model on {where}",
                                          progress, seed_offset=7919)
        save_model(path, model, cfg.model.name, proto.num_classes,
                   {"dropout_p": cfg.model.dropout_p},
                   extra={"classes": list(proto.classes.names), **{k: metrics[k] for k in
                          ("val_miou", "test_miou", "epochs")}})
    model, _ = load_model(path)
    return model.to(cfg.device)


def epsilon_for(cfg: RunConfig, episode: int, global_step: int) -> float:
    a = cfg.agent
    if a.mode == "faithful":
        return epsilon_schedule(global_step, a.eps_start, a.eps_end, a.eps_decay)
    return linear_epsilon(episode, a.eps_start, a.eps_end, max(1, int(a.eps_decay)))


class AgentTrainer:
    """State of one agent training; :meth:`run` plays the remaining episodes, resumably."""

    def __init__(self, cfg: RunConfig, out: Path, proto: Protocol, progress: bool = True):
        self.cfg, self.out, self.proto, self.progress = cfg, Path(out), proto, progress
        self.spec = FeatureSpec.from_config(cfg.agent, proto.num_classes, proto.grid,
                                            len(proto.state))
        self.theta_start = start_model(cfg, proto, self.out, progress)
        self.game_images = game_split(cfg, proto)[1]
        self.start_state = copy.deepcopy(self.theta_start.state_dict())
        torch.manual_seed(cfg.seed)
        self.policy = build_qnet(self.spec).to(cfg.device)
        self.target = build_qnet(self.spec).to(cfg.device)
        sync_target(self.policy, self.target)
        a = cfg.agent
        self.optimizer = torch.optim.SGD(self.policy.parameters(), lr=a.lr,
                                         momentum=cfg.train.momentum, weight_decay=a.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, a.lr_gamma)
        self.buffer = ReplayBuffer(a.buffer_size, torch.Generator().manual_seed(cfg.seed))
        self.store = RunStore(self.out)
        self.episode = 0
        self.global_step = 0
        self.best_miou = -math.inf
        self.best_policy = copy.deepcopy(self.policy.state_dict())
        self.start_miou = self.reward_miou(self.theta_start)

    def reward_miou(self, model: torch.nn.Module) -> float:
        p = self.proto
        return mean_iou(evaluate(model, p.reward.images_u8, p.reward.masks, p.num_classes,
                                 p.ignore_index, self.cfg.train.eval_batch_size, self.cfg.device))

    # --- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        atomic_save({
            "episode": self.episode, "global_step": self.global_step,
            "policy": self.policy.state_dict(), "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "buffer": self.buffer.state_dict(), "best_miou": self.best_miou,
            "best_policy": self.best_policy,
        }, self.out / "agent_checkpoint.pt")
        chosen = self.policy if self.cfg.agent.mode == "faithful" else None
        qnet = chosen or _with_weights(build_qnet(self.spec), self.best_policy)
        save_policy(self.out / "policy.pt", qnet, self.spec, {
            "mode": self.cfg.agent.mode, "episodes": self.episode, "seed": self.cfg.seed,
            "dataset": self.cfg.data.dataset, "preset": self.cfg.preset,
            "best_final_miou": self.best_miou, "git_revision": git_revision(),
            "selection": "last policy" if chosen is not None else "best episode D_R mIoU",
        })

    def restore(self) -> None:
        path = self.out / "agent_checkpoint.pt"
        if not path.exists():
            return
        ck = load_checkpoint(path)
        self.policy.load_state_dict(ck["policy"])
        self.target.load_state_dict(ck["target"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.buffer.load_state_dict(ck["buffer"])
        self.episode, self.global_step = ck["episode"], ck["global_step"]
        self.best_miou, self.best_policy = ck["best_miou"], ck["best_policy"]

    # --- one episode ------------------------------------------------------------------------
    def play_episode(self) -> dict:
        cfg, a, proto = self.cfg, self.cfg.agent, self.proto
        self.episode += 1
        ep = self.episode
        start = time.perf_counter()
        model = self.theta_start
        model.load_state_dict(self.start_state)
        seg_opt = make_optimizer(model, cfg.train.lr, cfg.train)
        seg_sched = torch.optim.lr_scheduler.ExponentialLR(seg_opt, cfg.train.lr_gamma)
        images = self.game_images
        pool = RegionPool(proto.grid, len(images))
        budget = min(a.episode_budget, pool.num_regions)
        oracle = Oracle(images.masks, proto.grid, proto.ignore_index, budget)
        past = 0.0 if a.mode == "faithful" else self.start_miou
        K = cfg.al.regions_per_step
        epsilon = epsilon_for(cfg, ep - 1, self.global_step)
        total_return, losses, t, miou = 0.0, [], 0, past

        def observe(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            g = torch.Generator().manual_seed(step_seed(cfg.seed, ep * 100003 + step, "pools"))
            n = min(K, budget - pool.num_labelled)
            pools = pool.sample_candidates(n, a.pool_size, g)
            dist = oracle.region_distributions(pool.labelled_ids(), proto.num_classes)
            state = observe_state(model, proto.state.images_u8, proto.grid, self.spec,
                                  cfg.train.eval_batch_size, cfg.device)
            feats = observe_pools(model, pools, images.images_u8, proto.grid, dist, self.spec,
                                  cfg.train.eval_batch_size, cfg.device)
            return pools, state, feats

        pools, state, feats = observe(1)
        while pool.num_labelled < budget:
            t += 1
            self.global_step += 1
            torch.manual_seed(step_seed(cfg.seed, ep * 100003 + t, "torch"))
            g = torch.Generator().manual_seed(step_seed(cfg.seed, ep * 100003 + t, "act"))
            if a.mode == "faithful":
                epsilon = epsilon_for(cfg, ep - 1, self.global_step - 1)
            actions = select_actions(self.policy, feats.to(cfg.device), state.to(cfg.device),
                                     epsilon, g)
            chosen = pools.gather(1, actions.unsqueeze(1)).squeeze(1)
            pool.label(chosen, t)
            oracle.label(chosen)
            data = LabelledData(images.images_u8, oracle.partial_masks, proto.grid,
                                proto.ignore_index)
            for _ in range(a.train_passes):  # more passes: a reward less of SGD noise
                train_pass(model, seg_opt, data, chosen, cfg.train, g, cfg.device)
            for _ in range(cfg.train.lr_steps_per_step):
                seg_sched.step()
            miou = self.reward_miou(model)
            reward = 100.0 * (miou - past)
            past = miou
            total_return += reward
            if pool.num_labelled < budget:
                next_pools, next_state, next_feats = observe(t + 1)
                # pool k at t pairs with pool k at t+1 (the authors' pairing); a shorter last
                # step reuses its pools cyclically
                pair = next_feats[torch.arange(feats.shape[0]) % next_feats.shape[0]]
                self.buffer.push_step(state, feats, actions, reward, next_state, pair)
            else:
                self.buffer.push_step(state, feats, actions, reward, None, None)
            if len(self.buffer) >= a.batch_size:
                losses.append(dqn_update(self.policy, self.target, self.optimizer,
                                         self.buffer.sample(a.batch_size), a.gamma))
            if a.mode == "faithful":
                self.scheduler.step()
            if t % a.target_sync == 0:
                sync_target(self.policy, self.target)
            if pool.num_labelled < budget:
                pools, state, feats = next_pools, next_state, next_feats
        dist = class_distribution(images.masks[pool.label_mask()], proto.num_classes,
                                  proto.ignore_index)
        row = {
            "episode": ep, "return": total_return, "final_miou": miou,
            "start_miou": self.start_miou, "epsilon": epsilon,
            "loss": sum(losses) / len(losses) if losses else None,
            "dqn_lr": self.optimizer.param_groups[0]["lr"], "labelled": pool.num_labelled,
            "class_entropy": distribution_entropy(dist), "wall": time.perf_counter() - start,
        }
        if miou > self.best_miou:
            self.best_miou = miou
            self.best_policy = copy.deepcopy(self.policy.state_dict())
        return row

    def run(self) -> dict:
        self.restore()
        a = self.cfg.agent
        bar = tqdm(total=a.episodes, initial=self.episode, desc="agent episodes",
                   disable=not self.progress)
        while self.episode < a.episodes:
            row = self.play_episode()
            self.store.add_episode(row)
            self.save()
            bar.update(1)
            bar.set_postfix(ret=f"{row['return']:.2f}", miou=f"{row['final_miou']:.3f}",
                            eps=f"{row['epsilon']:.2f}")
        bar.close()
        if self.episode == 0 or not (self.out / "policy.pt").exists():
            self.save()
        summary = {
            "mode": a.mode, "episodes": self.episode, "seed": self.cfg.seed,
            "dataset": self.cfg.data.dataset, "preset": self.cfg.preset,
            "start_miou": self.start_miou, "best_final_miou": self.best_miou,
            "git_revision": git_revision(), "episodes_log": self.store.episodes(),
            "policy": str(self.out / "policy.pt"),
        }
        atomic_write_text(json.dumps(summary, indent=2) + "\n", self.out / "agent.json")
        return summary


def _with_weights(net: torch.nn.Module, state: dict) -> torch.nn.Module:
    net.load_state_dict(state)
    return net


def train_agent(cfg: RunConfig, out: Path, resume: bool = False, progress: bool = True,
                proto: Protocol | None = None) -> dict:
    """Train (or resume) a query agent; writes ``policy.pt`` and ``agent.json`` in ``out``."""
    out = Path(out)
    cfg = open_run_dir(out, cfg, resume, "train-agent")
    set_threads(cfg)
    proto = proto or load_protocol(cfg.data, progress)
    trainer = AgentTrainer(cfg, out, proto, progress)
    try:
        return trainer.run()
    finally:
        trainer.store.close()


__all__ = ["AgentTrainer", "train_agent"]
