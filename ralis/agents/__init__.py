"""Query-agent learners, one module each, by ``agent.mode`` (:mod:`ralis.agents.base`)."""

from ralis.agents.credit import CreditTrainer
from ralis.agents.dqn import DQNTrainer
from ralis.agents.imitation import ImitationTrainer
from ralis.agents.search import SearchTrainer
from ralis.registry import Registry

TRAINERS: Registry = Registry("agent mode")
TRAINERS.register("faithful")(DQNTrainer)
TRAINERS.register("fixed")(DQNTrainer)
TRAINERS.register("credit")(CreditTrainer)
TRAINERS.register("search")(SearchTrainer)
TRAINERS.register("imitation")(ImitationTrainer)

__all__ = ["TRAINERS"]
