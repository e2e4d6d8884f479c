"""θ0 (the start model, trained on the labelled start set D_T) and the full-supervision bound."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ralis.config import RunConfig
from ralis.data.protocol import ImageSet, Protocol, load_protocol
from ralis.errors import ConfigError
from ralis.loop.session import git_revision, open_run_dir, seed_everything, set_threads
from ralis.loop.store import atomic_write_text
from ralis.loop.train import LabelledData, evaluate, fit, make_optimizer
from ralis.metrics import iou_per_class, mean_iou
from ralis.models import check_num_classes, create_model, load_model, save_model


def build_model(cfg: RunConfig, num_classes: int) -> torch.nn.Module:
    return create_model(cfg.model.name, num_classes, dropout_p=cfg.model.dropout_p)


def _cat(*sets: ImageSet) -> ImageSet:
    return ImageSet(torch.cat([s.images_u8 for s in sets]), torch.cat([s.masks for s in sets]),
                    [n for s in sets for n in s.names])


def train_supervised(
    cfg: RunConfig, proto: Protocol, train_set: ImageSet, desc: str, progress: bool = True,
    seed_offset: int = 0,
) -> tuple[torch.nn.Module, dict]:
    """Train a fresh network on fully labelled images, early-stopped on D_R; test it."""
    start = time.perf_counter()
    generator = seed_everything(cfg.seed + seed_offset)
    model = build_model(cfg, proto.num_classes).to(cfg.device)
    data = LabelledData(train_set.images_u8, train_set.masks, proto.grid, proto.ignore_index)
    opt = make_optimizer(model, cfg.train.pretrain_lr, cfg.train)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, cfg.train.lr_gamma)

    def val(m: torch.nn.Module) -> float:
        return mean_iou(evaluate(m, proto.reward.images_u8, proto.reward.masks, proto.num_classes,
                                 proto.ignore_index, cfg.train.eval_batch_size, cfg.device))

    all_regions = torch.arange(len(train_set) * proto.grid.per_image)
    result = fit(model, opt, data, all_regions, val, cfg.train, cfg.train.pretrain_epochs,
                 cfg.train.pretrain_patience, generator, cfg.device, sched, desc=desc,
                 progress=progress)
    conf = evaluate(model, proto.test.images_u8, proto.test.masks, proto.num_classes,
                    proto.ignore_index, cfg.train.eval_batch_size, cfg.device)
    iou = iou_per_class(conf)
    metrics = {
        "val_miou": result.best_miou, "best_epoch": result.best_epoch, "epochs": result.epochs,
        "test_miou": mean_iou(conf),
        "iou": {n: (None if torch.isnan(v) else float(v))
                for n, v in zip(proto.classes.names, iou, strict=True)},
        "images": len(train_set), "wall": time.perf_counter() - start,
        "history": result.history,
    }
    return model, metrics


def _model_meta(cfg: RunConfig, proto: Protocol, metrics: dict) -> dict:
    return {
        "dataset": cfg.data.dataset, "resolution": list(proto.grid.image_size),
        "classes": list(proto.classes.names), "seed": cfg.seed, "git_revision": git_revision(),
        "val_miou": metrics["val_miou"], "test_miou": metrics["test_miou"],
    }


def pretrain(
    cfg: RunConfig, out: Path, resume: bool = False, progress: bool = True,
    proto: Protocol | None = None,
) -> Path:
    """Train θ0 on D_T into ``out/model.pt`` (reused if it is already there); return its path."""
    out = Path(out)
    cfg = open_run_dir(out, cfg, resume, "pretrain")
    path = out / "model.pt"
    if path.exists():
        return path
    set_threads(cfg)
    proto = proto or load_protocol(cfg.data, progress)
    model, metrics = train_supervised(cfg, proto, proto.dqn_train, "pretrain θ0 on D_T", progress)
    save_model(path, model, cfg.model.name, proto.num_classes,
               {"dropout_p": cfg.model.dropout_p}, extra=_model_meta(cfg, proto, metrics))
    atomic_write_text(json.dumps(metrics, indent=2) + "\n", out / "metrics.json")
    return path


def load_start_model(path: Path, cfg: RunConfig, proto: Protocol) -> torch.nn.Module:
    """Load θ0 and check it fits this run's classes and resolution."""
    model, meta = load_model(path)
    check_num_classes(meta, proto.num_classes)
    extra = meta.get("extra") or {}
    if extra.get("classes") and list(extra["classes"]) != list(proto.classes.names):
        raise ConfigError(f"{path} was trained on classes {extra['classes']}, not this dataset's")
    return model.to(cfg.device)


def upper_bound(
    cfg: RunConfig, out: Path, resume: bool = False, progress: bool = True,
    proto: Protocol | None = None,
) -> dict:
    """Full supervision with the same recipe: all training-split images, all labels."""
    out = Path(out)
    cfg = open_run_dir(out, cfg, resume, "upper-bound")
    if (out / "results.json").exists():
        return json.loads((out / "results.json").read_text())
    set_threads(cfg)
    proto = proto or load_protocol(cfg.data, progress)
    everything = _cat(proto.state, proto.dqn_train, proto.pool)
    model, metrics = train_supervised(cfg, proto, everything, "upper bound (all labels)", progress)
    save_model(out / "model.pt", model, cfg.model.name, proto.num_classes,
               {"dropout_p": cfg.model.dropout_p}, extra=_model_meta(cfg, proto, metrics))
    results = {
        "strategy": "full", "seed": cfg.seed, "dataset": cfg.data.dataset, "preset": cfg.preset,
        "git_revision": git_revision(), "classes": list(proto.classes.names),
        "budgets": [{
            "regions": len(everything) * proto.grid.per_image, "pixel_fraction": 1.0,
            "miou": metrics["test_miou"], "val_miou": metrics["val_miou"], "iou": metrics["iou"],
            "epochs": metrics["epochs"], "wall": metrics["wall"],
        }],
        "wall_time": metrics["wall"],
    }
    atomic_write_text(json.dumps(results, indent=2) + "\n", out / "results.json")
    return results
