"""The RALIS query agent: features, query network, replay buffer and double-DQN pieces.

* :mod:`ralis.rl.state_features`, :mod:`ralis.rl.action_features` -- the state and action feature
  tensors (pure, vectorised; the class histograms they start from are
  :mod:`ralis.regions.histograms`);
* :mod:`ralis.rl.qnet` -- :class:`QueryNetwork`;
* :mod:`ralis.rl.replay` -- :class:`ReplayBuffer` of per-pool transitions;
* :mod:`ralis.rl.dqn` -- epsilon schedules, action selection, double-DQN target and update;
* :mod:`ralis.rl.observe`, :mod:`ralis.rl.scorers`, :mod:`ralis.rl.policy` -- a step's observation,
  the scorers over it (the paper's Q-network, the entropy-started scorer), policy files;
* :mod:`ralis.rl.credit`, :mod:`ralis.rl.search`, :mod:`ralis.rl.imitation` -- per-step credit
  targets, episode-level search, DAgger-style imitation.
"""

from ralis.rl.action_features import action_features, kl_histogram, kl_matrix, kl_to_set_histogram
from ralis.rl.dqn import (
    double_dqn_target,
    dqn_update,
    epsilon_schedule,
    greedy_actions,
    linear_epsilon,
    select_actions,
    sync_target,
)
from ralis.rl.qnet import QueryNetwork
from ralis.rl.replay import Batch, ReplayBuffer
from ralis.rl.state_features import pooled_entropy, region_features, state_features

__all__ = [
    "Batch",
    "QueryNetwork",
    "ReplayBuffer",
    "action_features",
    "double_dqn_target",
    "dqn_update",
    "epsilon_schedule",
    "greedy_actions",
    "kl_histogram",
    "kl_matrix",
    "kl_to_set_histogram",
    "linear_epsilon",
    "pooled_entropy",
    "region_features",
    "select_actions",
    "state_features",
    "sync_target",
]
