import math

import torch

from ralis.game.head import split_scores
from ralis.game.head_fit import fit_head, zero_head
from ralis.game.policies import FIXED_POLICIES


def _play(game, policy, episode=1, order=None):
    game.reset(episode)
    rewards, picks = [], []
    while (obs := game.observe()) is not None:
        a = FIXED_POLICIES.get(policy)(obs, torch.Generator().manual_seed(obs.step))
        chosen = obs.pools.gather(1, a.unsqueeze(1)).squeeze(1)
        picks.append(chosen)
        rewards.append(game.play(chosen))
    return rewards, picks


def test_same_acquisitions_give_the_same_rewards_bit_for_bit(make_game):
    r1, p1 = _play(make_game(), "random")
    r2, p2 = _play(make_game(), "random")
    assert len(r1) == 3 and all(torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert r1 == r2


def test_the_reward_is_a_function_of_the_labelled_set_not_its_order(make_game):
    game = make_game()
    _, picks = _play(game, "random")
    final = game.past
    game.reset(1)
    for step, chosen in enumerate(reversed(picks), start=1):  # same regions, other order
        game.step = step - 1
        game.play(chosen)
    assert game.past == final


def test_the_reward_equals_a_head_fit_from_scratch_on_the_same_labels(make_game):
    game = make_game()
    rewards, _ = _play(game, "entropy")
    rows = game.labelled_rows()
    x = torch.cat([game.x0, game.pool_x[rows]])
    y = torch.cat([game.y0, game.pool_table.labels[rows]])
    scratch = fit_head(x, y, zero_head(x.shape[1], game.C), game.cfg.agent.head_l2, 500)
    xr, yr = game._split("reward")
    miou = split_scores(xr, yr, scratch, game.std, game.C)[0]
    assert abs(miou - game.past) < 2e-3
    assert math.isclose(sum(rewards), 100 * (game.past - game.start_score), abs_tol=1e-9)


def test_snapshot_restore_replays_a_step_exactly(make_game):
    game = make_game()
    game.reset(3)
    obs = game.observe()
    snap = game.snapshot()
    chosen = obs.pools[:, 0]
    first = game.play(chosen)
    game.restore(snap)
    assert game.play(chosen) == first
    game.restore(snap)
    assert game.labelled_count() == 0


def test_oracle_beats_random_on_the_labels_it_was_built_from(make_game):
    """The error oracle picks the candidates the model gets most wrong; on its own pool's
    ground truth its picks hold more errors than random's (a sanity check of the oracle)."""
    game = make_game()
    game.reset(2)
    obs = game.observe()
    oracle = FIXED_POLICIES.get("oracle")(obs, None)
    rand = FIXED_POLICIES.get("random")(obs, torch.Generator().manual_seed(0))
    err = obs.error
    assert err.gather(1, oracle[:, None]).sum() >= err.gather(1, rand[:, None]).sum()
    assert torch.equal(FIXED_POLICIES.get("entropy")(obs, None), obs.entropy.argmax(1))


def test_fit_with_extra_regions_equals_labelling_them_and_changes_nothing(make_game):
    game = make_game()
    game.reset(1)
    obs = game.observe()
    game.play(obs.pools[:, 0])
    extra = game.observe().pools[:2, 1]
    before = (game.pool.labelled_ids().clone(), game.head.clone())
    looked = game.fit(extra)
    assert torch.equal(game.pool.labelled_ids(), before[0]) and torch.equal(game.head, before[1])
    game.pool.label(extra, game.step + 1)
    assert torch.equal(looked, game.fit())  # bit for bit
