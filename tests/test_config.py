import json

import pytest

from ralis.config import (
    PRESETS,
    RunConfig,
    apply_overrides,
    from_dict,
    get_preset,
    load_config,
    save_config,
    to_dict,
    validate,
)
from ralis.errors import ConfigError


@pytest.mark.parametrize("name", PRESETS.names())
def test_presets_are_valid_and_round_trip_through_json(name, tmp_path):
    cfg = validate(get_preset(name))
    save_config(cfg, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == cfg
    assert from_dict(RunConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_overrides_are_typed():
    cfg = apply_overrides(get_preset("camvid-cpu"), [
        "train.lr=0.5", "al.budgets=10,20", "data.resolution=90x120", "seed=3",
        'al.pool_sizes={"random": 3}', "agent.use_kl=false",
    ])
    assert cfg.train.lr == 0.5 and cfg.al.budgets == (10, 20) and cfg.seed == 3
    assert cfg.data.resolution == (90, 120) and cfg.al.pool_sizes == {"random": 3}
    assert cfg.agent.use_kl is False


@pytest.mark.parametrize("assignment, message", [
    ("train.nope=1", "unknown config field"),
    ("train.lr=abc", "cannot read"),
    ("al.budgets=20,10", None),
    ("nosection", "section.field=value"),
])
def test_bad_overrides_fail_clearly(assignment, message):
    with pytest.raises(ConfigError, match=message):
        validate(apply_overrides(get_preset("synthetic-tiny"), [assignment]))


@pytest.mark.parametrize("assignment", [
    "train.lr=-1", "al.regions_per_step=0", "al.mc_samples=1", "agent.mode=weird",
    "model.dropout_p=1.5", "al.budgets=0", "agent.target_sync=0", "agent.batch_size=1",
    "agent.buffer_size=3", "agent.kl_bins=0", "al.pool_sizes=random",
])
def test_bad_values_are_rejected(assignment):
    with pytest.raises(ConfigError):
        validate(apply_overrides(get_preset("synthetic-tiny"), [assignment]))


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ConfigError, match="camvid-cpu"):
        get_preset("nope")
