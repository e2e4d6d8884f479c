import io

import pytest
import torch

from ralis.rl.replay import ReplayBuffer

RS, DS, N, DA = 6, 4, 5, 3


def _step(t, K=4, terminal=False):
    """A step whose tensors encode the step number t (easy to check after sampling)."""
    state = torch.full((RS, DS), float(t))
    pools = torch.arange(K, dtype=torch.float32).view(K, 1, 1).expand(K, N, DA) + 100 * t
    actions = torch.arange(K) % N
    next_state = None if terminal else torch.full((RS, DS), t + 0.5)
    next_pools = None if terminal else pools + 0.5
    return state, pools.clone(), actions, float(t), next_state, next_pools


def test_push_len_and_capacity_wrap_drops_oldest():
    buf = ReplayBuffer(capacity=10, generator=0)
    for t in range(3):
        buf.push_step(*_step(t))
    assert len(buf) == 10
    # 12 transitions pushed: steps 0's first two were dropped -> step 0 keeps 2 of its 4
    rewards = torch.cat([buf.sample(10).reward])
    assert sorted(rewards.tolist()) == [0.0] * 2 + [1.0] * 4 + [2.0] * 4
    assert buf.num_steps == 3
    buf.push_step(*_step(3, K=2))  # overwrites the rest of step 0
    assert buf.num_steps == 3
    assert 0.0 not in buf.sample(10).reward.tolist()


def test_sample_shapes_and_done_mask():
    buf = ReplayBuffer(capacity=100, generator=1)
    buf.push_step(*_step(1))
    buf.push_step(*_step(2, terminal=True))
    b = buf.sample(8)
    assert b.state.shape == (8, RS, DS) and b.next_state.shape == (8, RS, DS)
    assert b.pool.shape == (8, N, DA) and b.next_pool.shape == (8, N, DA)
    assert b.action.dtype == torch.long and b.action.shape == (8,)
    assert b.reward.shape == (8,) and b.done.dtype == torch.bool
    assert torch.equal(b.done, b.reward == 2.0)
    assert torch.all(b.next_state[b.done] == 0) and torch.all(b.next_pool[b.done] == 0)
    live = ~b.done
    assert torch.all(b.next_state[live] == 1.5)
    # pool k pairs with action k and next pool k
    k = b.pool[:, 0, 0] - 100 * b.reward
    assert torch.equal(b.action.float(), k)
    assert torch.allclose(b.next_pool[live], b.pool[live] + 0.5)
    with pytest.raises(ValueError):
        buf.sample(9)


def test_states_are_stored_once_per_step():
    buf = ReplayBuffer(capacity=1000)
    K = 64
    state, pools, actions, r, next_state, next_pools = _step(0, K=K)
    buf.push_step(state, pools, actions, r, next_state, next_pools)
    assert buf.num_steps == 1 and len(buf) == K
    stored = buf.state_dict()["steps"]
    assert len(stored) == 1
    step = next(iter(stored.values()))
    ptr = state.untyped_storage().data_ptr()
    assert step["state"].untyped_storage().data_ptr() == ptr
    assert step["pools"].untyped_storage().data_ptr() == pools.untyped_storage().data_ptr()


def test_state_dict_round_trip_continues_identically():
    buf = ReplayBuffer(capacity=15, generator=3)
    for t in range(5):
        buf.push_step(*_step(t, terminal=t == 4))
    buf.sample(4)
    blob = io.BytesIO()
    torch.save(buf.state_dict(), blob)
    blob.seek(0)
    other = ReplayBuffer(capacity=1, generator=99)
    other.load_state_dict(torch.load(blob, weights_only=True))
    assert len(other) == len(buf) and other.num_steps == buf.num_steps
    for _ in range(3):
        a, b = buf.sample(6), other.sample(6)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
    buf.push_step(*_step(9))
    other.push_step(*_step(9))
    for x, y in zip(buf.sample(15), other.sample(15), strict=True):
        assert torch.equal(x, y)


def test_push_validation():
    buf = ReplayBuffer(capacity=5)
    state, pools, actions, r, next_state, next_pools = _step(0)
    with pytest.raises(ValueError):
        buf.push_step(state, pools, actions[:2], r, next_state, next_pools)
    with pytest.raises(ValueError):
        buf.push_step(state, pools, actions, r, next_state, None)
