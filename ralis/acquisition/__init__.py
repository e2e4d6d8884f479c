"""Acquisition strategies (registry ``STRATEGIES``) and the scores they use."""

from ralis.acquisition import baselines as _baselines  # noqa: F401  (registers strategies)
from ralis.acquisition.base import STRATEGIES, StepContext, Strategy, Timer, create_strategy

__all__ = ["STRATEGIES", "StepContext", "Strategy", "Timer", "create_strategy"]
