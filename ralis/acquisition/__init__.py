"""Acquisition strategies (registry ``STRATEGIES``): random, entropy, BALD and the learned RALIS."""

from ralis.acquisition import baselines as _baselines  # noqa: F401  (registers strategies)
from ralis.acquisition import ralis_policy as _ralis  # noqa: F401
from ralis.acquisition.base import STRATEGIES, StepContext, Strategy, Timer, create_strategy

__all__ = ["STRATEGIES", "StepContext", "Strategy", "Timer", "create_strategy"]
