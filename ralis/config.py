"""Typed, frozen run configuration, named presets, JSON round trip and ``--set`` overrides.

Every field has a one-line comment; the resolved config is saved as ``config.json`` beside
every run. Presets are functions of nothing: ``get_preset("camvid-cpu")``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from ralis.errors import ConfigError
from ralis.registry import Registry


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "synthetic"  # dataset registry name: camvid, cityscapes, folder, synthetic
    root: str | None = None  # dataset root (or description file for `folder`); None = default
    resolution: tuple[int, int] | None = None  # working (H, W); None = native size
    region_size: tuple[int, int] = (30, 40)  # region (h, w) in pixels at the working resolution
    regions: str = "rect"  # region kind: "rect" (a grid of region_size boxes) or "slic"
    superpixels: int | None = None  # slic: SLIC segments per image, about (None: the grid's R)
    slic_compactness: float = 10.0  # slic: colour vs space trade-off of SLIC (higher: squarer)
    state_images: int = 10  # |D_S|: images whose regions form the RL state
    dqn_train_images: int = 100  # |D_T|: labelled start set (θ0 pretraining, DQN training)
    pool_images: int | None = None  # |D_V|: unlabelled pool (None = the rest of train)
    train_split: str = "train"  # split the state set, D_T and the pool are drawn from
    reward_split: str = "val"  # D_R: reward, per-step logging, early stopping
    test_split: str = "test"  # reported numbers
    selection_split: str | None = None  # agent designs and policies are chosen here (None: D_R)
    split_seed: int = 0  # seed of the D_S / D_T / D_V split (fixed across AL seeds)
    synthetic_images: tuple[int, int, int] = (120, 30, 40)  # synthetic train/val/test sizes
    max_void_fraction: float = 0.5  # refuse a split whose masks are more void (ignore) than this
    allow_missing_classes: bool = False  # accept classes that never occur in D_R or the test split
    allow_same_reward_test: bool = False  # accept D_R and the test split sharing images
    allow_train_overlap: bool = False  # accept the train split sharing images with D_R or test
    storage: str = "auto"  # "memory", "disk" (decoded once into a cache, read lazily) or "auto"
    cache_dir: str | None = None  # disk cache folder (None: $RALIS_CACHE_DIR or ~/.cache/ralis)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "fpn_small"  # model registry name
    dropout_p: float = 0.5  # MC-dropout probability before the classifier (BALD only)
    encoder_weights: str | None = None  # None: the model's (fpn_effl0: ImageNet), none, or PATH


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-3  # SGD lr of the segmentation net in the AL loop and final training
    pretrain_lr: float = 5e-4  # SGD lr of θ0 pretraining and the upper bound
    momentum: float = 0.95  # SGD momentum
    weight_decay: float = 1e-4  # SGD weight decay
    grad_clip: float = 4.0  # gradient-norm clip
    lr_gamma: float = 0.998  # exponential lr decay per AL step / epoch
    lr_steps_per_step: int = 2  # scheduler steps per AL step (the authors' code steps twice)
    batch_size: int = 32  # crops per SGD step
    crop_size: tuple[int, int] = (112, 112)  # training crop (h, w), always containing the region
    eval_batch_size: int = 16  # images per inference batch
    pretrain_epochs: int = 60  # max epochs of θ0 pretraining and the upper bound
    pretrain_patience: int = 10  # early-stopping patience (epochs) for those
    final_lr: float | None = None  # lr of the final training (None = continue the AL-phase lr)
    final_from: str = "al"  # final training starts from the AL-phase model ("al") or θ0 ("start")
    final_with_start_set: bool = False  # final training also uses D_T's full labels
    final_samples_per_epoch: int | None = None  # crops per final-training epoch (None = 1/image)
    final_schedule: str = "exponential"  # final lr: "exponential" (lr_gamma) or "cosine" to 0
    final_epochs: int = 40  # max epochs of the final training at each budget
    final_patience: int = 8  # early-stopping patience of the final training
    val_every: int = 1  # validate every this many epochs in pretraining/final training
    iters_per_epoch: int | None = None  # cap on SGD steps per epoch (None = one pass)
    samples_per_epoch: int | None = None  # crops per epoch (None = one per labelled image)
    amp: bool = False  # bf16 autocast (mixed precision) in training and inference


@dataclass(frozen=True)
class ALConfig:
    regions_per_step: int = 24  # K: regions labelled per step (one per pool)
    pool_sizes: dict[str, int] = field(
        default_factory=lambda: {"random": 50, "entropy": 10, "bald": 10, "ralis": 10}
    )  # N per strategy: candidate regions per pool
    default_pool_size: int = 10  # N for strategies not listed in pool_sizes
    budgets: tuple[int, ...] = (480, 720, 960, 1200, 1440, 1920)  # labelled-region budgets
    mc_samples: int = 20  # T: MC-dropout samples for BALD
    mc_full_resolution: bool = False  # BALD samples at full resolution (authors) or 1/4 (fast)
    eval_every: int = 1  # evaluate on D_R every this many AL steps (0 = never)
    train_on_new_only: bool = True  # one pass on the K new regions per step (authors' setting)
    labelling: str = "full"  # "full" (every pixel) or "dominant" (a region gets its majority class)


@dataclass(frozen=True)
class AgentConfig:
    mode: str = "fixed"  # learner: "faithful", "fixed" (the paper's DQN), "credit", "search"
    episodes: int = 100  # training episodes (search: generations)
    episode_budget: int = 480  # regions labelled per episode on D_T
    pool_size: int = 20  # N during DQN training
    buffer_size: int = 600  # replay capacity (transitions = pools)
    batch_size: int = 16  # DQN minibatch
    lr: float = 1e-3  # DQN lr
    lr_gamma: float = 0.97  # DQN lr decay per AL step (faithful mode only)
    weight_decay: float = 1e-3  # DQN weight decay
    gamma: float = 0.999  # discount
    target_sync: int = 5  # steps between target-network syncs
    eps_start: float = 0.9  # ε at the start
    eps_end: float = 0.05  # final ε
    eps_decay: float = 10.0  # faithful: e-folding in AL steps; fixed: linear over this many episodes
    kl_bins: int = 32  # bins of each KL histogram
    kl_mode: str = "adaptive"  # "adaptive" (per-candidate min-max, authors) or "fixed" range
    kl_range: tuple[float, float] = (0.0, 10.0)  # range of the fixed mode
    poolings: tuple[str, ...] = ("min", "mean", "max")  # entropy poolings of the features
    use_kl: bool = True  # include the two KL histograms (the gate) in the action
    normalize_hist: bool = False  # class histograms as fractions (paper) or raw counts (code)
    start_images: int = 10  # D_S images that train the agent's start model (stands in for GTA)
    train_passes: int = 1  # SGD passes over the K new regions per game step (authors: 1)
    start_from: str = "state"  # start model trained on D_S ("state") or half of D_T ("dt-half")
    game: str = "net"  # the labelling game: "net" (the paper's SGD game) or "head" (ralis.game)
    head_l2: float = 1e-2  # head game: L2 penalty of the logistic-regression head
    head_sample: int = 10000  # head game: labelled start-set pixels every fit keeps
    head_iterations: int = 30  # head game: L-BFGS iterations of each step's refit
    head_stride: int = 2  # head game: fits read every head_stride-th feature pixel per direction
    heldout_seeds: int = 4  # credit/search: held-out selection episodes that choose the policy
    heldout_every: int = 10  # credit: judge the policy on them every this many episodes
    residual_hidden: int = 64  # credit: hidden units of the entropy-started scorer's residual
    updates_per_step: int = 4  # credit: minibatch updates per game step
    grad_clip: float = 10.0  # credit: gradient-norm clip of the scorer
    target_clip: float = 5.0  # credit: value targets clipped to +-this (reward-SD units)
    search_population: int = 10  # search: weight vectors per generation (the mean first)
    search_seeds: int = 3  # search: paired training episodes per member and generation
    search_elite: float = 0.3  # search: share of the population the Gaussian moves toward
    search_smoothing: float = 0.7  # search: step of the Gaussian toward the elite
    search_sigma: float = 0.3  # search: the Gaussian's starting SD per descriptor weight
    head_start_iterations: int = 200  # head game: L-BFGS iterations of the start head


@dataclass(frozen=True)
class RunConfig:
    preset: str = "synthetic-tiny"  # preset the config started from
    seed: int = 0  # seed of the AL run (candidate pools, training order, dropout)
    device: str = "cpu"  # torch device
    threads: int | None = None  # torch threads (None = torch default)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    al: ALConfig = field(default_factory=ALConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)

    def pool_size(self, strategy: str) -> int:
        return self.al.pool_sizes.get(strategy, self.al.default_pool_size)


AGENT_MODES = ("faithful", "fixed", "credit", "search")

# ----------------------------------------------------------------------------------- presets
PRESETS: Registry[typing.Callable[[], RunConfig]] = Registry("preset")


@PRESETS.register("synthetic-tiny")
def _synthetic_tiny() -> RunConfig:
    """Seconds-scale runs for tests: 48x64 synthetic images, 12 regions each."""
    return RunConfig(
        preset="synthetic-tiny",
        data=DataConfig(
            dataset="synthetic", resolution=(48, 64), region_size=(16, 16), state_images=2,
            dqn_train_images=6, pool_images=12, synthetic_images=(20, 14, 6),
        ),
        model=ModelConfig(name="fpn_small"),
        train=TrainConfig(
            lr=0.01, pretrain_lr=0.01, batch_size=8, crop_size=(32, 32), eval_batch_size=8,
            pretrain_epochs=3, pretrain_patience=2, final_epochs=2, final_patience=1,
        ),
        al=ALConfig(
            regions_per_step=4, pool_sizes={"random": 4, "entropy": 3, "bald": 3, "ralis": 3},
            default_pool_size=3, budgets=(8, 16), mc_samples=4,
        ),
        agent=AgentConfig(
            episodes=2, episode_budget=8, pool_size=3, buffer_size=32, batch_size=4, start_images=2,
        ),
    )


@PRESETS.register("synthetic-demo")
def _synthetic_demo() -> RunConfig:
    """The `ralis demo` job: 60x80 synthetic scenes, every model trained to convergence, a few
    minutes on 2 CPU cores.

    θ0 and the full-supervision bound train up to 100 epochs (lr 3e-2, patience 20). At each
    budget (5% and 50% of the pool's pixels) the final training restarts from θ0 on D_T plus
    the acquired regions (lr 3e-2 annealed to 0 over 40 epochs, the best epoch on D_R), so
    the models differ only in their labels. 48x48 crops see most of a 60x80 scene, which lets
    training converge within minutes; at 120x160 with 64x64 crops no model converged, and
    labels made no visible difference.
    """
    return RunConfig(
        preset="synthetic-demo",
        data=DataConfig(
            dataset="synthetic", resolution=(60, 80), region_size=(15, 20), state_images=4,
            dqn_train_images=6, pool_images=60, synthetic_images=(80, 40, 100),
        ),
        model=ModelConfig(name="fpn_small"),
        train=TrainConfig(
            lr=0.002, pretrain_lr=0.03, batch_size=16, crop_size=(48, 48), pretrain_epochs=100,
            pretrain_patience=20, samples_per_epoch=160, final_from="start", final_lr=0.03,
            final_schedule="cosine", final_epochs=40, final_patience=40,
            final_samples_per_epoch=160, final_with_start_set=True,
        ),
        al=ALConfig(
            regions_per_step=24, pool_sizes={"random": 10, "entropy": 10, "bald": 10, "ralis": 10},
            budgets=(48, 480), mc_samples=10, eval_every=4,
        ),
        agent=AgentConfig(episodes=4, episode_budget=48, pool_size=10, start_images=4),
    )


@PRESETS.register("camvid-cpu")
def _camvid_cpu() -> RunConfig:
    """CamVid 180x240, regions 45x40, small FPN, 2 CPU cores; θ0 to convergence (patience 30); a
    budget's final training restarts from θ0 on D_T + its regions (lr 1e-2 cosine, 20 x 256 crops):
    not below θ0 in expectation (0.4: train.final_from=al, see benchmarks/camvid_cpu_grid.sh)."""
    return RunConfig(
        preset="camvid-cpu",
        data=DataConfig(dataset="camvid", resolution=(180, 240), region_size=(45, 40),
                        state_images=10, dqn_train_images=100),
        model=ModelConfig(name="fpn_small"),
        train=TrainConfig(
            lr=1e-3, pretrain_lr=1e-2, batch_size=16, crop_size=(112, 112), pretrain_epochs=200,
            pretrain_patience=30, final_from="start", final_with_start_set=True, final_lr=1e-2,
            final_schedule="cosine", final_epochs=20, final_patience=20,
            final_samples_per_epoch=256, val_every=1),
        al=ALConfig(budgets=(480, 960, 1440, 1920), eval_every=5),
        agent=AgentConfig(episodes=10, episode_budget=480, eps_decay=7.0),
    )


@PRESETS.register("camvid-cpu-v2")
def _camvid_cpu_v2() -> RunConfig:
    """camvid-cpu 0.4 restarting from θ0 on the acquired regions only (lr 1e-2, cosine)."""
    cfg = _camvid_cpu()  # camvid-cpu 0.4's θ0 recipe: 80 epochs, patience 10
    return replace(cfg, preset="camvid-cpu-v2", train=replace(cfg.train, pretrain_epochs=80,
                   pretrain_patience=10, final_with_start_set=False))


@PRESETS.register("camvid-cpu-v3")
def _camvid_cpu_v3() -> RunConfig:
    """camvid-cpu-v2 with an agent whose game trains 4 passes per step (a less noisy reward)."""
    cfg = _camvid_cpu_v2()
    return replace(cfg, preset="camvid-cpu-v3", agent=replace(cfg.agent, train_passes=4))


@PRESETS.register("camvid-cpu-v4")
def _camvid_cpu_v4() -> RunConfig:
    """camvid-cpu-v3 whose game starts from a net trained on half of D_T, played on the other."""
    cfg = _camvid_cpu_v3()
    return replace(cfg, preset="camvid-cpu-v4", agent=replace(cfg.agent, start_from="dt-half"))


@PRESETS.register("camvid-cpu-v5")
def _camvid_cpu_v5() -> RunConfig:
    """camvid-cpu-v4 with the paper's 100 DQN episodes (ε linear over the first 50) and budgets
    of 7.8 / 15.6 / 31% of the pool's pixels (480 / 960 / 1920 regions of 45x40)."""
    cfg = _camvid_cpu_v4()
    return replace(cfg, preset="camvid-cpu-v5", al=replace(cfg.al, budgets=(480, 960, 1920)),
                   agent=replace(cfg.agent, episodes=100, eps_decay=50.0))


@PRESETS.register("camvid-cpu-v6")
def _camvid_cpu_v6() -> RunConfig:
    """camvid-cpu-v5 with three roles in three splits: D_R (reward, per-step logging, early
    stopping) = ``dr``, 52 train images from every train sequence, kept out of D_S, D_T and the
    pool; CamVid val chooses agent designs and policies (and stops the agent's start model);
    test is only reported. The agent plays the head game (``ralis.game.head``)."""
    cfg = _camvid_cpu_v5()
    return replace(cfg, preset="camvid-cpu-v6",
                   data=replace(cfg.data, train_split="train-dr", reward_split="dr",
                                selection_split="val"),
                   agent=replace(cfg.agent, game="head"))


@PRESETS.register("camvid-cpu-v6-val")
def _camvid_cpu_v6_val() -> RunConfig:
    """camvid-cpu-v6 with the paper's reward split, CamVid val (one sequence, 0016E5), and the
    carved ``dr`` as the selection split: the same D_S, D_T and pool, the faithful choice."""
    cfg = _camvid_cpu_v6()
    return replace(cfg, preset="camvid-cpu-v6-val",
                   data=replace(cfg.data, reward_split="val", selection_split="dr"))


@PRESETS.register("camvid-paper")
def _camvid_paper() -> RunConfig:
    """The paper's CamVid protocol: full resolution, FPN-ResNet-50, its budgets and pools (GPU)."""
    return RunConfig(
        preset="camvid-paper",
        device="cuda",
        data=DataConfig(
            dataset="camvid", resolution=(360, 480), region_size=(90, 80), state_images=10,
            dqn_train_images=100,
        ),
        model=ModelConfig(name="fpn_resnet50"),
        train=TrainConfig(
            lr=1e-3, pretrain_lr=5e-4, batch_size=32, crop_size=(224, 224), eval_batch_size=4,
            pretrain_epochs=1500, pretrain_patience=30, final_epochs=1000, final_patience=150,
        ),
        al=ALConfig(budgets=(480, 720, 960, 1200, 1440, 1920), eval_every=1,
                    mc_full_resolution=True),
        agent=AgentConfig(episodes=100, episode_budget=480, lr=1e-3),
    )


@PRESETS.register("cityscapes")
def _cityscapes() -> RunConfig:
    """The paper's Cityscapes protocol (GPU): 1024x2048, regions 128x128 (128 per image), D_S 10,
    D_T 150, D_R = 200 train images (split ``dr``), the pool = the rest of train, Cityscapes val
    (500) as the test set; FPN-ResNet-50, K = 256, pools U 500 / H 200 / B 200 / RALIS 100,
    budgets 1,920 .. 30,720, lr 1e-4 (f and DQN), 50 agent episodes of 3,840 regions."""
    return RunConfig(
        preset="cityscapes",
        device="cuda",
        data=DataConfig(
            dataset="cityscapes", resolution=(1024, 2048), region_size=(128, 128),
            state_images=10, dqn_train_images=150, train_split="train-dr", reward_split="dr",
            test_split="val",
        ),
        model=ModelConfig(name="fpn_resnet50"),
        train=TrainConfig(
            lr=1e-4, pretrain_lr=1e-4, batch_size=16, crop_size=(256, 512), eval_batch_size=1,
            pretrain_epochs=1500, pretrain_patience=50, final_epochs=1000, final_patience=150,
        ),
        al=ALConfig(
            regions_per_step=256,
            pool_sizes={"random": 500, "entropy": 200, "bald": 200, "ralis": 100},
            budgets=(1920, 3840, 7680, 11520, 19200, 30720), eval_every=1,
            mc_full_resolution=True,
        ),
        agent=AgentConfig(episodes=50, episode_budget=3840, pool_size=20, buffer_size=3200,
                          lr=1e-4),
    )


def get_preset(name: str) -> RunConfig:
    return PRESETS.get(name)()


# ---------------------------------------------------------------------------- validation
def validate(cfg: RunConfig) -> RunConfig:
    """Raise ConfigError on values that cannot work; return cfg unchanged otherwise."""
    checks: list[tuple[bool, str]] = [
        (cfg.al.regions_per_step >= 1, "al.regions_per_step must be >= 1"),
        (all(n >= 1 for n in cfg.al.pool_sizes.values()) and cfg.al.default_pool_size >= 1,
         "pool sizes must be >= 1"),
        (len(cfg.al.budgets) > 0 and all(b >= 1 for b in cfg.al.budgets),
         "budgets must be positive region counts, e.g. --budgets 480,960"),
        (list(cfg.al.budgets) == sorted(set(cfg.al.budgets)),
         "budgets must be increasing and distinct, e.g. --budgets 480,960,1440"),
        (cfg.al.mc_samples >= 2, "al.mc_samples (BALD's T) must be >= 2"),
        (cfg.al.eval_every >= 0, "al.eval_every must be >= 0"),
        (cfg.data.storage in ("auto", "memory", "disk"),
         "data.storage must be auto, memory or disk"),
        (cfg.train.lr > 0 and cfg.train.pretrain_lr > 0, "learning rates must be > 0"),
        (cfg.train.batch_size >= 1 and cfg.train.eval_batch_size >= 1, "batch sizes must be >= 1"),
        (0 < cfg.train.lr_gamma <= 1, "train.lr_gamma must be in (0, 1]"),
        (min(cfg.train.crop_size) >= 8, "train.crop_size must be at least 8x8"),
        (cfg.train.pretrain_epochs >= 1 and cfg.train.final_epochs >= 0, "epochs must be >= 1"),
        (cfg.train.val_every >= 1, "train.val_every must be >= 1"),
        (cfg.train.samples_per_epoch is None or cfg.train.samples_per_epoch >= 1,
         "train.samples_per_epoch must be >= 1"),
        (cfg.train.final_samples_per_epoch is None or cfg.train.final_samples_per_epoch >= 1,
         "train.final_samples_per_epoch must be >= 1"),
        (cfg.train.final_from in ("al", "start"), "train.final_from must be 'al' or 'start'"),
        (cfg.train.final_schedule in ("exponential", "cosine"),
         "train.final_schedule must be 'exponential' or 'cosine'"),
        (cfg.train.final_lr is None or cfg.train.final_lr > 0, "train.final_lr must be > 0"),
        (0 <= cfg.model.dropout_p < 1, "model.dropout_p must be in [0, 1)"),
        (cfg.data.state_images >= 1 and cfg.data.dqn_train_images >= 1,
         "data.state_images and data.dqn_train_images must be >= 1"),
        (0 < cfg.data.max_void_fraction <= 1, "data.max_void_fraction must be in (0, 1]"),
        (cfg.data.resolution is None or all(0 < s <= 16384 for s in cfg.data.resolution),
         "data.resolution (--resolution HxW) must have sides 1..16384, e.g. 240x320"),
        (all(s > 0 for s in cfg.data.region_size),
         "data.region_size (--region-size hxw) must have positive sides, e.g. 30x40"),
        (cfg.data.regions in ("rect", "slic"),
         f"data.regions (--regions) must be rect or slic, got {cfg.data.regions!r}"),
        (cfg.data.superpixels is None or 1 <= cfg.data.superpixels <= 30000,
         "data.superpixels must be 1..30000 segments per image, e.g. --set data.superpixels=24"),
        (cfg.data.slic_compactness > 0, "data.slic_compactness must be > 0, e.g. 10"),
        (cfg.al.labelling in ("full", "dominant"),
         f"al.labelling must be full or dominant, got {cfg.al.labelling!r}"),
        (not (cfg.al.labelling == "dominant" and cfg.data.regions != "slic"),
         "al.labelling=dominant labels superpixels with one click; use it with --regions slic"),
        (not (cfg.data.root and cfg.data.dataset == "synthetic"),
         "--data-root is not read by the synthetic dataset; add --dataset folder (or camvid, "
         "cityscapes) to train on your data"),
        (cfg.agent.mode in AGENT_MODES,
         f"agent.mode must be one of {', '.join(AGENT_MODES)}, got {cfg.agent.mode!r}"),
        (min(cfg.agent.heldout_seeds, cfg.agent.heldout_every, cfg.agent.updates_per_step,
             cfg.agent.search_population, cfg.agent.search_seeds) >= 1
         and cfg.agent.residual_hidden >= 0,
         "agent.heldout_seeds, heldout_every, updates_per_step, search_population and "
         "search_seeds must be >= 1 and agent.residual_hidden >= 0"),
        (cfg.agent.grad_clip > 0 and cfg.agent.target_clip > 0 and cfg.agent.search_sigma > 0
         and 0 < cfg.agent.search_elite <= 1 and 0 < cfg.agent.search_smoothing <= 1,
         "agent.grad_clip, target_clip and search_sigma must be > 0, search_elite and "
         "search_smoothing in (0, 1]"),
        (cfg.agent.kl_mode in ("adaptive", "fixed"), "agent.kl_mode must be 'adaptive' or 'fixed'"),
        (cfg.agent.train_passes >= 1, "agent.train_passes must be >= 1"),
        (cfg.agent.game in ("net", "head"), "agent.game must be 'net' or 'head'"),
        (cfg.agent.head_l2 > 0 and cfg.agent.head_sample >= 1 and cfg.agent.head_iterations >= 1
         and cfg.agent.head_start_iterations >= 1 and cfg.agent.head_stride >= 1,
         "agent.head_l2 must be > 0 and agent.head_sample / head_iterations / "
         "head_start_iterations >= 1"),
        (cfg.agent.start_from in ("state", "dt-half"),
         "agent.start_from must be 'state' or 'dt-half'"),
        (cfg.agent.episodes >= 1 and cfg.agent.episode_budget >= 1,
         "agent.episodes and agent.episode_budget must be >= 1"),
        (0 <= cfg.agent.gamma <= 1, "agent.gamma must be in [0, 1]"),
        (cfg.agent.target_sync >= 1, "agent.target_sync must be >= 1"),
        (cfg.agent.batch_size >= 2, "agent.batch_size must be >= 2 (BatchNorm needs two samples)"),
        (cfg.agent.buffer_size >= cfg.agent.batch_size,
         "agent.buffer_size must be at least agent.batch_size"),
        (cfg.agent.kl_bins >= 1 and cfg.agent.pool_size >= 1 and cfg.agent.start_images >= 1,
         "agent.kl_bins, agent.pool_size and agent.start_images must be >= 1"),
        (cfg.agent.lr > 0 and 0 < cfg.agent.lr_gamma <= 1, "agent.lr must be > 0 and "
         "agent.lr_gamma in (0, 1]"),
        (set(cfg.agent.poolings) <= {"min", "mean", "max"} and len(cfg.agent.poolings) > 0,
         "agent.poolings must be a non-empty subset of min, mean, max"),
        (cfg.seed >= 0, "seed must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    for name, value in flatten_config(to_dict(cfg)).items():
        items = value if isinstance(value, list) else [value]
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v}")
    return cfg


# ------------------------------------------------------------------------------ JSON I/O
def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Turn a JSON/CLI value into the field's declared type (tuples, optionals, dicts)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, __import__("types").UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("x", ",").split(",") if v.strip()]
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where} needs {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if isinstance(value, str):
            pairs = [kv.split(":") for kv in value.split(",") if kv.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ConfigError(f"{where} expects name:value pairs, e.g. random:50,entropy:10; "
                                  f"got {value!r}")
            value = {k.strip(): v.strip() for k, v in pairs}
        if not isinstance(value, dict):
            raise ConfigError(f"{where} expects a mapping, e.g. random:50,entropy:10")
        return {str(k): _coerce(args[1], v, where) for k, v in value.items()}
    try:
        if tp is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return tp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: cannot read {value!r} as {tp.__name__}") from None


def from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {where} fields {sorted(unknown)}; valid: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def save_config(cfg: RunConfig, path: Path) -> None:
    from ralis.files.atomic import atomic_write_text

    atomic_write_text(json.dumps(to_dict(cfg), indent=2) + "\n", Path(path))


def load_config(path: Path) -> RunConfig:
    try:
        return validate(from_dict(RunConfig, json.loads(Path(path).read_text())))
    except (OSError, ValueError, TypeError, RecursionError) as exc:
        raise ConfigError(f"cannot read config {path}: {str(exc)[:200]}") from None


def override(cfg: Any, dotted: str, value: Any) -> Any:
    """Return a copy with ``section.field`` (or ``field``) set to ``value`` (coerced to type)."""
    head, _, rest = dotted.partition(".")
    names = {f.name: f for f in fields(cfg)}
    if head not in names:
        raise ConfigError(f"unknown config field {dotted!r}; valid: {sorted(names)}")
    current = getattr(cfg, head)
    if rest and isinstance(current, dict):  # one entry of a mapping: al.pool_sizes.entropy=5
        hint = typing.get_type_hints(type(cfg))[head]
        value_type = typing.get_args(hint)[1]
        return replace(cfg, **{head: {**current, rest: _coerce(value_type, value, dotted)}})
    if rest:
        if not is_dataclass(current):
            raise ConfigError(f"config field {head!r} has no sub-field {rest!r}")
        return replace(cfg, **{head: override(current, rest, value)})
    hint = typing.get_type_hints(type(cfg))[head]
    return replace(cfg, **{head: _coerce(hint, value, dotted)})


def apply_overrides(cfg: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``--set section.field=value`` strings."""
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects section.field=value, got {item!r}")
        if value.startswith(("[", "{")) or value in ("null", "true", "false"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        cfg = override(cfg, key.strip(), value)
    return cfg


# ------------------------------------------------------------------------------ comparison
MACHINE_FIELDS = ("threads", "device", "data.storage", "data.cache_dir")
"""Where a run executes (and where its data lives) does not change what it computes."""


def flatten_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> ``{"section.field": value}`` (tuples as lists)."""
    flat: dict = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def config_diff(saved: RunConfig, wanted: RunConfig, ignore: tuple[str, ...] = ()
                ) -> list[tuple[str, Any, Any]]:
    """Fields that differ: ``[(field, saved value, wanted value)]`` sorted by field.

    ``ignore`` names fields or whole sections (``"seed"``, ``"al"``, ``"al.budgets"``).
    """
    a, b = flatten_config(to_dict(saved)), flatten_config(to_dict(wanted))
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
            if a.get(k) != b.get(k) and not any(k == p or k.startswith(p + ".") for p in ignore)]


def describe_diff(diff: list[tuple[str, Any, Any]], there: str = "stored",
                  here: str = "given") -> str:
    """``"seed: stored 20, given 5; train.lr: stored 0.001, given 0.01"``."""
    return "; ".join(f"{k}: {there} {a!r}, {here} {b!r}" for k, a, b in diff)
