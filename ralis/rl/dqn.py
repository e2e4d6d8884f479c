"""Double-DQN pieces of the RALIS agent (reference sections 5.2 and 5.5), one concept each.

A typical AL step of agent training::

    eps = epsilon_schedule(global_step)
    actions = select_actions(policy, pools, state, eps, generator)   # [K]
    ... label, train f, reward, next state / pools ...
    buffer.push_step(state, pools, actions, reward, next_state, next_pools)
    if len(buffer) >= batch_size:
        loss = dqn_update(policy, target, optimizer, buffer.sample(batch_size), gamma)
    if step_in_episode % 5 == 0:
        sync_target(policy, target)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ralis.rl.replay import Batch

__all__ = [
    "epsilon_schedule",
    "linear_epsilon",
    "double_dqn_target",
    "dqn_update",
    "select_actions",
    "greedy_actions",
    "pool_q_values",
    "sync_target",
]


def epsilon_schedule(
    step: int, start: float = 0.9, end: float = 0.05, decay: float = 10.0
) -> float:
    """The authors' exploration rate: ``end + (start - end) * exp(-step / decay)``.

    ``step`` counts AL steps globally (not reset per episode): 0.90 at 0, 0.36 at 10.
    """
    return end + (start - end) * math.exp(-step / decay)


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """Linear decay from ``start`` to ``end`` over ``duration`` steps, then ``end``."""
    if duration <= 0:
        return end
    return start + (end - start) * min(step / duration, 1.0)


def double_dqn_target(
    reward: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    done: torch.Tensor,
    gamma: float,
    next_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Double-DQN regression target.

    ``y = r + gamma * Q_target(s', argmax_a Q_online(s', a))`` for non-terminal transitions,
    ``y = r`` where ``done`` (their next-Q rows are ignored, even if NaN).

    Args:
        reward: ``[B]``.
        next_q_online: ``[B, N]`` online (policy) net on the next pools: selects the action.
        next_q_target: ``[B, N]`` target net on the next pools: evaluates it.
        done: ``[B]`` bool.
        next_mask: ``[B, N]`` bool, true on real candidates of zero-padded next pools
            (``None``: all real). The argmax only considers real candidates, whatever values
            the nets put at padded positions; a non-terminal row needs at least one.

    Returns:
        ``[B]`` in ``reward``'s dtype.
    """
    if next_mask is not None:
        next_mask = next_mask.to(next_q_online.device)
        next_q_online = next_q_online.masked_fill(~next_mask, -math.inf)
    best = next_q_online.argmax(dim=1, keepdim=True)
    bootstrap = next_q_target.gather(1, best).squeeze(1).to(reward.dtype)
    return torch.where(done, reward, reward + gamma * bootstrap)


