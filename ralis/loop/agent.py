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
import math
import time
from pathlib import Path

import torch

from ralis.config import RunConfig
from ralis.data.pool import RegionPool
from ralis.data.protocol import ImageSet, Protocol, load_protocol
from ralis.errors import ConfigError, first_line
from ralis.files.record import data_record
from ralis.loop.divergence import blame, check_loss, check_weights
from ralis.loop.oracle import Oracle
from ralis.loop.pretrain import finished_model, record_model, save_trained, train_supervised
from ralis.loop.rundir import Run, RunDirError, has_run, open_run
from ralis.loop.session import set_threads, step_seed
from ralis.loop.train import LabelledData, evaluate, make_optimizer, train_pass
from ralis.metrics import distribution_entropy, mean_iou
from ralis.models import load_model
from ralis.progress import progress_bar
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


START_MODEL = "start_model.safetensors"
POLICY = "policy.safetensors"
CHECKPOINT = "agent_checkpoint.safetensors"


def start_model(cfg: RunConfig, proto: Protocol, run: Run, progress: bool) -> torch.nn.Module:
    """The episodes' start weights: a net that has never seen the game's labels.

    The paper uses a GTA-V-pretrained net; nothing can be downloaded here, so a net trained on
    the (labelled) state set D_S, or on half of D_T, stands in for it (:func:`game_split`).
    Saved once as ``start_model.safetensors`` (its training checkpoints every epoch).
    """
    path = finished_model(run, START_MODEL)
    if path is None:
        images, _ = game_split(cfg, proto)
        where = "half of D_T" if cfg.agent.start_from == "dt-half" else "D_S"
        model, metrics = train_supervised(cfg, proto, images, f"agent start model on {where}",
                                          progress, seed_offset=7919, run=run)
        path = save_trained(run.root / START_MODEL, cfg, proto, model, images, metrics,
                            "agent start model")
        record_model(run, path)
    model, _ = load_model(path)
    return model.to(cfg.device)


def epsilon_for(cfg: RunConfig, episode: int, global_step: int) -> float:
    a = cfg.agent
    if a.mode == "faithful":
        return epsilon_schedule(global_step, a.eps_start, a.eps_end, a.eps_decay)
    return linear_epsilon(episode, a.eps_start, a.eps_end, max(1, int(a.eps_decay)))


