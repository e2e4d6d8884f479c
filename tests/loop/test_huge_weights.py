"""Files with finite but huge weights pass every load check (finite values, right shapes): a
policy whose Q-values overflow, or a θ0 whose outputs do, must stop the run with a line naming
the file, not pick a fixed region per pool with exit 0 or blame train.lr."""

from __future__ import annotations

import pytest
import torch

from ralis.errors import RalisError
from ralis.loop.agent import train_agent
from ralis.loop.simulate import simulate
from ralis.models import load_model, save_model
from ralis.rl.policy import load_policy, save_policy


def scaled(module: torch.nn.Module, factor: float = 1e30) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(factor)
    assert all(bool(torch.isfinite(p).all()) for p in module.parameters())
    return module


@pytest.fixture(scope="module")
def huge_policy(tiny_cfg, tiny_proto, tmp_path_factory):
    out = tmp_path_factory.mktemp("agent")
    train_agent(tiny_cfg, out, progress=False, proto=tiny_proto)
    qnet, spec, meta = load_policy(out / "policy.safetensors")
    return save_policy(out / "huge.safetensors", scaled(qnet), spec, meta)


def test_a_policy_whose_q_values_overflow_stops_the_run(tiny_cfg, tiny_proto, tiny_theta0,
                                                        huge_policy, tmp_path):
    load_policy(huge_policy)  # every load check passes
    with pytest.raises(RalisError, match=rf"policy {huge_policy} gives NaN or infinite Q-values"):
        simulate(tiny_cfg, "ralis", tmp_path / "run", pretrained=tiny_theta0, progress=False,
                 proto=tiny_proto, strategy_kwargs={"policy": huge_policy})


def test_a_theta0_with_huge_weights_is_blamed_on_the_file(tiny_cfg, tiny_proto, tiny_theta0,
                                                          tmp_path):
    model, meta = load_model(tiny_theta0)
    bad = save_model(tmp_path / "huge.safetensors", scaled(model), meta["name"],
                     meta["num_classes"], meta["kwargs"], {"classes": meta["extra"]["classes"]})
    with pytest.raises(RalisError, match=rf"model file {bad} outputs NaN") as exc:
        simulate(tiny_cfg, "random", tmp_path / "run", pretrained=bad, progress=False,
                 proto=tiny_proto)
    assert "train.lr" not in str(exc.value)
