"""Training and evaluation of the segmentation network on (partially) labelled regions."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ralis.config import TrainConfig
from ralis.data.base import normalize
from ralis.metrics import confusion_matrix, confusion_per_unit
from ralis.precision import autocast
from ralis.progress import progress_bar
from ralis.regions import Regions
from ralis.training.divergence import check_loss, check_outputs, check_weights


@dataclass
class LabelledData:
    """Images with their (partial) masks: unlabelled pixels hold the ignore index."""

    images_u8: torch.Tensor  # [P, 3, H, W] uint8
    masks: torch.Tensor  # [P, H, W] long
    regions: Regions  # the images' regions (rectangles or superpixels)
    ignore_index: int


def region_crops(
    data: LabelledData,
    region_ids: torch.Tensor,
    crop_size: tuple[int, int],
    generator: torch.Generator,
    flip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops that contain each region's anchor pixel (a rectangle's centre, the pixel of
    a superpixel nearest its centroid), with random horizontal flips.

    ``region_ids [B]`` -> ``(images [B, 3, ch, cw] normalised, masks [B, ch, cw])``.
    """
    H, W = data.images_u8.shape[-2:]
    ch, cw = min(crop_size[0], H), min(crop_size[1], W)
    anchor = data.regions.anchors(region_ids)
    cy, cx = anchor[:, 0], anchor[:, 1]
    lo_y, hi_y = (cy - ch + 1).clamp(0, H - ch), cy.clamp(max=H - ch)
    lo_x, hi_x = (cx - cw + 1).clamp(0, W - cw), cx.clamp(max=W - cw)
    u = torch.rand(2, region_ids.numel(), generator=generator)
    top = lo_y + (u[0] * (hi_y - lo_y + 1)).long().clamp(max=hi_y - lo_y)
    left = lo_x + (u[1] * (hi_x - lo_x + 1)).long().clamp(max=hi_x - lo_x)
    image_idx = region_ids // data.regions.per_image
    flips = torch.rand(region_ids.numel(), generator=generator) < 0.5 if flip else None
    xs, ys = [], []
    for i in range(region_ids.numel()):  # one slice per sample of the batch
        k, t, l_ = int(image_idx[i]), int(top[i]), int(left[i])
        x = data.images_u8[k, :, t : t + ch, l_ : l_ + cw]
        y = data.masks[k, t : t + ch, l_ : l_ + cw]
        if flips is not None and flips[i]:
            x, y = x.flip(-1), y.flip(-1)
        xs.append(x)
        ys.append(y)
    return normalize(torch.stack(xs)), torch.stack(ys)


def make_optimizer(model: nn.Module, lr: float, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def train_pass(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: LabelledData,
    region_ids: torch.Tensor,
    cfg: TrainConfig,
    generator: torch.Generator,
    device: str = "cpu",
    max_iters: int | None = None,
    hint: str | None = None,
    freeze_bn: bool = False,
) -> float:
    """One shuffled pass of SGD over crops around ``region_ids [M]``; returns the mean loss.

    ``freeze_bn``: BatchNorm layers normalise with their running statistics and leave them
    unchanged (their affine weights still learn), so a few small batches do not rewrite them.
    A non-finite loss or weight raises :class:`ralis.training.divergence.DivergenceError`;
    ``hint`` names the setting to blame (e.g. ``"train.lr=0.01"``).
    """
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    order = region_ids[torch.randperm(region_ids.numel(), generator=generator)]
    losses = []
    for it, start in enumerate(range(0, order.numel(), cfg.batch_size)):
        if max_iters is not None and it >= max_iters:
            break
        x, y = region_crops(data, order[start : start + cfg.batch_size], cfg.crop_size, generator)
        if (y == data.ignore_index).all():
            continue
        if x.shape[0] == 1:  # BatchNorm needs two samples: add the mirrored crop
            x, y = torch.cat([x, x.flip(-1)]), torch.cat([y, y.flip(-1)])
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, cfg.amp):
            logits = model(x)
        loss = nn.functional.cross_entropy(logits.float(), y, ignore_index=data.ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        losses.append(loss.detach())
    if not losses:
        return math.nan
    values = torch.stack(losses).tolist()  # one host sync per pass, not one per SGD step
    for value in values:
        check_loss(value, "in a training pass", hint)
    check_weights(model, "in a training pass", hint)
    return sum(values) / len(values)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images_u8: torch.Tensor,
    masks: torch.Tensor,
    num_classes: int,
    ignore_index: int,
    batch_size: int = 16,
    device: str = "cpu",
    amp: bool = False,
    per_image: bool = False,
) -> torch.Tensor:
    """Dataset-level confusion matrix ``[C, C]`` of ``model`` on full images (accumulated on
    ``device``; one host sync at the end); with ``per_image``, one per image ``[n, C, C]``."""
    model.eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)
    parts = []
    finite = torch.ones((), dtype=torch.bool, device=device)
    for start in range(0, images_u8.shape[0], batch_size):
        x = normalize(images_u8[start : start + batch_size]).to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(x)
        finite &= torch.isfinite(logits).all()
        target = masks[start : start + batch_size].to(device, non_blocking=True)
        pred = logits.max(1).indices  # max: argmax over dim 1 is slow on CPU
        if per_image:
            ids = torch.arange(x.shape[0], device=device).view(-1, 1, 1).expand_as(target)
            parts.append(confusion_per_unit(pred, target, ids, x.shape[0], num_classes,
                                            ignore_index))
        else:
            conf += confusion_matrix(pred, target, num_classes, ignore_index)
    if not bool(finite):
        check_outputs(torch.tensor(float("nan")), "on the evaluation images")
    return torch.cat(parts).cpu() if per_image else conf.cpu()