def _q_values(
    net: nn.Module, pool: torch.Tensor, state: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """``net(pool, state)``, with ``mask=`` only when some candidate is padding (so an unpadded
    batch runs exactly as before, and nets that never see padding need not take a mask)."""
    if mask is None or bool(mask.all()):
        return net(pool, state)
    return net(pool, state, mask=mask)


def dqn_update(
    policy: nn.Module,
    target: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    gamma: float,
    grad_clip: float | None = None,
) -> float:
    """One double-DQN gradient step on a minibatch; returns the Huber loss.

    The policy is put in train mode (as the authors do: BatchNorm uses batch statistics,
    also for the online argmax over the next pools) and the target in eval mode; no
    gradient flows through the target ``y``. Only non-terminal rows go through the
    next-state forwards; if a single one remains, the online argmax for it runs in eval mode
    (BatchNorm cannot normalise a batch of one).

    Pools of different sizes (zero-padded, with ``batch.pool_mask`` / ``next_pool_mask``) are
    scored with their masks (:meth:`QueryNetwork.forward <ralis.rl.qnet.QueryNetwork.forward>`):
    BatchNorm statistics are over the real candidates only and the online argmax never picks
    padding. A batch without padding is computed exactly as without masks.

    Args:
        policy, target: query networks, ``net(pool [B, N, Da], state [B, R_S, Ds]) -> [B, N]``;
            given a padded batch they are called with ``mask=[B, N] bool`` as well.
        batch: from :meth:`ReplayBuffer.sample`.
        gamma: discount (0.999 in the paper).
        grad_clip: clip the policy's gradient norm to this value (``None``: no clipping).

    Returns:
        The loss, ``smooth_l1(Q_policy(s, a), y)`` averaged over the batch.
    """
    policy.train()
    target.eval()
    device = next(policy.parameters()).device
    batch = Batch(*(None if t is None else t.to(device) for t in batch))
    reward = batch.reward.float()
    with torch.no_grad():
        y = reward.clone()
        live = (~batch.done).nonzero().squeeze(1)
        if live.numel():
            pool, state = batch.next_pool[live], batch.next_state[live]
            mask = None if batch.next_pool_mask is None else batch.next_pool_mask[live]
            if live.numel() == 1:
                policy.eval()
            q_online = _q_values(policy, pool, state, mask)
            policy.train()
            q_target = _q_values(target, pool, state, mask)
            done = torch.zeros(live.numel(), dtype=torch.bool, device=device)
            y[live] = double_dqn_target(reward[live], q_online, q_target, done, gamma, mask)
    q_all = _q_values(policy, batch.pool, batch.state, batch.pool_mask)
    q = q_all.gather(1, batch.action.long().unsqueeze(1)).squeeze(1)
    loss = F.smooth_l1_loss(q, y)
    optimizer.zero_grad()
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
@torch.no_grad()
def pool_q_values(
    qnet: nn.Module, pools: torch.Tensor, state: torch.Tensor, chunk: int = 16
) -> torch.Tensor:
    """The Q-values of each pool's actions: ``pools [K, N, Da]`` -> ``[K, N]``.

    Runs the net in eval mode, ``chunk`` pools at a time (its mode is restored afterwards).
    """
    was_training = qnet.training
    qnet.eval()
    try:
        out = [qnet(pools[i : i + chunk], state) for i in range(0, pools.shape[0], chunk)]
    finally:
        qnet.train(was_training)
    return torch.cat(out)


def greedy_actions(
    qnet: nn.Module, pools: torch.Tensor, state: torch.Tensor, chunk: int = 16
) -> torch.Tensor:
    """``argmax`` of the Q-values of each pool: ``pools [K, N, Da]`` -> ``[K]`` int64."""
    return pool_q_values(qnet, pools, state, chunk).argmax(dim=1).long().cpu()


def select_actions(
    qnet: nn.Module,
    pools: torch.Tensor,
    state: torch.Tensor,
    epsilon: float,
    generator: torch.Generator | None = None,
    chunk: int = 16,
) -> torch.Tensor:
    """Epsilon-greedy actions for one AL step, one per pool.

    With probability ``epsilon`` *all* ``K`` sub-actions are uniform random within their
    pools, otherwise all are greedy (:func:`greedy_actions`), as the authors do.

    Args:
        pools: ``[K, N, Da]``.
        state: ``[R_S, Ds]`` shared by all pools.
        generator: randomness (coin and random picks); ``None`` uses torch's global RNG.

    Returns:
        ``[K]`` int64 indices in ``[0, N)``, on the CPU.
    """
    K, N = pools.shape[:2]
    explore = float(torch.rand((), generator=generator)) < epsilon
    if explore:
        return torch.randint(N, (K,), generator=generator)
    return greedy_actions(qnet, pools, state, chunk)


@torch.no_grad()
def sync_target(policy: nn.Module, target: nn.Module) -> None:
    """Hard copy of the policy's parameters and buffers (BatchNorm statistics) into the target."""
    target.load_state_dict(policy.state_dict())