class AgentTrainer:
    """State of one agent training; :meth:`run` plays the remaining episodes, resumably."""

    def __init__(self, cfg: RunConfig, run: Run, proto: Protocol, progress: bool = True):
        self.cfg, self.out, self.proto, self.progress = cfg, run.root, proto, progress
        self.run_dir = run
        self.spec = FeatureSpec.from_config(cfg.agent, proto.num_classes,
                                            proto.regions_of(proto.state), len(proto.state))
        self.theta_start = start_model(cfg, proto, run, progress)
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
        self.store = run.store
        self.episode = 0
        self.global_step = 0
        self.best_miou = -math.inf
        self.best_policy = copy.deepcopy(self.policy.state_dict())
        self.start_miou = self.reward_miou(self.theta_start)

    def reward_miou(self, model: torch.nn.Module) -> float:
        p = self.proto
        return mean_iou(evaluate(model, p.reward.images_u8, p.reward.masks, p.num_classes,
                                 p.ignore_index, self.cfg.train.eval_batch_size, self.cfg.device,
                                 self.cfg.train.amp))

    # --- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        self.run_dir.save_checkpoint(CHECKPOINT, "agent-checkpoint", {
            "episode": self.episode, "global_step": self.global_step,
            "policy": self.policy.state_dict(), "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "buffer": self.buffer.state_dict(), "best_miou": self.best_miou,
            "best_policy": self.best_policy,
        }, {"episode": self.episode})
        self.write_policy()

    def _chosen(self) -> torch.nn.Module:
        """The policy this training hands out: the last one (faithful) or the best episode's."""
        if self.cfg.agent.mode == "faithful":
            return self.policy
        return _with_weights(build_qnet(self.spec), self.best_policy)

    def write_policy(self) -> None:
        qnet = self._chosen()
        save_policy(self.out / POLICY, qnet, self.spec, {
            **data_record(self.cfg, self.proto, game_split(self.cfg, self.proto)[1]),
            "mode": self.cfg.agent.mode, "episodes": self.episode, "seed": self.cfg.seed,
            "best_final_miou": self.best_miou, "start_from": self.cfg.agent.start_from,
            "run_id": self.run_dir.run_id,
            "selection": ("last policy" if self.cfg.agent.mode == "faithful"
                          else "best episode D_R mIoU"),
        })

    def policy_is_current(self) -> bool:
        """Whether ``policy.safetensors`` holds exactly what the checkpoint says it should (a
        crash between the checkpoint and the policy, or a file copied in, leaves it behind)."""
        from ralis.errors import RalisError
        from ralis.rl.policy import load_policy

        try:
            qnet, _, record = load_policy(self.out / POLICY)
        except RalisError:
            return False
        want = self._chosen().state_dict()
        have = qnet.state_dict()
        return (record.get("episodes") == self.episode
                and record.get("run_id") == self.run_dir.run_id
                and want.keys() == have.keys()
                and all(torch.equal(want[k].cpu(), have[k]) for k in want))

    def restore(self) -> None:
        found = self.run_dir.load_checkpoint(CHECKPOINT, "agent-checkpoint", "episode")
        logged = [e["episode"] for e in self.store.episodes()]
        if found is None:
            if max(logged, default=0) > 1:
                raise RunDirError(f"{self.out / CHECKPOINT} is missing but run.sqlite logs "
                                  f"{max(logged)} episodes; start over in a new --out")
            return
        ck, _ = found
        done = int(ck["episode"])
        if logged[:done] != list(range(1, done + 1)) or max(logged, default=0) > done + 1:
            raise RunDirError(f"{self.out / CHECKPOINT} is at episode {done} but run.sqlite logs "
                              f"episodes {logged[:3]}...{logged[-2:]}: the files of {self.out} "
                              "do not agree; start over in a new --out")
        try:
            self.policy.load_state_dict(ck["policy"])
            self.target.load_state_dict(ck["target"])
            self.optimizer.load_state_dict(ck["optimizer"])
            self.scheduler.load_state_dict(ck["scheduler"])
            self.buffer.load_state_dict(ck["buffer"])
            self.best_policy = {k: v for k, v in ck["best_policy"].items()}
            _with_weights(build_qnet(self.spec), self.best_policy)  # shapes checked
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            first = first_line(exc)
            raise RunDirError(f"{self.out / CHECKPOINT} does not fit this agent ({first}); "
                              "start over in a new --out") from None
        self.episode, self.global_step = done, int(ck["global_step"])
        self.best_miou = float(ck["best_miou"])

    # --- one episode ------------------------------------------------------------------------
    def play_episode(self) -> dict:
        with blame(f"train.lr={self.cfg.train.lr:g}"):
            return self._play_episode()

    def _play_episode(self) -> dict:
        cfg, a, proto = self.cfg, self.cfg.agent, self.proto
        self.episode += 1
        ep = self.episode
        start = time.perf_counter()
        model = self.theta_start
        model.load_state_dict(self.start_state)
        seg_opt = make_optimizer(model, cfg.train.lr, cfg.train)
        seg_sched = torch.optim.lr_scheduler.ExponentialLR(seg_opt, cfg.train.lr_gamma)
        images = self.game_images
        regions = proto.regions_of(images)
        pool = RegionPool(regions, len(images))
        budget = min(a.episode_budget, pool.total_units)  # in budget units (regions)
        oracle = Oracle(images.masks, regions, proto.ignore_index, budget, cfg.al.labelling,
                        proto.num_classes)
        past = 0.0 if a.mode == "faithful" else self.start_miou
        K = cfg.al.regions_per_step
        epsilon = epsilon_for(cfg, ep - 1, self.global_step)
        total_return, losses, t, miou = 0.0, [], 0, past

        def observe(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            g = torch.Generator().manual_seed(step_seed(cfg.seed, ep * 100003 + step, "pools"))
            n = min(K, pool.regions_for(budget - pool.units()))
            pools = pool.sample_candidates(n, a.pool_size, g)
            dist = oracle.region_distributions(pool.labelled_ids(), proto.num_classes)
            state = observe_state(model, proto.state.images_u8, proto.regions_of(proto.state),
                                  self.spec,
                                  cfg.train.eval_batch_size, cfg.device)
            feats = observe_pools(model, pools, images.images_u8, regions, dist, self.spec,
                                  cfg.train.eval_batch_size, cfg.device)
            return pools, state, feats

        pools, state, feats = observe(1)
        while not pool.spent(budget):
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
            data = LabelledData(images.images_u8, oracle.partial_masks, regions,
                                proto.ignore_index)
            for _ in range(a.train_passes):  # more passes: a reward less of SGD noise
                train_pass(model, seg_opt, data, chosen, cfg.train, g, cfg.device,
                           hint=f"train.lr={cfg.train.lr:g}")
            for _ in range(cfg.train.lr_steps_per_step):
                seg_sched.step()
            miou = self.reward_miou(model)
            reward = 100.0 * (miou - past)
            past = miou
            total_return += reward
            if not pool.spent(budget):
                next_pools, next_state, next_feats = observe(t + 1)
                # pool k at t pairs with pool k at t+1 (the authors' pairing); a shorter last
                # step reuses its pools cyclically
                pair = next_feats[torch.arange(feats.shape[0]) % next_feats.shape[0]]
                self.buffer.push_step(state, feats, actions, reward, next_state, pair)
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
            if not pool.spent(budget):
                pools, state, feats = next_pools, next_state, next_feats
        dist = oracle.labelled_distribution(proto.num_classes)
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
        bar = progress_bar(total=a.episodes, initial=self.episode, desc="agent episodes",
                           disable=not self.progress)
        while self.episode < a.episodes:
            row = self.play_episode()
            self.store.add_episode(row)
            self.save()
            bar.update(1)
            bar.set_postfix(ret=f"{row['return']:.2f}", miou=f"{row['final_miou']:.3f}",
                            eps=f"{row['epsilon']:.2f}")
        bar.close()
        if self.episode == 0:
            self.save()
        elif not self.policy_is_current():
            self.write_policy()
        summary = {
            "mode": a.mode, "episodes": self.episode, "seed": self.cfg.seed,
            "dataset": self.cfg.data.dataset, "preset": self.cfg.preset,
            "start_miou": self.start_miou, "best_final_miou": self.best_miou,
            "git_revision": self.store.computed_by(), "run_id": self.run_dir.run_id,
            "episodes_log": self.store.episodes(), "policy": str(self.out / POLICY),
        }
        self.run_dir.write_json("agent.json", summary)
        return summary


def _with_weights(net: torch.nn.Module, state: dict) -> torch.nn.Module:
    net.load_state_dict(state)
    return net


def train_agent(cfg: RunConfig, out: Path, resume: bool = False, progress: bool = True,
                proto: Protocol | None = None, given: list[str] | None = None,
                given_preset: str | None = None, ignore: tuple[str, ...] = ()) -> dict:
    """Train (or resume) a query agent; writes ``policy.safetensors`` and ``agent.json``."""
    if proto is None and not has_run(Path(out)):  # bad data fails before anything is written
        proto = load_protocol(cfg.data, progress)
    with open_run(Path(out), cfg, "train-agent", resume, given, given_preset, ignore) as run:
        cfg = run.cfg
        set_threads(cfg)
        proto = proto or load_protocol(cfg.data, progress)
        run.same_data(proto)
        trainer = AgentTrainer(cfg, run, proto, progress)
        return trainer.run()


__all__ = ["AgentTrainer", "train_agent"]
