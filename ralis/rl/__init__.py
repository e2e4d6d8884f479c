"""The RALIS query agent: features, query network, replay buffer and double-DQN pieces.

* :mod:`ralis.rl.features` -- state / action feature tensors (pure, vectorised);
* :mod:`ralis.rl.qnet` -- :class:`QueryNetwork`;
* :mod:`ralis.rl.replay` -- :class:`ReplayBuffer` of per-pool transitions;
* :mod:`ralis.rl.dqn` -- epsilon schedules, action selection, double-DQN target and update.
"""

from ralis.rl.dqn import (
    double_dqn_target,
    dqn_update,
    epsilon_schedule,
    greedy_actions,
    linear_epsilon,
    select_actions,
    sync_target,
)
from ralis.rl.features import (
    action_features,
    kl_histogram,
    kl_matrix,
    kl_to_set_histogram,
    normalize_histogram,
    pooled_entropy,
    region_class_distribution,
    region_class_histogram,
    region_features,
    state_features,
)
from ralis.rl.qnet import QueryNetwork
from ralis.rl.replay import Batch, ReplayBuffer

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
    "normalize_histogram",
    "pooled_entropy",
    "region_class_distribution",
    "region_class_histogram",
    "region_features",
    "select_actions",
    "state_features",
    "sync_target",
]
