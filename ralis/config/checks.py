"""Values that cannot work: :func:`validate` raises one :class:`~ralis.errors.ConfigError` saying
which field and what to give instead."""

from __future__ import annotations

import math

from ralis.config.schema import AGENT_MODES, IMITATION_EXPERTS, RunConfig, flatten_config, to_dict
from ralis.errors import ConfigError


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
         "data.region_size (--region-size HxW) must have positive sides, e.g. 30x40"),
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
        (0 <= cfg.agent.imitation_beta <= 1, "agent.imitation_beta must be in [0, 1]"),
        (cfg.agent.imitation_expert in IMITATION_EXPERTS,
         f"agent.imitation_expert must be one of {', '.join(IMITATION_EXPERTS)}, got "
         f"{cfg.agent.imitation_expert!r}"),
        (cfg.agent.imitation_expert != "lookahead" or cfg.agent.game == "head",
         "agent.imitation_expert=lookahead needs agent.game=head (the net game cannot look "
         "ahead)"),
        (cfg.agent.kl_mode in ("adaptive", "fixed"), "agent.kl_mode must be 'adaptive' or 'fixed'"),
        (cfg.agent.train_passes >= 1, "agent.train_passes must be >= 1"),
        (cfg.agent.net_regions in ("new", "all"), "agent.net_regions must be 'new' or 'all'"),
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
