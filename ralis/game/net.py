"""The net game (the paper's): the whole segmentation network trains on the newest regions.

Each episode resets the network to its start weights; each step labels one region per pool,
trains ``agent.train_passes`` SGD passes over the K new regions (batches drawn by the step's
generator), steps the lr scheduler ``train.lr_steps_per_step`` times and pays 100 x the change
of D_R mIoU. Two options make the game less of a random walk (issue #21's "sane" net game):
``agent.net_regions=all`` trains each step on K regions drawn from *every* region labelled so
far (the same number of SGD iterations), and ``agent.net_freeze_bn=true`` keeps BatchNorm's
running statistics at the start model's. Their defaults are the paper's game, bit for bit.
``agent.mode=faithful`` measures the first step's change from 0 (the authors' code), the other
modes from the start model's D_R mIoU. The reward carries the SGD noise of those few
batches (measured by ``benchmarks/game_signal.py net``).
"""

from __future__ import annotations

import copy

import torch

from ralis.config import RunConfig
from ralis.data.pool import RegionPool
from ralis.data.protocol import ImageSet, Protocol
from ralis.game.base import GAMES, SPLIT_ROLES, Observation, episode_copy
from ralis.game.candidates import candidate_images, view_candidates
from ralis.metrics import mean_iou
from ralis.models.inference import predict
from ralis.rl.observe import FeatureSpec, observe_state
from ralis.run.session import step_seed
from ralis.training.oracle import Oracle
from ralis.training.train import LabelledData, evaluate, make_optimizer, train_pass

__all__ = ["NetGame"]


class NetGame:
    """The net game over ``game_images`` from ``start_model`` (whose weights every episode
    starts from). ``seed`` and the episode number fix the candidate pools."""

    name = "net"

    def __init__(self, cfg: RunConfig, proto: Protocol, start_model: torch.nn.Module,
                 start_images: ImageSet, game_images: ImageSet, spec: FeatureSpec,
                 seed: int) -> None:
        self.cfg, self.proto, self.spec, self.seed = cfg, proto, spec, seed
        self.model = start_model
        self.start_state = copy.deepcopy(start_model.state_dict())
        self.images = game_images
        self.regions = proto.regions_of(game_images)
        self.budget = min(cfg.agent.episode_budget,
                          RegionPool(self.regions, len(game_images)).total_units)
        self.start_score = self.score("reward")
        self.last: dict = {}
        self.reset(0)

    def reset(self, episode: int) -> None:
        cfg = self.cfg
        self.episode, self.step = episode, 0
        self.model.load_state_dict(self.start_state)
        self.optimizer = make_optimizer(self.model, cfg.train.lr, cfg.train)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer,
                                                                cfg.train.lr_gamma)
        self.pool = RegionPool(self.regions, len(self.images))
        self.oracle = Oracle(self.images.masks, self.regions, self.proto.ignore_index,
                             self.budget, cfg.al.labelling, self.proto.num_classes)
        self.past = 0.0 if cfg.agent.mode == "faithful" else self.start_score

    def observe(self) -> Observation | None:
        if self.pool.spent(self.budget):
            return None
        cfg, proto, step = self.cfg, self.proto, self.step + 1
        g = torch.Generator().manual_seed(
            step_seed(self.seed, self.episode * 100003 + step, "pools"))
        n = min(cfg.al.regions_per_step, self.pool.regions_for(self.budget - self.pool.units()))
        pools = self.pool.sample_candidates(n, cfg.agent.pool_size, g)
        labelled = self.pool.labelled_ids()
        images, row_of = candidate_images(pools, self.regions.per_image)
        pred = predict(self.model, self.images.images_u8[images], cfg.train.eval_batch_size,
                       cfg.device)
        truth = torch.as_tensor(self.images.masks[images]).long()
        return view_candidates(step, pools, pred, images, row_of, truth, self.regions,
                               lambda: self.oracle.region_distributions(labelled,
                                                                        proto.num_classes),
                               self.labelled_distribution(), self._state(), self.spec,
                               proto.ignore_index)

    def _state(self) -> torch.Tensor:
        cfg, proto = self.cfg, self.proto
        return observe_state(self.model, proto.state.images_u8, proto.regions_of(proto.state),
                             self.spec, cfg.train.eval_batch_size, cfg.device)

    def play(self, chosen: torch.Tensor, generator: torch.Generator) -> float:
        cfg = self.cfg
        self.step += 1
        self.pool.label(chosen, self.step)
        self.oracle.label(chosen)
        data = LabelledData(self.images.images_u8, self.oracle.partial_masks, self.regions,
                            self.proto.ignore_index)
        ids = chosen
        if cfg.agent.net_regions == "all":  # K of everything labelled so far, the new included
            every = self.pool.labelled_ids()
            ids = every[torch.randperm(every.numel(), generator=generator)[: chosen.numel()]]
        for _ in range(cfg.agent.train_passes):  # more passes: a reward less of SGD noise
            train_pass(self.model, self.optimizer, data, ids, cfg.train, generator,
                       cfg.device, hint=f"train.lr={cfg.train.lr:g}",
                       freeze_bn=cfg.agent.net_freeze_bn)
        for _ in range(cfg.train.lr_steps_per_step):
            self.scheduler.step()
        miou = self.score("reward")
        reward = 100.0 * (miou - self.past)
        self.past = miou
        self.last = {"reward_miou": miou}
        return reward

    def score(self, role: str) -> float:
        if role not in SPLIT_ROLES:
            raise ValueError(f"unknown split role {role!r}; valid: {', '.join(SPLIT_ROLES)}")
        p, t = self.proto, self.cfg.train
        images = {"reward": p.reward, "test": p.test,
                  "selection": p.selection or p.reward}[role]
        return mean_iou(evaluate(self.model, images.images_u8, images.masks, p.num_classes,
                                 p.ignore_index, t.eval_batch_size, self.cfg.device, t.amp))

    def snapshot(self) -> tuple:
        """The episode's state: weights, optimiser, scheduler, labels (:meth:`restore`)."""
        return (episode_copy((self.model.state_dict(), self.optimizer.state_dict(),
                              self.scheduler.state_dict()), None),
                episode_copy((self.pool, self.oracle, self.step, self.past, self.last),
                             self.images.masks))

    def restore(self, snap: tuple) -> None:
        (weights, opt, sched), state = snap
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(episode_copy(opt, None))
        self.scheduler.load_state_dict(sched)
        (self.pool, self.oracle, self.step, self.past,
         self.last) = episode_copy(state, self.images.masks)

    def labelled_distribution(self) -> torch.Tensor:
        return self.oracle.labelled_distribution(self.proto.num_classes)

    def labelled_count(self) -> int:
        return self.pool.num_labelled


GAMES.register("net")(NetGame)
