import math

import pytest
import torch
from torch import nn

from ralis.rl.dqn import (
    double_dqn_target,
    dqn_update,
    epsilon_schedule,
    linear_epsilon,
    select_actions,
    sync_target,
)
from ralis.rl.qnet import QueryNetwork
from ralis.rl.replay import Batch, ReplayBuffer


def test_epsilon_schedules():
    assert epsilon_schedule(0) == pytest.approx(0.9)
    assert epsilon_schedule(10) == pytest.approx(0.05 + 0.85 * math.exp(-1))
    assert epsilon_schedule(10_000) == pytest.approx(0.05)
    assert linear_epsilon(0, 1.0, 0.1, 10) == pytest.approx(1.0)
    assert linear_epsilon(5, 1.0, 0.1, 10) == pytest.approx(0.55)
    assert linear_epsilon(50, 1.0, 0.1, 10) == pytest.approx(0.1)


def test_double_dqn_target_by_hand():
    reward = torch.tensor([1.0, -0.5, 2.0])
    online = torch.tensor([[0.1, 0.9, 0.3], [5.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    target = torch.tensor([[10.0, 3.0, -1.0], [4.0, 8.0, 2.0], [float("nan")] * 3])
    done = torch.tensor([False, False, True])
    y = double_dqn_target(reward, online, target, done, gamma=0.5)
    # row 0: online argmax = 1 -> target 3.0 -> 1 + 0.5 * 3 = 2.5 (not max target 10)
    # row 1: online argmax = 0 -> target 4.0 -> -0.5 + 2 = 1.5
    # row 2: terminal -> 2.0
    assert torch.allclose(y, torch.tensor([2.5, 1.5, 2.0]))


class _Linear(nn.Module):
    """Q(pool, state) = w * pool[..., 0] + state.sum() * 0: Q-values set by hand."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(w)))

    def forward(self, pool, state, mask=None):  # ignores the mask: padding scores as is
        return self.w * pool[..., 0] + 0 * state.sum()


def test_dqn_update_huber_loss_by_hand():
    policy, target = _Linear(1.0), _Linear(2.0)
    pool = torch.tensor([[[1.0], [3.0]], [[0.5], [-2.0]]])  # [B=2, N=2, 1]
    next_pool = torch.tensor([[[2.0], [1.0]], [[0.0], [0.0]]])
    batch = Batch(
        state=torch.zeros(2, 1, 1),
        pool=pool,
        action=torch.tensor([1, 0]),
        reward=torch.tensor([0.5, 1.0]),
        next_state=torch.zeros(2, 1, 1),
        next_pool=next_pool,
        done=torch.tensor([False, True]),
    )
    opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    loss = dqn_update(policy, target, opt, batch, gamma=0.5)
    # Q(s,a): row 0 -> 3.0, row 1 -> 0.5
    # y: row 0: online argmax over [2, 1] = 0 -> target 2*2 = 4 -> 0.5 + 0.5*4 = 2.5; row 1: 1.0
    # errors 0.5 and -0.5 -> Huber 0.5 * 0.25 = 0.125 each -> mean 0.125
    assert loss == pytest.approx(0.125)
    # gradient: mean(err * dQ/dw) = (0.5 * 3 + (-0.5) * 0.5) / 2 = 0.625 -> w = 1 - 0.0625
    assert policy.w.item() == pytest.approx(1.0 - 0.1 * 0.625)
    assert target.w.item() == 2.0
    # Huber's linear part: error 3 -> loss 2.5
    batch2 = batch._replace(reward=torch.tensor([5.5, 3.5]), done=torch.tensor([True, True]))
    policy.w.data.fill_(1.0)
    assert dqn_update(policy, target, opt, batch2, gamma=0.5) == pytest.approx((2.0 + 2.5) / 2)


def test_dqn_update_with_query_network_runs_and_syncs():
    torch.manual_seed(0)
    policy, target = QueryNetwork(8, 6, 20, kl_dim=4), QueryNetwork(8, 6, 20, kl_dim=4)
    sync_target(policy, target)
    for a, b in zip(policy.state_dict().values(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    buf = ReplayBuffer(capacity=50, generator=0)
    state, next_state = torch.rand(6, 8), torch.rand(6, 8)
    buf.push_step(
        state,
        torch.rand(4, 5, 20),
        torch.tensor([0, 1, 2, 3]),
        1.0,
        next_state,
        torch.rand(4, 5, 20),
    )
    buf.push_step(next_state, torch.rand(4, 5, 20), torch.tensor([4, 0, 1, 2]), -1.0, None, None)
    opt = torch.optim.SGD(policy.parameters(), lr=1e-3, momentum=0.95)
    before = [p.clone() for p in policy.parameters()]
    for _ in range(3):
        loss = dqn_update(policy, target, opt, buf.sample(5), gamma=0.999, grad_clip=10.0)
        assert math.isfinite(loss)
    assert policy.training and not target.training
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))


def test_select_actions_greedy_and_random():
    torch.manual_seed(1)
    net = QueryNetwork(8, 6, 20, kl_dim=4)
    pools, state = torch.rand(40, 7, 20), torch.rand(6, 8)
    net.eval()
    with torch.no_grad():
        expected = net(pools, state).argmax(1)
    net.train()
    greedy = select_actions(net, pools, state, epsilon=0.0, chunk=16)
    assert torch.equal(greedy, expected)
    assert net.training  # mode restored
    gen = torch.Generator().manual_seed(5)
    rand = select_actions(net, pools, state, epsilon=1.0, generator=gen)
    again = select_actions(
        net, pools, state, epsilon=1.0, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(rand, again)
    assert rand.shape == (40,) and rand.min() >= 0 and rand.max() < 7
    many = torch.cat([select_actions(net, pools, state, 1.0, gen) for _ in range(50)])
    counts = torch.bincount(many, minlength=7).float()
    assert counts.min() > 0.7 * counts.mean()  # ~uniform: 2000 draws over 7 indices


def test_double_dqn_target_argmax_never_picks_padding():
    reward = torch.tensor([1.0, 0.0, 2.0])
    big = 1e30
    online = torch.tensor([[0.1, 0.9, big], [5.0, big, big], [0.0, big, 1.0]])
    target = torch.tensor([[10.0, 3.0, -99.0], [4.0, -99.0, -99.0], [7.0, -99.0, 6.0]])
    mask = torch.tensor([[True, True, False], [True, False, False], [True, False, True]])
    done = torch.zeros(3, dtype=torch.bool)
    y = double_dqn_target(reward, online, target, done, gamma=0.5, next_mask=mask)
    # argmax over the real candidates: 1, 0, 2 -> targets 3, 4, 6
    assert torch.allclose(y, torch.tensor([2.5, 2.0, 5.0]))
    unmasked = double_dqn_target(reward, online, target, done, gamma=0.5)
    assert torch.allclose(unmasked, reward - 49.5)  # without the mask the padding would win
    all_true = torch.ones(3, 3, dtype=torch.bool)
    assert torch.equal(
        double_dqn_target(reward, online, target, done, 0.5, all_true), unmasked
    )


def test_dqn_update_ignores_huge_padding_in_the_next_pools():
    """A net that scores padding as it would a candidate (huge features -> huge Q): the masked
    online argmax still picks among the real candidates."""
    policy, target = _Linear(1.0), _Linear(2.0)
    pool = torch.tensor([[[1.0], [3.0], [0.0]], [[0.5], [0.0], [0.0]]])  # sizes 2 and 1
    next_pool = torch.tensor([[[2.0], [1.0], [1e6]], [[0.5], [1e6], [1e6]]])  # sizes 2 and 1
    batch = Batch(
        state=torch.zeros(2, 1, 1),
        pool=pool,
        action=torch.tensor([1, 0]),
        reward=torch.tensor([0.5, 1.0]),
        next_state=torch.zeros(2, 1, 1),
        next_pool=next_pool,
        done=torch.tensor([False, False]),
        pool_mask=torch.tensor([[True, True, False], [True, False, False]]),
        next_pool_mask=torch.tensor([[True, True, False], [True, False, False]]),
    )
    opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    loss = dqn_update(policy, target, opt, batch, gamma=0.5)
    # Q(s, a) = 3.0 and 0.5; y = 0.5 + 0.5 * 2 * 2 = 2.5 and 1 + 0.5 * 2 * 0.5 = 1.5
    # errors 0.5 and -1.0 -> Huber (0.125 + 0.5) / 2
    assert loss == pytest.approx((0.125 + 0.5) / 2)


def _mixed_buffer(seed=0):
    gen = torch.Generator().manual_seed(seed)
    buf = ReplayBuffer(capacity=64, generator=seed)
    sizes = [7, 6, 4, 3]  # a shrinking pool, the last step terminal
    states = [torch.rand(6, 8, generator=gen) for _ in sizes]
    pools = [torch.rand(4, n, 20, generator=gen) for n in sizes]
    for t, n in enumerate(sizes):
        last = t == len(sizes) - 1
        buf.push_step(states[t], pools[t], torch.randint(n, (4,), generator=gen), float(t),
                      None if last else states[t + 1], None if last else pools[t + 1])
    return buf


def _nets(seed=0):
    torch.manual_seed(seed)
    policy, target = QueryNetwork(8, 6, 20, kl_dim=4), QueryNetwork(8, 6, 20, kl_dim=4)
    target(torch.rand(3, 5, 20), torch.rand(3, 6, 8))  # distinct running statistics
    return policy, target


def test_dqn_update_on_padded_batch_does_not_depend_on_the_padding():
    """Same padded batch with zeros or with huge values in the padding: same loss, same
    updated policy, bit for bit (padding never enters a computation)."""
    batch = _mixed_buffer().sample(12)
    assert not batch.pool_mask.all() and not batch.next_pool_mask[~batch.done].all()
    garbage = batch._replace(
        pool=batch.pool.masked_fill(~batch.pool_mask.unsqueeze(2), 1e6),
        next_pool=batch.next_pool.masked_fill(~batch.next_pool_mask.unsqueeze(2), -1e6),
    )
    results = []
    for b in (batch, garbage):
        policy, target = _nets()
        opt = torch.optim.SGD(policy.parameters(), lr=1e-2, momentum=0.9)
        losses = [dqn_update(policy, target, opt, b, gamma=0.9) for _ in range(3)]
        results.append((losses, policy.state_dict()))
    assert all(math.isfinite(x) for x in results[0][0])
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1].values(), results[1][1].values(), strict=True):
        assert torch.equal(a, b)


def test_dqn_update_unpadded_batch_is_bit_identical_with_or_without_masks():
    buf = ReplayBuffer(capacity=50, generator=0)
    gen = torch.Generator().manual_seed(2)
    s0, s1 = torch.rand(6, 8, generator=gen), torch.rand(6, 8, generator=gen)
    buf.push_step(s0, torch.rand(4, 5, 20, generator=gen), torch.tensor([0, 1, 2, 3]), 1.0, s1,
                  torch.rand(4, 5, 20, generator=gen))
    buf.push_step(s1, torch.rand(4, 5, 20, generator=gen), torch.tensor([4, 0, 1, 2]), -1.0,
                  None, None)
    batch = buf.sample(6)
    assert batch.pool_mask.all()
    results = []
    for b in (batch, batch._replace(pool_mask=None, next_pool_mask=None)):
        policy, target = _nets()
        opt = torch.optim.SGD(policy.parameters(), lr=1e-2, momentum=0.9)
        losses = [dqn_update(policy, target, opt, b, gamma=0.9) for _ in range(2)]
        results.append((losses, policy.state_dict()))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1].values(), results[1][1].values(), strict=True):
        assert torch.equal(a, b)
