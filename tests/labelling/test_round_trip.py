"""The honest check: a project answered by a file annotator from ground truth requests, labels
and trains exactly what ``ralis simulate`` does with the same seed and settings, in every format.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ralis.files.safe import load_file
from ralis.labelling.annotator import answer_round
from ralis.labelling.create import init_project
from ralis.labelling.crops import active_labels
from ralis.labelling.importing import import_file
from ralis.labelling.project import open_project
from ralis.labelling.rounds import next_round
from ralis.labelling.training import load_version, partial_masks, train_version
from ralis.loop.simulate import miou_on, simulate
from ralis.run.store import RunStore
from tests.labelling.conftest import (
    start_model_file,
    tiny_config,
    upscaled_pool,
    write_classes,
    write_images,
)

ANSWER = {"png": "answer{}", "labelstudio": "answer{}.json", "cvat": "answer{}.xml",
          "coco": "answer{}.json"}
K = 4


def quiet(*_a, **_k):
    return None


def run_simulation(tmp: Path, cfg, proto, theta0: Path, strategy: str) -> dict:
    out = tmp / f"sim-{strategy}"
    simulate(cfg, strategy, out, pretrained=theta0, progress=False, proto=proto)
    store = RunStore(out)
    ids = {}
    for row in store.acquisition_table():
        ids.setdefault(row["step"], []).append(row["region_id"])
    val = {s["step"]: s["val_miou"] for s in store.steps()}
    store.close()
    tree, _ = load_file(out / "checkpoint.safetensors", "checkpoint")
    return {"ids": ids, "val": val, "model": tree["model"]}


def run_project(tmp: Path, cfg, proto, images: Path, classes: Path, theta0: Path, truth: dict,
                fmt: str, strategy: str) -> dict:
    root = tmp / f"proj-{fmt}-{strategy}"
    init_project(root, images, classes, cfg, str(theta0), progress=False, say=quiet)
    ids, val = {}, {}
    for r in range(1, max(cfg.al.budgets) // K + 1):
        with open_project(root, "test") as p:
            chosen = next_round(p, K, strategy, fmt, candidates=K * cfg.pool_size(strategy),
                                progress=False, say=quiet)
            ids[r] = chosen["region_ids"]
            answer = answer_round(p, r, truth.__getitem__, fmt,
                                  tmp / f"{fmt}-{strategy}-" / ANSWER[fmt].format(r))
            report = import_file(p, answer, fmt, say=quiet)
            assert report["regions"] == K and report["dropped_pixels"] == 0
            train_version(p, say=quiet)
            model = load_version(p, p.ledger.latest_model())
            val[r] = miou_on(model, proto.reward, proto, cfg)[0]
            masks = partial_masks(p, active_labels(p.ledger))
    return {"ids": ids, "val": val, "model": model.state_dict(), "masks": masks, "root": root}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, tiny_proto):
    tmp = tmp_path_factory.mktemp("sim")
    cfg = tiny_config()
    theta0 = start_model_file(tmp / "theta0.safetensors", tiny_proto, cfg)
    return {"entropy": run_simulation(tmp, cfg, tiny_proto, theta0, "entropy"), "theta0": theta0}


def assert_same(sim: dict, proj: dict, pool_masks: torch.Tensor, ignore: int,
                region: tuple[int, int] = (16, 16)) -> None:
    assert proj["ids"] == sim["ids"]
    assert proj["val"] == sim["val"]  # exact: same weights, same numbers
    for name, value in sim["model"].items():
        assert torch.equal(proj["model"][name], value), name
    labelled = torch.tensor([i for step in sim["ids"].values() for i in step])
    from ralis.regions import RegionGrid

    grid = RegionGrid(tuple(pool_masks.shape[-2:]), tuple(region))
    inside = grid.mask(labelled, pool_masks.shape[0])
    got = proj["masks"][list(range(pool_masks.shape[0]))]
    assert torch.equal(got[inside], pool_masks[inside])
    assert (got[~inside] == ignore).all()


@pytest.mark.parametrize("fmt", ["png", "labelstudio", "cvat", "coco"])
def test_project_equals_simulation(fmt, tmp_path, tiny_proto, simulated):
    cfg = tiny_config()
    images, names = tmp_path / "images", write_images(tmp_path / "images", tiny_proto.pool)
    classes = write_classes(tmp_path / "classes.yaml", tiny_proto.classes)
    truth = {n: tiny_proto.pool.masks[k].numpy() for k, n in enumerate(names)}
    proj = run_project(tmp_path, cfg, tiny_proto, images, classes, simulated["theta0"], truth,
                       fmt, "entropy")
    assert_same(simulated["entropy"], proj, tiny_proto.pool.masks, tiny_proto.ignore_index)


def test_native_resolution_maps_exactly(tmp_path, tiny_proto):
    """Images twice the working size: requests in native pixels, labels sampled back."""
    cfg = tiny_config()
    native_img, native_gt, proto = upscaled_pool(tiny_proto)
    theta0 = start_model_file(tmp_path / "theta0.safetensors", proto, cfg)
    sim = run_simulation(tmp_path, cfg, proto, theta0, "random")
    from PIL import Image

    (tmp_path / "images").mkdir()
    truth = {}
    for k, (img, gt) in enumerate(zip(native_img, native_gt, strict=True)):
        Image.fromarray(img).save(tmp_path / "images" / f"img_{k:03d}.png")
        truth[f"img_{k:03d}.png"] = gt
    classes = write_classes(tmp_path / "classes.yaml", proto.classes)
    proj = run_project(tmp_path, cfg, proto, tmp_path / "images", classes, theta0, truth,
                       "png", "random")
    assert_same(sim, proj, proto.pool.masks, proto.ignore_index)
    with open_project(proj["root"], "test") as p:
        req = p.ledger.requests(1)[0]
    assert req["height"] == 32 and req["width"] == 32  # 16x16 regions at twice the size
