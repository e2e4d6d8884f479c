import json
from dataclasses import replace

import pytest
import torch

import ralis.agents.dqn as dqn_mod
import ralis.agents.start as start_mod
import ralis.game.net as net_mod
from ralis.config import apply_overrides
from ralis.errors import ConfigError, RalisError
from ralis.loop.agent import train_agent
from ralis.loop.simulate import simulate
from ralis.rl.policy import load_policy
from ralis.run.store import RunStore


@pytest.fixture(scope="module")
def trained(tiny_cfg, tiny_proto, tmp_path_factory):
    out = tmp_path_factory.mktemp("agent")
    summary = train_agent(tiny_cfg, out, progress=False, proto=tiny_proto)
    return out, summary


def test_training_logs_episodes_and_writes_a_policy(trained, tiny_cfg, tiny_proto):
    out, summary = trained
    assert summary["episodes"] == tiny_cfg.agent.episodes
    log = summary["episodes_log"]
    assert [e["episode"] for e in log] == [1, 2]
    for e in log:
        assert e["labelled"] == tiny_cfg.agent.episode_budget
        assert 0 <= e["final_miou"] <= 1 and 0 <= e["epsilon"] <= 1
        # fixed mode: rewards are mIoU differences from the start model, so the return telescopes
        assert e["return"] == pytest.approx(100 * (e["final_miou"] - e["start_miou"]), abs=1e-6)
    qnet, spec, meta = load_policy(out / "policy.safetensors")
    assert spec.num_classes == tiny_proto.num_classes
    assert spec.state_regions == len(tiny_proto.state) * tiny_proto.grid.per_image
    assert qnet.config()["action_dim"] == spec.state_dim + 64
    assert meta["mode"] == "fixed" and json.loads((out / "agent.json").read_text())["episodes"] == 2


def test_faithful_mode_first_reward_is_the_full_miou(tiny_cfg, tiny_proto, tmp_path):
    cfg = apply_overrides(tiny_cfg, ["agent.mode=faithful", "agent.episodes=1"])
    summary = train_agent(cfg, tmp_path / "f", progress=False, proto=tiny_proto)
    e = summary["episodes_log"][0]
    assert e["return"] == pytest.approx(100 * e["final_miou"], abs=1e-6)
    assert e["dqn_lr"] < cfg.agent.lr  # decayed every step


def test_greedy_evaluation_with_the_policy(trained, tiny_cfg, tiny_proto, tiny_theta0, tmp_path):
    out, _ = trained
    res = simulate(tiny_cfg, "ralis", tmp_path / "eval", pretrained=tiny_theta0, progress=False,
                   proto=tiny_proto, strategy_kwargs={"policy": out / "policy.safetensors"})
    assert res["strategy"] == "ralis"
    assert [b["regions"] for b in res["budgets"]] == list(tiny_cfg.al.budgets)
    simulate(tiny_cfg, "ralis", tmp_path / "eval2", pretrained=tiny_theta0,
                     progress=False, proto=tiny_proto, strategy_kwargs={"policy": out / "policy.safetensors"})
    assert RunStore(tmp_path / "eval").acquisitions() == RunStore(tmp_path / "eval2").acquisitions()


def test_policy_on_another_grid_fails_clearly(trained, tiny_cfg, tmp_path):
    out, _ = trained
    from ralis.data.protocol import load_protocol

    cfg = apply_overrides(tiny_cfg, ["data.region_size=8x8"])
    proto = load_protocol(cfg.data, progress=False)
    with pytest.raises(ConfigError, match="regions per image"):
        simulate(cfg, "ralis", tmp_path / "x", progress=False, proto=proto,
                 strategy_kwargs={"policy": out / "policy.safetensors"})


