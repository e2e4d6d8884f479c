"""The typed, frozen run configuration: one dataclass per section, every field with a one-line
comment. The resolved config is saved as ``config.json`` beside every run
(:func:`ralis.config.io.save_config`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


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
    mode: str = "fixed"  # learner: "faithful", "fixed" (the paper's DQN), "credit", "search",
    # "imitation"
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
    net_regions: str = "new"  # net game: each step trains on the K "new" regions (authors) or
    # on K drawn from "all" regions labelled so far (the same SGD iterations)
    net_freeze_bn: bool = False  # net game: BatchNorm statistics frozen during the game
    start_from: str = "state"  # start model trained on D_S ("state") or half of D_T ("dt-half")
    game: str = "net"  # the labelling game: "net" (the paper's SGD game) or "head" (ralis.game)
    head_l2: float = 1e-2  # head game: L2 penalty of the logistic-regression head
    head_sample: int = 10000  # head game: labelled start-set pixels every fit keeps
    head_iterations: int = 30  # head game: L-BFGS iterations of each step's refit
    head_stride: int = 2  # head game: fits read every head_stride-th feature pixel per direction
    heldout_seeds: int = 4  # fixed/credit/search: held-out selection episodes choose the policy
    heldout_every: int = 10  # fixed/credit: judge the policy on them every this many episodes
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
    imitation_beta: float = 0.5  # imitation: expert share in episode i is imitation_beta**(i-1)
    imitation_expert: str = "oracle"  # imitation: "oracle" (worst-predicted candidate) or
    # "lookahead" (largest predicted drop of D_R's loss; head game)


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


AGENT_MODES = ("faithful", "fixed", "credit", "search", "imitation")
IMITATION_EXPERTS = ("oracle", "lookahead")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def flatten_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> ``{"section.field": value}`` (tuples as lists)."""
    flat: dict = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat
