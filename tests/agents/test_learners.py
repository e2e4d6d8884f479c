"""The learners that hand out a policy chosen on held-out episodes (agent.mode fixed, credit,
imitation and search) in the head game, end to end on
synthetic-tiny: the test split is never read, held-out episodes never train, interruptions
resume exactly, and a policy that never beat entropy acts as entropy in `ralis simulate`."""

from dataclasses import replace

import pytest
import torch

import ralis.agents.credit as credit_mod
import ralis.agents.imitation as imitation_mod
from ralis.config import apply_overrides, get_preset
from ralis.config.checks import validate
from ralis.data.protocol import load_protocol
from ralis.errors import RalisError
from ralis.game.head import HeadGame
from ralis.game.heldout import MAX_TRAINING_EPISODES, SELECTION_EPISODES, evaluate, fixed_pick
from ralis.game.policies import FIXED_POLICIES
from ralis.loop.agent import train_agent
from ralis.loop.simulate import simulate
from ralis.report.heldout import heldout_section
from ralis.rl.policy import load_policy
from ralis.rl.scorers import EntropyResidual

COMMON = ["agent.game=head", "agent.heldout_seeds=2", "threads=1"]
MODES = {
    "fixed": ["agent.mode=fixed", "agent.episodes=3", "agent.heldout_every=2"],
    "credit": ["agent.mode=credit", "agent.episodes=3", "agent.heldout_every=2",
               "agent.residual_hidden=8"],
    "imitation": ["agent.mode=imitation", "agent.episodes=3", "agent.heldout_every=2",
                  "agent.residual_hidden=8", "agent.batch_size=4"],
    "search": ["agent.mode=search", "agent.episodes=2", "agent.search_population=3",
               "agent.search_seeds=2"],
}


@pytest.fixture(scope="module")
def proto():
    return load_protocol(get_preset("synthetic-tiny").data, progress=False)


def _cfg(mode):
    return apply_overrides(get_preset("synthetic-tiny"), COMMON + MODES[mode])


class _NoTest:
    """A test split that fails the moment anything reads it."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __len__(self):
        raise AssertionError("the test split was read (len)")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_training_and_selection_never_read_the_test_split(mode, proto, tmp_path, monkeypatch):
    blind = replace(proto, test=_NoTest())
    played = []
    real_reset = HeadGame.reset

    def spy(self, episode):
        played.append(episode)
        return real_reset(self, episode)

    monkeypatch.setattr(HeadGame, "reset", spy)
    summary = train_agent(_cfg(mode), tmp_path / mode, progress=False, proto=blind)
    selection = {r["seed"] for r in summary["heldout"]}
    assert selection == {SELECTION_EPISODES, SELECTION_EPISODES + 1}
    training = {e for e in played if 0 < e <= MAX_TRAINING_EPISODES}
    assert training and not (training & selection)
    assert set(played) <= training | selection | {0}
    assert {r["role"] for r in summary["heldout"]} == {"reward", "selection"}


def test_a_gate_split_is_refused_for_training_episodes(proto):
    with pytest.raises(ValueError, match="test split"):
        evaluate(None, {"random": lambda e: fixed_pick("random", e)}, [1], ["test"])


def test_interrupted_credit_training_resumes_exactly(proto, tmp_path, monkeypatch):
    cfg = _cfg("credit")
    ref = train_agent(cfg, tmp_path / "ref", progress=False, proto=proto)
    real, calls = credit_mod.CreditTrainer.update, {"n": 0}

    def crash(self):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(credit_mod.CreditTrainer, "update", crash)
    with pytest.raises(KeyboardInterrupt):
        train_agent(cfg, tmp_path / "cut", progress=False, proto=proto)
    monkeypatch.setattr(credit_mod.CreditTrainer, "update", real)
    cut = train_agent(cfg, tmp_path / "cut", resume=True, progress=False, proto=proto)
    keys = ("return", "final_miou", "loss")
    assert [e[k] for e in cut["episodes_log"] for k in keys] == [
        e[k] for e in ref["episodes_log"] for k in keys]
    a, b = load_policy(tmp_path / "ref" / "policy.safetensors")[0], load_policy(
        tmp_path / "cut" / "policy.safetensors")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))
    # the report draws the held-out learning curve from the run's record
    lines = heldout_section([tmp_path / "ref"], {tmp_path / "ref": "credit"}, tmp_path)
    assert (tmp_path / "heldout_curve.png").stat().st_size > 1000
    judged = [r for r in ref["heldout"] if r["policy"] == "agent"]
    assert sorted({r["episode"] for r in judged}) == [2, 3]  # every 2 episodes and the last
    assert sum(line.startswith("| credit |") for line in lines) == 2


def test_a_search_policy_that_never_beat_entropy_acts_as_entropy(proto, tmp_path):
    cfg = apply_overrides(_cfg("search"), ["agent.episodes=1"])
    summary = train_agent(cfg, tmp_path / "agent", progress=False, proto=proto)
    net, _, record = load_policy(tmp_path / "agent" / "policy.safetensors")
    assert isinstance(net, EntropyResidual) and record["mode"] == "search"
    sim = apply_overrides(get_preset("synthetic-tiny"), ["threads=1"])
    ent = simulate(sim, "entropy", tmp_path / "ent", progress=False, proto=proto)
    if summary["selected_episode"] == 0:  # nothing beat entropy on the selection episodes
        ral = simulate(sim, "ralis", tmp_path / "ral", progress=False, proto=proto,
                       strategy_kwargs={"policy": tmp_path / "agent" / "policy.safetensors"})
        assert (tmp_path / "ral" / "acquired_regions.csv").read_text().splitlines()[1:] == (
            tmp_path / "ent" / "acquired_regions.csv").read_text().splitlines()[1:]
        assert [b["miou"] for b in ral["budgets"]] == [b["miou"] for b in ent["budgets"]]
    else:
        assert summary["selection_miou"] > 0


def test_the_dqn_hands_out_its_best_held_out_judgement(proto, tmp_path):
    summary = train_agent(_cfg("fixed"), tmp_path / "dqn", progress=False, proto=proto)
    judged = {}
    for r in summary["heldout"]:
        if r["policy"] == "agent" and r["role"] == "selection":
            judged.setdefault(r["episode"], []).append(r["miou"])
    assert sorted(judged) == [2, 3]  # every 2 episodes and the last; never a training score
    means = {e: sum(v) / len(v) for e, v in judged.items()}
    best = max(means, key=lambda e: (means[e], -e))
    assert summary["selection"] == "best held-out selection mIoU"
    assert summary["selected_episode"] == best
    assert summary["selection_miou"] == pytest.approx(means[best])
    _, _, record = load_policy(tmp_path / "dqn" / "policy.safetensors")
    assert record["selected_episode"] == best and record["mode"] == "fixed"


def test_imitation_follows_its_expert_schedule_and_its_guard_stops_a_divergence(
        proto, tmp_path, monkeypatch):
    """The expert's share halves every episode (it plays all of the first), every episode
    trains, agreement with the expert is logged, and a non-finite loss stops with one line."""
    cfg = apply_overrides(_cfg("imitation"), ["agent.episodes=4", "agent.heldout_every=4",
                                              "agent.batch_size=2"])
    summary = train_agent(cfg, tmp_path / "im", progress=False, proto=proto)
    log = summary["episodes_log"]
    assert [e["epsilon"] for e in log] == [1.0, 0.5, 0.25, 0.125]
    assert all(e["loss"] is not None and 0 <= e["expert_agreement"] <= 1 for e in log)
    real = imitation_mod.ImitationTrainer.batch_loss
    monkeypatch.setattr(imitation_mod.ImitationTrainer, "batch_loss",
                        lambda self, entries: real(self, entries) * float("nan"))
    with pytest.raises(RalisError, match="imitation learner diverged.*lower agent.lr"):
        train_agent(cfg, tmp_path / "nan", progress=False, proto=proto)


def test_imitation_learns_from_the_expert_it_is_given(proto, tmp_path, monkeypatch):
    """agent.imitation_expert picks the fixed policy whose picks are the targets: with
    ``lookahead`` every step asks the lookahead oracle and never the error oracle, and the
    learner's agreement is measured against the lookahead's picks; the net game refuses it."""
    calls = {"lookahead": 0, "oracle": 0}
    for name in calls:
        real = FIXED_POLICIES.get(name)

        def spy(obs, g, real=real, name=name):
            calls[name] += 1
            return real(obs, g)
        monkeypatch.setitem(FIXED_POLICIES._items, name, spy)
    cfg = apply_overrides(_cfg("imitation"), ["agent.episodes=2", "agent.heldout_every=2",
                                              "agent.batch_size=2",
                                              "agent.imitation_expert=lookahead"])
    summary = train_agent(cfg, tmp_path / "la", progress=False, proto=proto)
    steps = len(summary["episodes_log"]) * (cfg.agent.episode_budget // cfg.al.regions_per_step)
    assert calls == {"lookahead": steps, "oracle": 0}
    with pytest.raises(RalisError, match="imitation_expert=lookahead needs agent.game=head"):
        validate(apply_overrides(get_preset("synthetic-tiny"),
                                 ["agent.mode=imitation", "agent.imitation_expert=lookahead"]))
