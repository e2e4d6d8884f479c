"""The file annotator on real CamVid: native 480x360 files, a 240x180 working resolution, labels
answered from the real masks; the project must equal the simulation exactly."""

from __future__ import annotations

import pytest

from ralis.config import apply_overrides, get_preset
from ralis.data.camvid import default_root
from ralis.data.masks import read_ids
from tests.labelling.conftest import start_model_file, write_classes
from tests.labelling.test_round_trip import assert_same, run_project, run_simulation

pytestmark = [pytest.mark.camvid, pytest.mark.skipif(
    not (default_root() / "train.txt").exists(), reason="CamVid not available")]


def test_camvid_project_equals_simulation(tmp_path):
    from dataclasses import replace

    from ralis.data.protocol import load_protocol

    cfg = apply_overrides(get_preset("camvid-cpu"), [
        "seed=5", "model.name=fpn_small", "al.regions_per_step=4", "al.budgets=16", "al.eval_every=1",
        "al.train_on_new_only=false", "al.pool_sizes.entropy=3", "train.batch_size=8",
        "train.final_epochs=1", "train.final_patience=1"])
    proto = load_protocol(cfg.data, progress=False)
    proto = replace(proto, pool=proto.pool.subset(list(range(6))))
    root = default_root()
    (tmp_path / "images").mkdir()
    truth = {}
    for k, name in enumerate(proto.pool.names):
        link = f"{k:02d}_{name}.png"
        (tmp_path / "images" / link).symlink_to(root / "train" / f"{name}.png")
        truth[link] = read_ids(root / "trainannot" / f"{name}.png")
    assert truth[link].shape == (360, 480)  # native size, twice the working size
    theta0 = start_model_file(tmp_path / "theta0.safetensors", proto, cfg)
    sim = run_simulation(tmp_path, cfg, proto, theta0, "entropy")
    classes = write_classes(tmp_path / "classes.yaml", proto.classes)
    proj = run_project(tmp_path, cfg, proto, tmp_path / "images", classes, theta0, truth, "png",
                       "entropy")
    assert_same(sim, proj, proto.pool.masks, proto.ignore_index, cfg.data.region_size)
