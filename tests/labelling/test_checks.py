"""`label train` compares the latest model with the start model on labels neither has seen."""

from __future__ import annotations

from ralis.config import apply_overrides
from ralis.labelling.annotator import answer_round
from ralis.labelling.checks import check_latest, fresh_regions
from ralis.labelling.create import init_project
from ralis.labelling.importing import import_file
from ralis.labelling.project import open_project
from ralis.labelling.rounds import next_round
from ralis.labelling.training import train_version
from ralis.loop.pretrain import pretrain
from tests.labelling.conftest import tiny_config


def quiet(*_a, **_k):
    return None


def _round(p, r: int, k: int, truth: dict, tmp) -> list[int]:
    chosen = next_round(p, k, "random", "png", candidates=3 * k, progress=False, say=quiet)
    import_file(p, answer_round(p, r, truth.__getitem__, "png", tmp / f"answer{r}"), "png",
                say=quiet)
    return chosen["region_ids"]


def test_a_worse_version_is_reported(tmp_path, tiny_proto, tiny_project_inputs) -> None:
    images, classes, _, truth = tiny_project_inputs
    good = apply_overrides(tiny_config(), ["train.pretrain_epochs=12",
                                           "train.pretrain_patience=12"])
    theta0 = pretrain(good, tmp_path / "theta0", progress=False, proto=tiny_proto)
    cfg = tiny_config(**{"train.lr": 3.0})  # a learning rate that wrecks what it trains
    root = tmp_path / "proj"
    init_project(root, images, classes, cfg, str(theta0), progress=False, say=quiet)
    with open_project(root, "test") as p:
        _round(p, 1, 4, truth, tmp_path)
        assert check_latest(p, quiet) is None  # nothing trained since the start model
        train_version(p, say=quiet)
        second = _round(p, 2, 12, truth, tmp_path)
        assert sorted(fresh_regions(p, 1)) == sorted(second)
        lines: list[str] = []
        record = check_latest(p, lines.append)
        assert record["version"] == 1 and record["regions"] == 12 and record["images"] > 1
        assert record["regressed"] and record["delta"] < -record["noise"] < 0
        assert p.ledger.get_meta("check:v0001") == record
    assert len(lines) == 1 and lines[0].startswith("warning: regressed: model version 1")
    assert "train.lr=0.3" in lines[0]


def test_no_check_without_a_trained_start(tmp_path, tiny_project_inputs) -> None:
    images, classes, _, truth = tiny_project_inputs
    root = tmp_path / "fresh"
    init_project(root, images, classes, tiny_config(), "fpn_small", progress=False, say=quiet)
    with open_project(root, "test") as p:
        _round(p, 1, 4, truth, tmp_path)
        train_version(p, say=quiet)
        _round(p, 2, 4, truth, tmp_path)
        assert check_latest(p, quiet) is None