def one_region_per_image(region_ids: torch.Tensor, per_image: int, generator: torch.Generator
                         ) -> torch.Tensor:
    """One random region id of each image present in ``region_ids [M]`` -> ``[I]``.

    An epoch of final training visits every labelled image once, around one of its labelled
    regions (the authors' recipe).
    """
    shuffled = region_ids[torch.randperm(region_ids.numel(), generator=generator)]
    images = shuffled // per_image
    _, inverse = torch.unique(images, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), shuffled.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(shuffled.numel()), reduce="amin")
    return shuffled[first]


@dataclass
class FitResult:
    """``best_*``: the epoch chosen on the validation set (its weights are the model's after
    :func:`fit`); ``last_*``: the last epoch trained, a rule that does not look at that set when
    the schedule is fixed (patience >= epochs). ``last_state`` holds its weights."""

    best_miou: float
    best_epoch: int
    epochs: int
    history: list[dict] = field(default_factory=list)
    last_miou: float | None = None
    last_state: dict | None = None


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: LabelledData,
    region_ids: torch.Tensor,
    validate: Callable[[nn.Module], float],
    cfg: TrainConfig,
    max_epochs: int,
    patience: int,
    generator: torch.Generator,
    device: str = "cpu",
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    desc: str = "train",
    initial_miou: float | None = None,
    progress: bool = True,
    hint: str | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    resume_from: dict | None = None,
) -> FitResult:
    """Train to convergence with early stopping on ``validate`` (D_R mIoU); keeps the best weights
    (the last epoch's are in the result's ``last_state``).

    Each epoch visits every image that has labelled regions once (a crop around one of them),
    or, with ``cfg.samples_per_epoch``, draws that many such crops.
    ``initial_miou`` is the validation score of the starting weights (they are kept if no epoch
    beats it). ``hint`` names the setting blamed if training diverges.

    ``checkpoint(state)`` is called after every epoch with everything needed to continue
    (weights, optimiser, scheduler, best weights, counters, history, the generator's and
    torch's random states); passing that ``state`` back as ``resume_from`` continues exactly
    where the uninterrupted training would be.
    """
    best = initial_miou if initial_miou is not None else -1.0
    best_state = copy.deepcopy(model.state_dict())
    best_epoch, bad, history, first, done = 0, 0, [], 1, False
    if resume_from is not None:
        s = resume_from
        model.load_state_dict(s["model"])
        optimizer.load_state_dict(s["optimizer"])
        if scheduler is not None and s.get("scheduler") is not None:
            scheduler.load_state_dict(s["scheduler"])
        best_state, best = s["best_state"], float(s["best"])
        best_epoch, bad, history = int(s["best_epoch"]), int(s["bad"]), list(s["history"])
        first, done = int(s["epoch"]) + 1, bool(s["done"])
        generator.set_state(s["generator"])
        torch.set_rng_state(s["torch_rng"])
    epoch = first - 1
    bar = progress_bar(range(first, max_epochs + 1) if not done else range(0), desc=desc,
                       leave=False, disable=not progress)
    for epoch in bar:
        items = one_region_per_image(region_ids, data.regions.per_image, generator)
        while cfg.samples_per_epoch and items.numel() < cfg.samples_per_epoch:
            items = torch.cat([items, one_region_per_image(region_ids, data.regions.per_image,
                                                           generator)])
        if cfg.samples_per_epoch:
            items = items[: cfg.samples_per_epoch]
        tick = time.perf_counter()
        loss = train_pass(model, optimizer, data, items, cfg, generator, device,
                          cfg.iters_per_epoch, hint)
        if scheduler is not None:
            for _ in range(cfg.lr_steps_per_step):
                scheduler.step()
        row = {"epoch": epoch, "loss": loss, "t_train": time.perf_counter() - tick}
        if epoch % cfg.val_every == 0 or epoch == max_epochs:
            tick = time.perf_counter()
            miou = validate(model)
            row["val_miou"], row["t_val"] = miou, time.perf_counter() - tick
            if miou > best:
                best, best_epoch, bad = miou, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += cfg.val_every
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{100 * miou:.1f}% (epoch {epoch})",
                            best=f"{100 * best:.1f}%")
        history.append(row)
        done = bad >= patience or epoch == max_epochs
        if checkpoint is not None:
            checkpoint({
                "epoch": epoch, "done": done, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "best_state": best_state, "best": best, "best_epoch": best_epoch, "bad": bad,
                "history": history, "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
            })
        if bad >= patience:
            break
    last_state = copy.deepcopy(model.state_dict())
    last_miou = next((r["val_miou"] for r in reversed(history) if "val_miou" in r), None)
    model.load_state_dict(best_state)
    return FitResult(best, best_epoch, epoch, history, last_miou, last_state)
