"""A labelling project and a simulation over the same images (synthetic-tiny)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ralis.config import apply_overrides, get_preset
from ralis.data.protocol import ImageSet, load_protocol
from ralis.models import create_model, save_model


def tiny_config(**sets):
    cfg = apply_overrides(get_preset("synthetic-tiny"),
                          ["al.train_on_new_only=false", "al.eval_every=1", "seed=3",
                           *[f"{k}={v}" for k, v in sets.items()]])
    return cfg


def write_classes(path: Path, classes) -> Path:
    items = [{"name": n, "id": i} for i, n in enumerate(classes.names)]
    if classes.colors:
        for item, c in zip(items, classes.colors, strict=True):
            item["color"] = list(c)
    path.write_text(yaml.safe_dump({"classes": items, "ignore_index": classes.ignore_index}))
    return path


def write_images(folder: Path, images: ImageSet) -> list[str]:
    """The pool's images as PNG files named in pool order; returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(len(images)):
        name = f"img_{k:03d}.png"
        Image.fromarray(images.images_u8[k].permute(1, 2, 0).numpy()).save(folder / name)
        names.append(name)
    return names


def start_model_file(path: Path, proto, cfg) -> Path:
    torch.manual_seed(11)
    net = create_model(cfg.model.name, proto.num_classes, dropout_p=cfg.model.dropout_p)
    return save_model(path, net, cfg.model.name, proto.num_classes,
                      {"dropout_p": cfg.model.dropout_p}, {"classes": list(proto.classes.names)})


@pytest.fixture(scope="session")
def tiny_proto():
    return load_protocol(tiny_config().data, progress=False)


@pytest.fixture
def tiny_project_inputs(tmp_path, tiny_proto):
    """(images folder, classes file, θ0 file, {name: ground truth}) for the synthetic pool."""
    cfg = tiny_config()
    names = write_images(tmp_path / "images", tiny_proto.pool)
    classes = write_classes(tmp_path / "classes.yaml", tiny_proto.classes)
    theta0 = start_model_file(tmp_path / "theta0.safetensors", tiny_proto, cfg)
    truth = {n: tiny_proto.pool.masks[k].numpy() for k, n in enumerate(names)}
    return tmp_path / "images", classes, theta0, truth


def upscaled_pool(proto, factor: int = 2):
    """The pool at ``factor`` x its size (native), and the working set a reader makes of it."""
    from ralis.data.resize import resize_pair

    imgs = proto.pool.images_u8.permute(0, 2, 3, 1).numpy()
    native_img = [np.asarray(Image.fromarray(i).resize((i.shape[1] * factor,
                                                         i.shape[0] * factor), Image.BILINEAR))
                  for i in imgs]
    native_gt = [np.kron(m.numpy(), np.ones((factor, factor), dtype=np.int64))
                 for m in proto.pool.masks]
    work = [resize_pair(i, m, tuple(proto.pool.images_u8.shape[-2:]))
            for i, m in zip(native_img, native_gt, strict=True)]
    working = ImageSet(torch.stack([torch.from_numpy(w[0].transpose(2, 0, 1).copy())
                                    for w in work]),
                       torch.stack([torch.from_numpy(w[1].astype(np.int64)) for w in work]),
                       list(proto.pool.names))
    return native_img, native_gt, replace(proto, pool=working)


@pytest.fixture
def project(monkeypatch, capsys, tmp_path, tiny_project_inputs):
    """A project with round 1 (6 random regions) requested in PNG."""
    from tests.cli_helpers import run_cli
    from tests.labelling.test_label_cli import init

    assert init(monkeypatch, capsys, tmp_path, tiny_project_inputs)[0] == 0
    root = tmp_path / "proj"
    assert run_cli(monkeypatch, capsys, "label", "next", str(root), "--regions", "6",
                   "--strategy", "random", "--quiet")[0] == 0
    return root


def ledger_rows(root):
    """Everything the ledger holds that an import or a round could change."""
    from ralis.labelling.project import open_project

    with open_project(root, "test") as p:
        return {t: p.ledger.rows(f"SELECT * FROM {t}") for t in ("imports", "labels", "requests",
                                                                 "repeats", "rounds")}
