"""Model versions of a project: the start model (version 0) and one version per `label train`.

A version is trained exactly as one step of ``ralis simulate`` trains (same seeds for the same
step number, same recipe from the project's config): it continues from the previous version with
its optimiser and learning-rate schedule, and passes over the regions labelled since (or, with
``al.train_on_new_only = false``, the project's default, over every label so far). So a project
answered by a file annotator from ground truth trains the same weights as the simulation.

Each version is ``models/vNNNN.safetensors`` (a model file any ralis command loads, e.g.
``ralis simulate --pretrained``) plus ``vNNNN.state.safetensors`` (optimiser and schedule). The
files are written first and the ledger row last, in one transaction: a crash in between leaves
no version, and rerunning ``label train`` trains it again (deterministically) over the files.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ralis.errors import ConfigError
from ralis.files.digest import file_sha256
from ralis.files.safe import base_record, load_file, save_file
from ralis.labelling.crops import active_labels
from ralis.labelling.geometry import region_boxes
from ralis.labelling.ledger import crash_point
from ralis.labelling.project import (
    Project,
    model_file,
    now,
    seed_for,
    state_file,
    torch_seed,
)
from ralis.models import MODELS, check_classes, create_model, load_model, save_model
from ralis.training.divergence import blame, check_model_file
from ralis.training.oracle import SparseMasks
from ralis.training.train import LabelledData, make_optimizer, train_pass


def _record(project: Project, version: int, labelled: int, trained: bool) -> dict:
    return {"classes": list(project.classes.names), "ignore_index": project.classes.ignore_index,
            "project": project.settings.name, "version": version, "labelled_regions": labelled,
            "trained": trained, "resolution": list(project.settings.working),
            "region_size": list(project.cfg.data.region_size)}


def start_model(project: Project, model: str | None, say=print) -> None:
    """Version 0: a model file (θ0, e.g. from ``ralis pretrain``), or a fresh network of a
    registry name (default: the config's ``model.name``). Kept as it is on a rerun."""
    if project.ledger.latest_model() is not None:
        return
    cfg = project.cfg
    dest = project.root / model_file(0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if model is not None and (Path(model).suffix == ".safetensors" or Path(model).exists()):
        net, meta = load_model(Path(model))
        check_classes(meta, list(project.classes.names))
        check_model_file(net, project.images[:2], model)
        save_model(dest, net, meta["name"], meta["num_classes"], meta["kwargs"],
                   {**_record(project, 0, 0, True), "source": str(model),
                    "source_sha256": meta["extra"]["sha256"]})
        trained, what = True, f"the model in {model}"
    else:
        name = model or cfg.model.name
        MODELS.get(name)  # unknown names list the valid ones
        torch_seed(project, 0, "init")
        net = create_model(name, project.classes.num_classes, dropout_p=cfg.model.dropout_p,
                           encoder_weights=cfg.model.encoder_weights)
        save_model(dest, net, name, project.classes.num_classes, {"dropout_p": cfg.model.dropout_p},
                   _record(project, 0, 0, False))
        trained, what = False, f"a fresh {name} (untrained)"
    with project.ledger.transaction() as db:
        db.execute("INSERT INTO models (version, file, sha256, labelled, new_regions, loss, "
                   "created, wall, trained) VALUES (0, ?, ?, 0, 0, NULL, ?, 0, ?)",
                   (model_file(0), file_sha256(dest), now(), int(trained)))
    say(f"start model (version 0): {what}")


def load_version(project: Project, row: dict) -> torch.nn.Module:
    """A version's network, checked against the ledger's checksum."""
    path = project.root / row["file"]
    if not path.is_file() or file_sha256(path) != row["sha256"]:
        raise ConfigError(f"{path} is missing or not the file the ledger records for model "
                          f"version {row['version']}; restore it, or retrain with `ralis label "
                          "train`")
    net, meta = load_model(path)
    check_classes(meta, list(project.classes.names))
    return net.to(project.cfg.device)


def partial_masks(project: Project, labels: dict[int, np.ndarray]) -> SparseMasks:
    """The labels at the working resolution, as the network trains on them: ``[P, H, W]``
    long, ignore outside labelled regions (only the labelled regions are held)."""
    masks = SparseMasks(project.num_images, tuple(project.settings.working),
                        project.classes.ignore_index)
    per = project.grid.per_image
    boxes = {r["region_id"]: r for r in project.ledger.requests()}
    for rid in sorted(labels):
        img, local = divmod(rid, per)
        y0, x0, y1, x1 = region_boxes(project.grid, np.array([local]))[0].tolist()
        b = boxes[rid]
        part = project.native_map(img).sample(labels[rid], y0, x0, y1, x1, b["top"], b["left"])
        masks.add(rid, img, y0, x0, torch.from_numpy(part.astype(np.int64)))
    return masks


def _load_state(project: Project, version: int, model: torch.nn.Module):
    cfg = project.cfg
    optimizer = make_optimizer(model, cfg.train.lr, cfg.train)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.train.lr_gamma)
    path = project.root / state_file(version)
    if version > 0:
        tree, _ = load_file(path, "checkpoint")
        optimizer.load_state_dict(tree["optimizer"])
        scheduler.load_state_dict(tree["scheduler"])
    return optimizer, scheduler


def train_version(project: Project, epochs: int = 1, progress: bool = True, say=print) -> dict:
    """Train the next model version on the labels (see the module docs). Returns its row."""
    ledger, cfg = project.ledger, project.cfg
    last = ledger.latest_model()
    assert last is not None
    labelled = ledger.labelled_ids()
    label_ids = ledger.rows("SELECT id, region_id FROM labels WHERE active = 1")
    upto = int(ledger.get_meta(f"labels_upto:{last['version']}", 0))
    new_set = {r["region_id"] for r in label_ids if r["id"] > upto}
    if not new_set:
        if not labelled:
            raise ConfigError("no labels yet: import labels first (`ralis label import`), then "
                              "train")
        say(f"nothing new to train on: model version {last['version']} has every label "
            f"({len(labelled)} regions)")
        return last
    version = last["version"] + 1
    start = time.perf_counter()
    model = load_version(project, last)
    optimizer, scheduler = _load_state(project, last["version"], model)
    new_ids = [r for r in labelled if r in new_set]  # request order, as simulate's steps
    ids = torch.tensor(new_ids if cfg.al.train_on_new_only else labelled, dtype=torch.long)
    data = LabelledData(project.images, partial_masks(project, active_labels(ledger, labelled)),
                        project.grid, project.classes.ignore_index)
    losses = []
    with blame(f"train.lr={cfg.train.lr:g}"):
        torch_seed(project, version, "train-torch")
        for epoch in range(epochs):
            stream = "train" if epoch == 0 else f"train:{epoch}"
            generator = torch.Generator().manual_seed(seed_for(project, version, stream))
            losses.append(train_pass(model, optimizer, data, ids, cfg.train, generator,
                                     cfg.device, hint=f"train.lr={cfg.train.lr:g}"))
            for _ in range(cfg.train.lr_steps_per_step):
                scheduler.step()
    save_model(project.root / model_file(version), model, *_model_meta(project, last),
               _record(project, version, len(labelled), True))
    crash_point("train:after-model-file")
    save_file(project.root / state_file(version),
              {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
              "checkpoint", {**base_record(), "project": project.settings.name,
                             "version": version, "step": version})
    loss = float(np.mean(losses)) if losses else None
    wall = time.perf_counter() - start
    top = max(r["id"] for r in label_ids)
    crash_point("train:after-files")
    with ledger.transaction() as db:
        db.execute("INSERT INTO models (version, file, sha256, labelled, new_regions, loss, "
                   "created, wall, trained) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                   (version, model_file(version),
                    file_sha256(project.root / model_file(version)), len(labelled),
                    len(new_ids), loss, now(), wall))
        ledger.set_meta(db, f"labels_upto:{version}", top)
    say(f"model version {version}: trained on {len(ids)} regions ({len(new_ids)} new, "
        f"{len(labelled)} labelled in all), loss {loss if loss is None else round(loss, 4)}, "
        f"{wall:.1f} s -> {project.root / model_file(version)}")
    return ledger.latest_model()


def _model_meta(project: Project, row: dict) -> tuple[str, int, dict]:
    _, record = load_file(project.root / row["file"], "model")
    section = record["model"]
    return section["name"], int(section["num_classes"]), dict(section.get("kwargs") or {})
