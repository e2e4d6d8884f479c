"""A policy's scores for one step's candidates, whatever kind of scorer it holds (the paper's
query network or an entropy-started scorer); shared by agent training, held-out episodes and
``ralis simulate --strategy ralis``."""

from __future__ import annotations

import torch
from torch import nn

from ralis.game.base import Observation
from ralis.rl.dqn import greedy_actions
from ralis.rl.observe import FeatureSpec
from ralis.rl.scorers import EntropyResidual, descriptor

__all__ = ["policy_scores", "residual_inputs"]


def residual_inputs(obs: Observation, spec: FeatureSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """``(entropy [K, N], descriptor [K, N, C + 4])``: what an entropy-started scorer reads."""
    return obs.entropy, descriptor(obs.regional, obs.labelled, spec)


@torch.no_grad()
def policy_scores(net: nn.Module, obs: Observation, spec: FeatureSpec,
                  device: str = "cpu") -> torch.Tensor:
    """``[K, N]`` scores (eval mode); each pool's argmax is the policy's pick. A query network's
    scores are the one-hot of its greedy picks (:func:`ralis.rl.dqn.greedy_actions`)."""
    if isinstance(net, EntropyResidual):
        was = net.training
        net.eval()
        try:
            entropy, desc = residual_inputs(obs, spec)
            return net(entropy.to(device), desc.to(device)).cpu()
        finally:
            net.train(was)
    actions = greedy_actions(net, obs.actions.to(device), obs.state.to(device))
    return torch.nn.functional.one_hot(actions, obs.pools.shape[1]).float()
