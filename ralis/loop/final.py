"""The final training at a budget: train a copy to convergence, test it, check it against θ0.

At each budget of an AL run a copy of the network is trained to convergence on the labels
acquired so far (early stopping on D_R) and tested. Two numbers are reported per budget: the
test mIoU of the epoch D_R chooses (``miou``) and of the last epoch (``miou_last``), which does
not look at the small, noisy D_R set when the schedule is fixed (``train.final_patience >=
train.final_epochs``, as in the camvid-cpu presets). The chosen model is then compared with θ0
on D_R (:mod:`ralis.training.regression`): ``regressed`` says it ended below the model the run
started from by more than the validation noise.
"""

from __future__ import annotations

import copy
import time
import typing
from dataclasses import replace

import torch

from ralis.config import RunConfig
from ralis.data.pool import RegionPool
from ralis.data.protocol import ImageSet, Protocol
from ralis.metrics import distribution_entropy, iou_per_class, mean_iou
from ralis.run.session import step_seed
from ralis.training.oracle import Oracle
from ralis.training.regression import compare
from ralis.training.train import LabelledData, evaluate, fit, make_optimizer


class Simulation(typing.Protocol):
    """What the final training reads of an active-learning run: the attributes of
    :class:`ralis.loop.simulate.Simulation` it uses (which calls this module)."""

    cfg: RunConfig
    proto: Protocol
    model: torch.nn.Module
    start_state: dict  # θ0's weights
    optimizer: torch.optim.Optimizer
    step: int
    last_val: tuple[int, float] | None  # (step, D_R mIoU) of the latest evaluation
    start_scores: dict | None  # θ0's scores, once computed (:func:`start_scores`)
    oracle: Oracle
    pool: RegionPool
    progress: bool

    def final_training_set(self) -> tuple[LabelledData, torch.Tensor]: ...


def miou_on(model, images: ImageSet, proto: Protocol, cfg: RunConfig
            ) -> tuple[float, torch.Tensor]:
    """``(mIoU, confusion [C, C])`` of ``model`` on ``images``."""
    conf = evaluate(model, images.images_u8, images.masks, proto.num_classes, proto.ignore_index,
                    cfg.train.eval_batch_size, cfg.device, cfg.train.amp)
    return mean_iou(conf), conf


def per_image(model, images: ImageSet, proto: Protocol, cfg: RunConfig) -> torch.Tensor:
    """Confusion matrices ``[n, C, C]``, one per image of ``images``."""
    return evaluate(model, images.images_u8, images.masks, proto.num_classes,
                    proto.ignore_index, cfg.train.eval_batch_size, cfg.device, cfg.train.amp,
                    per_image=True)


def start_scores(sim: Simulation) -> dict:
    """θ0's per-image D_R confusions and test mIoU (computed once per session)."""
    if sim.start_scores is None:
        start = copy.deepcopy(sim.model)
        start.load_state_dict(sim.start_state)
        sim.start_scores = {"val_conf": per_image(start, sim.proto.reward, sim.proto, sim.cfg),
                            "test_miou": miou_on(start, sim.proto.test, sim.proto, sim.cfg)[0]}
    return sim.start_scores


def final_train(sim: Simulation, budget: int) -> dict:
    """Train a copy to convergence on the labelled regions, early-stopped on D_R; test it.

    By default (the authors' recipe) the copy continues from the AL-phase model with its
    optimiser state and lr, and keeps it unless an epoch beats its D_R mIoU.
    ``train.final_from="start"`` restarts from θ0 with a fresh optimiser at
    ``train.final_lr`` and keeps the best epoch of this training: θ0 was itself selected as
    the best of many epochs on D_R, so its D_R score is an optimistic bar that a retraining
    rarely clears even when it is better on test. ``train.final_with_start_set`` adds D_T's
    full labels; ``train.final_schedule="cosine"`` anneals the lr to 0 over the epochs.
    """
    start = time.perf_counter()
    cfg, proto = sim.cfg, sim.proto
    torch.manual_seed(step_seed(cfg.seed, budget, "final-torch"))
    generator = torch.Generator().manual_seed(step_seed(cfg.seed, budget, "final"))
    model = copy.deepcopy(sim.model)
    lr = cfg.train.final_lr or cfg.train.lr
    hint = f"train.{'final_lr' if cfg.train.final_lr else 'lr'}={lr:g}"
    if cfg.train.final_from == "start":
        model.load_state_dict(sim.start_state)
        opt = make_optimizer(model, cfg.train.final_lr or cfg.train.lr, cfg.train)
        bar = -1.0  # no bar: the best epoch of this training
    else:
        opt = make_optimizer(model, cfg.train.lr, cfg.train)
        opt.load_state_dict(copy.deepcopy(sim.optimizer.state_dict()))  # never share buffers
        if cfg.train.final_lr is not None:
            for group in opt.param_groups:
                group["lr"] = cfg.train.final_lr
        if sim.last_val is not None and sim.last_val[0] == sim.step:
            bar = sim.last_val[1]  # this very model was just evaluated on D_R
        else:
            bar = miou_on(model, proto.reward, proto, cfg)[0]
    if cfg.train.final_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, max(1, cfg.train.final_epochs * cfg.train.lr_steps_per_step))
    else:
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, cfg.train.lr_gamma)
    data, region_ids = sim.final_training_set()
    fit_cfg = replace(cfg.train, samples_per_epoch=cfg.train.final_samples_per_epoch)
    result = fit(
        model, opt, data, region_ids,
        lambda m: miou_on(m, proto.reward, proto, cfg)[0], fit_cfg, cfg.train.final_epochs,
        cfg.train.final_patience, generator, cfg.device, sched,
        desc=f"final training @{budget}", initial_miou=bar, progress=sim.progress,
        hint=hint,
    )
    test_miou, conf = miou_on(model, proto.test, proto, cfg)
    last = copy.deepcopy(model)
    last.load_state_dict(result.last_state)
    theta0 = start_scores(sim)
    check = compare(theta0["val_conf"], per_image(model, proto.reward, proto, cfg))
    iou = iou_per_class(conf)
    dist = sim.oracle.labelled_distribution(proto.num_classes)
    total_px = len(proto.pool) * proto.pool.images_u8.shape[-2] * proto.pool.images_u8.shape[-1]
    return {
        "regions": budget, "pixel_fraction": sim.pool.labelled_pixels / total_px,
        "miou": test_miou,
        "val_miou": result.best_miou,
        # the last epoch's model: no D_R choice when the schedule is fixed
        "miou_last": miou_on(last, proto.test, proto, cfg)[0],
        "val_miou_last": result.last_miou if result.last_miou is not None else result.best_miou,
        "fixed_schedule": cfg.train.final_patience >= cfg.train.final_epochs,
        # against θ0 (D_R, paired over its images; see ralis.training.regression)
        "start_miou": theta0["test_miou"], "start_val_miou": check.start_miou,
        "val_delta": check.delta, "val_noise": check.noise, "regressed": check.regressed,
        "iou": {n: (None if torch.isnan(v) else float(v))
                for n, v in zip(proto.classes.names, iou, strict=True)},
        "class_distribution": {n: float(v)
                               for n, v in zip(proto.classes.names, dist, strict=True)},
        "class_entropy": distribution_entropy(dist), "epochs": result.epochs,
        "wall": time.perf_counter() - start,
    }
