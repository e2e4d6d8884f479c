"""Named presets: functions of nothing that return a :class:`~ralis.config.schema.RunConfig`
(``get_preset("camvid-cpu")``), one registry with errors listing the valid names."""

from __future__ import annotations

import typing
from dataclasses import replace

from ralis.config.schema import (
    AgentConfig,
    ALConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from ralis.registry import Registry

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
    """CamVid 180x240, regions 45x40, FPN on the ImageNet EfficientNet-Lite0 encoder
    (``fpn_effl0``: θ0 test mIoU 42-45 against 28-35 for the small net from scratch, at ~3x the
    training cost; docs/results/backbones), 2 CPU cores; θ0 to convergence (patience 30); a
    budget's final training restarts from θ0 on D_T + its regions (lr 1e-2 cosine, 20 x 256 crops):
    not below θ0 in expectation (0.4: train.final_from=al, see benchmarks/camvid_cpu_grid.sh).
    The versioned presets (-v2 to -v6) keep the small net their published results used."""
    return RunConfig(
        preset="camvid-cpu",
        data=DataConfig(dataset="camvid", resolution=(180, 240), region_size=(45, 40),
                        state_images=10, dqn_train_images=100),
        model=ModelConfig(name="fpn_effl0"),
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
    cfg = _camvid_cpu()  # camvid-cpu 0.4's θ0 recipe: 80 epochs, patience 10, the small net
    return replace(cfg, preset="camvid-cpu-v2", model=ModelConfig(name="fpn_small"),
                   train=replace(cfg.train, pretrain_epochs=80,
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
    test is only reported. The agent plays the head game (``ralis.game.head``) and learns by
    episode-level search from entropy (3 generations of 8 members x 4 paired seeds), the design
    that did best on the selection split among those handed out on held-out episodes
    (docs/results/agent-v6/NOTES.md)."""
    cfg = _camvid_cpu_v5()
    return replace(cfg, preset="camvid-cpu-v6",
                   data=replace(cfg.data, train_split="train-dr", reward_split="dr",
                                selection_split="val"),
                   agent=replace(cfg.agent, game="head", mode="search", episodes=3,
                                 search_population=8, search_seeds=4))


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
