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

    def forward(self, pool, state):
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
