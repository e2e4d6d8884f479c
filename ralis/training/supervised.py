"""Supervised training of a fresh network on fully labelled images, and the model file it writes.

θ0 (the start model, trained on the labelled start set D_T), the full-supervision bound
(:mod:`ralis.loop.pretrain`) and the agent's start model (:mod:`ralis.agents.start`) all train
with :func:`train_supervised`, which checkpoints every epoch into the run directory
(``train_checkpoint.safetensors``) so an interrupted training resumes exactly.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from ralis.config import RunConfig
from ralis.data.protocol import ImageSet, Protocol
from ralis.files.arrays import concat_rows
from ralis.files.record import data_record
from ralis.files.safe import file_digest
from ralis.metrics import iou_per_class, mean_iou
from ralis.models import check_classes, load_model, model_from_config, save_model
from ralis.run.names import MODEL_NAME, TRAIN_CHECKPOINT
from ralis.run.rundir import Run, RunDirError
from ralis.run.session import seed_everything
from ralis.training.divergence import blame
from ralis.training.train import LabelledData, evaluate, fit, make_optimizer


def build_model(cfg: RunConfig, num_classes: int) -> torch.nn.Module:
    return model_from_config(cfg.model, num_classes)


def concat_sets(*sets: ImageSet) -> ImageSet:
    return ImageSet(concat_rows([s.images_u8 for s in sets]), concat_rows([s.masks for s in sets]),
                    [n for s in sets for n in s.names])


def train_supervised(
    cfg: RunConfig, proto: Protocol, train_set: ImageSet, desc: str, progress: bool = True,
    seed_offset: int = 0, run: Run | None = None, val_set: ImageSet | None = None,
    test: bool = True,
) -> tuple[torch.nn.Module, dict]:
    """Train a fresh network on fully labelled images, early-stopped on D_R (or ``val_set``);
    test it unless ``test`` is false (``test_miou`` is then ``None``: the agent's start model
    never looks at the test split).

    With ``run``, every epoch is checkpointed into it and a checkpoint found there is
    continued exactly.
    """
    val_set = proto.reward if val_set is None else val_set
    start = time.perf_counter()
    generator = seed_everything(cfg.seed + seed_offset)
    model = build_model(cfg, proto.num_classes).to(cfg.device)
    data = LabelledData(train_set.images_u8, train_set.masks, proto.grid, proto.ignore_index)
    opt = make_optimizer(model, cfg.train.pretrain_lr, cfg.train)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, cfg.train.lr_gamma)

    def val(m: torch.nn.Module) -> float:
        return mean_iou(evaluate(m, val_set.images_u8, val_set.masks, proto.num_classes,
                                 proto.ignore_index, cfg.train.eval_batch_size, cfg.device,
                                 cfg.train.amp))

    resume_from, checkpoint = None, None
    if run is not None:
        found = run.load_checkpoint(TRAIN_CHECKPOINT, "train-checkpoint", "epoch")
        resume_from = found[0] if found else None

        def checkpoint(state: dict) -> None:
            run.save_checkpoint(TRAIN_CHECKPOINT, "train-checkpoint", state,
                                {"epoch": state["epoch"]})

    all_regions = torch.arange(len(train_set) * proto.grid.per_image)
    with blame(f"train.pretrain_lr={cfg.train.pretrain_lr:g}"):
        return _fit_and_test(cfg, proto, train_set, model, opt, sched, data, all_regions, val,
                             generator, desc, progress, checkpoint, resume_from, start, test)


def _fit_and_test(cfg, proto, train_set, model, opt, sched, data, all_regions, val, generator,
                  desc, progress, checkpoint, resume_from, start, test=True):
    result = fit(model, opt, data, all_regions, val, cfg.train, cfg.train.pretrain_epochs,
                 cfg.train.pretrain_patience, generator, cfg.device, sched, desc=desc,
                 progress=progress, hint=f"train.pretrain_lr={cfg.train.pretrain_lr:g}",
                 checkpoint=checkpoint, resume_from=resume_from)
    iou, test_miou, test_last = None, None, None
    if test:
        conf = evaluate(model, proto.test.images_u8, proto.test.masks, proto.num_classes,
                        proto.ignore_index, cfg.train.eval_batch_size, cfg.device, cfg.train.amp)
        last = copy.deepcopy(model)
        last.load_state_dict(result.last_state)
        conf_last = evaluate(last, proto.test.images_u8, proto.test.masks, proto.num_classes,
                             proto.ignore_index, cfg.train.eval_batch_size, cfg.device,
                             cfg.train.amp)
        iou, test_miou, test_last = iou_per_class(conf), mean_iou(conf), mean_iou(conf_last)
    metrics = {
        "val_miou": result.best_miou, "best_epoch": result.best_epoch, "epochs": result.epochs,
        "test_miou": test_miou,
        # the last epoch: chosen by no validation score (D_R picks only when training stops)
        "test_miou_last": test_last, "val_miou_last": result.last_miou,
        "iou": None if iou is None else {n: (None if torch.isnan(v) else float(v))
                                         for n, v in zip(proto.classes.names, iou, strict=True)},
        "images": len(train_set), "wall": time.perf_counter() - start,
        "history": result.history,
    }
    return model, metrics


def save_trained(path: Path, cfg: RunConfig, proto: Protocol, model: torch.nn.Module,
                 images: ImageSet, metrics: dict, role: str) -> Path:
    """Write a trained network with its record (data, classes, regions, metrics)."""
    extra = {**data_record(cfg, proto, images), "role": role, "seed": cfg.seed,
             "model_name": cfg.model.name,
             "encoder_weights": getattr(model, "encoder_record", None),
             "metrics": {k: metrics[k] for k in ("val_miou", "test_miou", "epochs")}}
    return save_model(path, model, cfg.model.name, proto.num_classes,
                      {"dropout_p": cfg.model.dropout_p}, extra=extra)


def finished_model(run: Run, name: str = MODEL_NAME) -> Path | None:
    """The run's trained model if the record says it is complete (and the file agrees)."""
    noted = run.store.get_meta(f"file:{name}")
    path = run.root / name
    if noted is None:
        return None
    if not path.exists():
        raise RunDirError(f"{path} is missing, but run.sqlite records it as trained; start over "
                          f"in a new --out (or delete {run.root} to rerun it from scratch)")
    if file_digest(path) != noted["digest"]:
        raise RunDirError(f"{path} is not the model this run trained (its checksum differs from "
                          f"the record in run.sqlite); restore it, or start over in a new --out")
    return path


def record_model(run: Run, path: Path) -> None:
    run.store.set_meta(f"file:{path.name}", {"digest": file_digest(path)})


def load_start_model(path: Path, cfg: RunConfig, proto: Protocol) -> torch.nn.Module:
    """Load θ0 and check it was trained on this run's classes."""
    model, meta = load_model(path)
    check_classes(meta, list(proto.classes.names))
    return model.to(cfg.device)
