"""Credit for K simultaneous picks: value decomposition (VDN, Sunehag et al. 2018).

One reward pays a whole step of ``K`` picks. Instead of giving each pick that reward (the
paper's decomposition into K transitions, whose per-pick signal-to-noise is tiny), the sum of
the K chosen Q-values is regressed on it::

    sum_k Q(s, a_k)  ~  r + gamma * sum_k max_a' Q_target(s', a')

so each pick gets the share of the reward its value explains. Pure functions, plus a running
reward scale (state, hence a class).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["vdn_target", "vdn_loss", "RunningScale"]


def vdn_target(reward: torch.Tensor, next_value: torch.Tensor | None, gamma: float,
               clip: float | None = None) -> torch.Tensor:
    """``y [B] = r + gamma * next_value`` (``next_value [B]``: the sum over the next step's pools
    of the target net's best Q, 0 where the episode ended; ``None`` or ``gamma == 0``: ``y = r``),
    clipped to ``[-clip, clip]`` when ``clip`` is given."""
    y = reward.float()
    if next_value is not None and gamma:
        y = y + gamma * next_value.float()
    return y.clamp(-clip, clip) if clip is not None else y


def vdn_loss(q_chosen: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """Huber loss between ``sum_k q_chosen [B, K]`` (``mask [B, K]`` bool: real picks of a
    shorter step) and ``target [B]``; a scalar."""
    q = q_chosen if mask is None else q_chosen.masked_fill(~mask, 0.0)
    return F.smooth_l1_loss(q.sum(1), target.float())


class RunningScale:
    """Running standard deviation of the rewards seen (Welford), to scale them to unit size.

    ``scale(r) = r / max(sd, floor)``; before two rewards are seen the scale is 1.
    """

    def __init__(self, floor: float = 1e-3) -> None:
        self.n, self.mean, self.m2, self.floor = 0, 0.0, 0.0, floor

    def update(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 1.0

    def scale(self, value: torch.Tensor | float) -> torch.Tensor | float:
        return value / max(self.sd, self.floor)

    def state_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "m2": self.m2, "floor": self.floor}

    def load_state_dict(self, state: dict) -> None:
        self.n, self.mean = int(state["n"]), float(state["mean"])
        self.m2, self.floor = float(state["m2"]), float(state["floor"])
