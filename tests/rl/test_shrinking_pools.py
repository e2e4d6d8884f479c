"""Agent training at the end of a small D_T: fewer than K x N regions left, so the game's pools
shrink and the replay buffer mixes pool sizes (issue #11)."""

from dataclasses import replace

import pytest
import torch

import ralis.agents.dqn as agent_mod
from ralis.config import apply_overrides, get_preset
from ralis.data.protocol import load_protocol
from ralis.loop.agent import train_agent
from ralis.rl.policy import load_policy
from ralis.rl.replay import ReplayBuffer


@pytest.fixture(scope="module")
def tiny_cfg():
    return get_preset("synthetic-tiny")


def _spy(monkeypatch):
    """Record the pool sizes of every step pushed to the replay buffer, and whether each DQN
    update's batch held padded pools."""
    seen = {"sizes": [], "padded": []}
    push, update = ReplayBuffer.push_step, agent_mod.dqn_update

    def spy_push(self, state, pools, *args, **kwargs):
        seen["sizes"].append(pools.shape[1])
        return push(self, state, pools, *args, **kwargs)

    def spy_update(policy, target, optimizer, batch, *args, **kwargs):
        seen["padded"].append(not bool(batch.pool_mask.all()))
        return update(policy, target, optimizer, batch, *args, **kwargs)

    monkeypatch.setattr(ReplayBuffer, "push_step", spy_push)
    monkeypatch.setattr(agent_mod, "dqn_update", spy_update)
    return seen


def test_episode_labels_all_of_d_t_with_shrinking_pools(tiny_cfg, tmp_path, monkeypatch):
    """A 3-image D_T (36 regions), pool_size 20 and a budget of every D_T region: N shrinks step
    by step down to 1 and the episode plays to its very end, padded batches included."""
    cfg = apply_overrides(tiny_cfg, ["data.dqn_train_images=3"])
    proto = load_protocol(cfg.data, progress=False)
    regions = len(proto.dqn_train) * proto.grid.per_image
    cfg = apply_overrides(
        cfg, ["agent.pool_size=20", f"agent.episode_budget={regions}", "agent.episodes=1"])
    assert cfg.al.regions_per_step * cfg.agent.pool_size > regions
    seen = _spy(monkeypatch)
    summary = train_agent(cfg, tmp_path / "a", progress=False, proto=proto)
    (episode,) = summary["episodes_log"]
    assert episode["labelled"] == regions
    assert torch.isfinite(torch.tensor(episode["loss"]))
    sizes = seen["sizes"]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] < 20 and sizes[-1] == 1
    assert any(seen["padded"])
    qnet, _, _ = load_policy(summary["policy"])
    assert all(torch.isfinite(p).all() for p in qnet.state_dict().values())


def test_interrupted_training_with_shrinking_pools_resumes_exactly(tiny_cfg, tmp_path,
                                                                    monkeypatch):
    """The checkpointed replay buffer holds pools of several sizes and round-trips: a run cut in
    episode 2 and resumed ends exactly like an uninterrupted one."""
    proto = load_protocol(tiny_cfg.data, progress=False)
    cfg = replace(apply_overrides(tiny_cfg, ["agent.pool_size=20", "agent.episodes=2"]), seed=5)
    seen = _spy(monkeypatch)
    ref = train_agent(cfg, tmp_path / "ref", progress=False, proto=proto)
    assert len(set(seen["sizes"])) > 1 and any(seen["padded"])
    real = agent_mod.dqn_update  # the spy
    calls = {"n": 0}

    def crash_in_episode_2(*args, **kwargs):  # an episode of 2 steps makes 2 updates
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    seen["sizes"].clear()
    monkeypatch.setattr(agent_mod, "dqn_update", crash_in_episode_2)
    with pytest.raises(KeyboardInterrupt):
        train_agent(cfg, tmp_path / "cut", progress=False, proto=proto)
    assert len(set(seen["sizes"])) > 1  # the checkpoint's buffer mixes pool sizes
    monkeypatch.setattr(agent_mod, "dqn_update", real)
    resumed = train_agent(cfg, tmp_path / "cut", resume=True, progress=False, proto=proto)
    keys = ("return", "final_miou", "loss", "epsilon", "labelled")
    assert [e[k] for e in resumed["episodes_log"] for k in keys] == pytest.approx(
        [e[k] for e in ref["episodes_log"] for k in keys], abs=1e-9)
    a, _, _ = load_policy(ref["policy"])
    b, _, _ = load_policy(resumed["policy"])
    assert a is not b and ref["policy"] != resumed["policy"]
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
