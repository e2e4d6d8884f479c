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


def _sized_step(t, sizes, next_sizes=None):
    """A step of pools of different sizes ``sizes[k]`` (stored zero-padded to the largest, as the
    game never does; only ``[:sizes[k]]`` is real) whose values encode ``(t, k)``."""
    K = len(sizes)
    state = torch.full((RS, DS), float(t))
    n = max(sizes)
    pools = torch.arange(K, dtype=torch.float32).view(K, 1, 1).expand(K, n, DA) + 100 * t
    pools = pools + torch.arange(n, dtype=torch.float32).view(1, n, 1) / 100
    actions = torch.tensor(sizes) - 1
    if next_sizes is None:
        return state, pools.clone(), actions, float(t), None, None
    m = max(next_sizes)
    next_pools = pools[:, :1].expand(K, m, DA) + 0.5 + torch.arange(m).view(1, m, 1) / 100
    return state, pools.clone(), actions, float(t), torch.full((RS, DS), t + 0.5), next_pools


def test_sample_pads_pools_of_different_sizes_with_masks():
    """Steps of shrinking pool sizes (the end of an episode): a sampled batch is zero-padded to
    its largest pool and next pool, and the masks mark exactly the real candidates."""
    buf = ReplayBuffer(capacity=100, generator=4)
    # (pool size, next pool size) per step, K = 2 pools each; the last step is terminal
    plan = [(5, 4), (4, 2), (2, None)]
    for t, (n, m) in enumerate(plan):
        state, pools, actions, r, next_state, next_pools = _sized_step(
            t, [n, n], None if m is None else [m, m])
        buf.push_step(state, pools[:, :n], actions, r, next_state,
                      None if m is None else next_pools[:, :m])
    b = buf.sample(len(buf))
    B = len(buf)
    assert b.pool.shape == (B, 5, DA) and b.pool_mask.shape == (B, 5)
    assert b.next_pool.shape == (B, 4, DA) and b.next_pool_mask.shape == (B, 4)
    assert b.pool_mask.dtype == torch.bool and b.next_pool_mask.dtype == torch.bool
    for i in range(B):
        t = int(b.reward[i])
        n, m = plan[t]
        k = int(b.pool[i, 0, 0] - 100 * t)
        expected = torch.arange(5) < n
        assert torch.equal(b.pool_mask[i], expected)
        real = k + 100 * t + torch.arange(n, dtype=torch.float32).view(n, 1) / 100
        assert torch.allclose(b.pool[i, :n], real.expand(n, DA))
        assert torch.all(b.pool[i, n:] == 0)
        assert b.action[i] == n - 1 and bool(b.pool_mask[i, b.action[i]])
        if m is None:
            assert b.done[i] and not b.next_pool_mask[i].any() and torch.all(b.next_pool[i] == 0)
        else:
            assert torch.equal(b.next_pool_mask[i], torch.arange(4) < m)
            assert torch.all(b.next_pool[i, m:] == 0)
            assert torch.allclose(b.next_pool[i, :m, 0], real[0, 0] + 0.5 + torch.arange(m) / 100)


def test_sample_of_equal_sizes_is_a_plain_stack_with_all_true_masks():
    buf = ReplayBuffer(capacity=100, generator=1)
    buf.push_step(*_step(1))
    buf.push_step(*_step(2, terminal=True))
    b = buf.sample(8)
    assert b.pool_mask.shape == (8, N) and b.pool_mask.all()
    assert torch.equal(b.next_pool_mask, ~b.done.unsqueeze(1).expand(8, N))
    only_terminal = ReplayBuffer(capacity=4, generator=0)
    only_terminal.push_step(*_step(3, terminal=True))
    b = only_terminal.sample(4)
    assert b.next_pool.shape == (4, N, DA) and not b.next_pool_mask.any()


def test_mixed_size_state_dict_round_trip_continues_identically():
    buf = ReplayBuffer(capacity=9, generator=5)
    plan = [(6, 5), (5, 3), (3, 1), (1, None)]
    for t, (n, m) in enumerate(plan):
        state, pools, actions, r, next_state, next_pools = _sized_step(
            t, [n] * 3, None if m is None else [m] * 3)
        buf.push_step(state, pools[:, :n], actions, r, next_state,
                      None if m is None else next_pools[:, :m])
    blob = io.BytesIO()
    torch.save(buf.state_dict(), blob)
    blob.seek(0)
    other = ReplayBuffer(capacity=1, generator=99)
    other.load_state_dict(torch.load(blob, weights_only=True))
    assert len(other) == len(buf) == 9 and other.num_steps == buf.num_steps == 3
    sizes = {s["pools"].shape[1] for s in other.state_dict()["steps"].values()}
    assert sizes == {5, 3, 1}
    for _ in range(4):
        a, b = buf.sample(5), other.sample(5)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


def test_push_rejects_next_pools_with_other_features():
    buf = ReplayBuffer(capacity=5)
    state, pools, actions, r, next_state, next_pools = _step(0)
    with pytest.raises(ValueError):
        buf.push_step(state, pools, actions, r, next_state, next_pools[..., :-1])
    buf.push_step(state, pools, actions, r, next_state, next_pools[:, :2])  # smaller N' is fine