def test_missing_or_foreign_policy_file(tmp_path):
    with pytest.raises(RalisError, match="not found"):
        load_policy(tmp_path / "nope.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(RalisError, match="pickled torch file.*ralis convert"):
        load_policy(tmp_path / "other.pt")


def test_interrupted_agent_training_resumes_exactly(tiny_cfg, tiny_proto, tmp_path, monkeypatch):
    cfg = replace(tiny_cfg, seed=3)
    ref = train_agent(cfg, tmp_path / "ref", progress=False, proto=tiny_proto)
    calls = {"n": 0}
    real = dqn_mod.dqn_update

    def crash_in_episode_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(dqn_mod, "dqn_update", crash_in_episode_2)
    with pytest.raises(KeyboardInterrupt):
        train_agent(cfg, tmp_path / "cut", progress=False, proto=tiny_proto)
    assert len(RunStore(tmp_path / "cut").episodes()) == 1
    monkeypatch.setattr(dqn_mod, "dqn_update", real)
    resumed = train_agent(cfg, tmp_path / "cut", resume=True, progress=False, proto=tiny_proto)
    keys = ("return", "final_miou", "loss", "epsilon")
    assert [e[k] for e in resumed["episodes_log"] for k in keys] == pytest.approx(
        [e[k] for e in ref["episodes_log"] for k in keys], abs=1e-9)
    a, _, _ = load_policy(tmp_path / "ref" / "policy.safetensors")
    b, _, _ = load_policy(tmp_path / "cut" / "policy.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_policy_at_another_resolution_with_the_same_grid_fails_clearly(trained, tiny_cfg, tmp_path):
    from ralis.data.protocol import load_protocol

    out, _ = trained
    cfg = apply_overrides(tiny_cfg, ["data.resolution=96x128", "data.region_size=32x32"])
    proto = load_protocol(cfg.data, progress=False)
    assert proto.grid.per_image == 12  # same grid shape as the policy's, other pixel scale
    with pytest.raises(ConfigError, match="out of scale"):
        simulate(cfg, "ralis", tmp_path / "x", progress=False, proto=proto,
                 strategy_kwargs={"policy": out / "policy.safetensors"})


def test_resumed_ralis_run_reuses_its_recorded_policy(trained, tiny_cfg, tiny_proto, tiny_theta0,
                                                      tmp_path):
    out, _ = trained
    first = simulate(tiny_cfg, "ralis", tmp_path / "r", pretrained=tiny_theta0, progress=False,
                     proto=tiny_proto, strategy_kwargs={"policy": out / "policy.safetensors"})
    again = simulate(tiny_cfg, "ralis", tmp_path / "r", resume=True, progress=False,
                     proto=tiny_proto)
    assert again["budgets"] == first["budgets"]


def test_train_passes_trains_the_game_model_that_many_times(tiny_cfg, tiny_proto, tmp_path,
                                                            monkeypatch):
    """agent.train_passes=3: every game step trains three passes over its new regions."""
    cfg = apply_overrides(tiny_cfg, ["agent.train_passes=3", "agent.episodes=1",
                                     "agent.mode=faithful"])  # no held-out judging
    seen = []
    real = net_mod.train_pass

    def counting(model, opt, data, ids, *args, **kwargs):
        seen.append(sorted(ids.tolist()))
        return real(model, opt, data, ids, *args, **kwargs)

    monkeypatch.setattr(net_mod, "train_pass", counting)
    train_agent(cfg, tmp_path / "a", progress=False, proto=tiny_proto)
    steps = cfg.agent.episode_budget // cfg.al.regions_per_step
    assert len(seen) == 3 * steps
    assert all(seen[i] == seen[i - i % 3] for i in range(len(seen)))  # same regions per step
    assert all(len(ids) == cfg.al.regions_per_step for ids in seen)


def test_sane_net_game_trains_on_everything_labelled_with_frozen_batchnorm(
        tiny_cfg, tiny_proto, tmp_path, monkeypatch):
    """agent.net_regions=all: each step trains on K regions drawn from every region labelled
    so far (earlier ones too); agent.net_freeze_bn: the game never moves BatchNorm statistics."""
    cfg = apply_overrides(tiny_cfg, ["agent.net_regions=all", "agent.net_freeze_bn=true",
                                     "agent.episodes=1", "agent.mode=faithful",
                                     "agent.episode_budget=16"])
    labelled, trained, frozen = [], [], []
    real_pass, real_play = net_mod.train_pass, net_mod.NetGame.play

    def spy_play(self, chosen, generator):
        labelled.append(set(chosen.tolist()))
        return real_play(self, chosen, generator)

    def spy_pass(model, opt, data, ids, *args, **kwargs):
        trained.append(set(ids.tolist()))
        bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        before = [m.running_mean.clone() for m in bn]
        loss = real_pass(model, opt, data, ids, *args, **kwargs)
        frozen.append(bool(bn) and all(torch.equal(b, m.running_mean)
                                       for b, m in zip(before, bn, strict=True)))
        return loss

    monkeypatch.setattr(net_mod.NetGame, "play", spy_play)
    monkeypatch.setattr(net_mod, "train_pass", spy_pass)
    train_agent(cfg, tmp_path / "a", progress=False, proto=tiny_proto)
    K = cfg.al.regions_per_step
    assert len(trained) == len(labelled) == 16 // K and all(frozen)
    for t, ids in enumerate(trained):
        so_far = set().union(*labelled[: t + 1])
        assert len(ids) == K and ids <= so_far
    assert any(ids - labelled[t] for t, ids in enumerate(trained))  # earlier regions again


def test_dt_half_start_model_and_game_images_are_disjoint_halves(tiny_cfg, tiny_proto, tmp_path,
                                                                 monkeypatch):
    """agent.start_from=dt-half: the start model trains on D_T's first half, the game labels
    regions of the second half only."""
    cfg = apply_overrides(tiny_cfg, ["agent.start_from=dt-half", "agent.episodes=1"])
    start, game = start_mod.game_split(cfg, tiny_proto)
    n = len(tiny_proto.dqn_train)
    assert start.names == tiny_proto.dqn_train.names[: n // 2]
    assert game.names == tiny_proto.dqn_train.names[n // 2:]
    trained_on = []
    real_sup = start_mod.train_supervised

    def spy(cfg_, proto_, images, *args, **kwargs):
        trained_on.append(list(images.names))
        return real_sup(cfg_, proto_, images, *args, **kwargs)

    labelled_images = []
    real_pass = net_mod.train_pass

    def spy_pass(model, opt, data, ids, *args, **kwargs):
        labelled_images.append(data.images_u8.shape[0])
        return real_pass(model, opt, data, ids, *args, **kwargs)

    monkeypatch.setattr(start_mod, "train_supervised", spy)
    monkeypatch.setattr(net_mod, "train_pass", spy_pass)
    train_agent(cfg, tmp_path / "a", progress=False, proto=tiny_proto)
    assert trained_on == [start.names]
    assert labelled_images and set(labelled_images) == {len(game)}
    default_start, default_game = start_mod.game_split(tiny_cfg, tiny_proto)
    assert default_game.names == tiny_proto.dqn_train.names
    assert default_start.names == tiny_proto.state.names[: tiny_cfg.agent.start_images]
