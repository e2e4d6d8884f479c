"""The cross-entropy method (CEM): episode-level search of a parameter vector, pure functions.

A generation samples a population around a Gaussian ``(mean, std)`` (the mean itself first,
so the best so far is always re-measured), each member is scored (its fitness), and the
Gaussian moves toward the elite: ``mean <- (1 - s) * mean + s * elite mean``,
``std <- sqrt((1 - s) * std^2 + s * elite variance)``, floored at ``min_std``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["cem_population", "cem_update"]


def cem_population(mean: torch.Tensor, std: torch.Tensor, n: int,
                   generator: torch.Generator) -> torch.Tensor:
    """``[D]``, ``[D]`` -> ``[n, D]``: row 0 is ``mean``, the others ``mean + std * N(0, 1)``."""
    if n < 1:
        raise ValueError(f"a population needs at least one member, got {n}")
    noise = torch.randn(n - 1, mean.numel(), generator=generator, dtype=mean.dtype)
    return torch.cat([mean.unsqueeze(0), mean + std * noise])


def cem_update(population: torch.Tensor, fitness: torch.Tensor, mean: torch.Tensor,
               std: torch.Tensor, elite: float = 0.25, smoothing: float = 0.7,
               min_std: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian after one generation. ``population [n, D]``, ``fitness [n]`` (higher is
    better; ties keep population order); ``elite`` the share kept (at least one member)."""
    if population.shape[0] != fitness.numel():
        raise ValueError("one fitness per population member")
    k = max(1, math.ceil(elite * population.shape[0]))
    order = sorted(range(fitness.numel()), key=lambda i: (-float(fitness[i]), i))[:k]
    best = population[order]
    new_mean = (1 - smoothing) * mean + smoothing * best.mean(0)
    var = best.var(0, unbiased=False) if k > 1 else torch.zeros_like(mean)
    new_std = ((1 - smoothing) * std ** 2 + smoothing * var).sqrt().clamp_min(min_std)
    return new_mean, new_std
