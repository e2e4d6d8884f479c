"""Uncertainty measures of class probabilities as pure tensor functions (natural log)."""

from __future__ import annotations

import torch

EPS = 1e-12


def pixel_entropy(probs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Shannon entropy of class probabilities: ``probs [N, C, H, W]`` -> ``[N, H, W]``."""
    return -(probs * (probs + EPS).log()).sum(dim)


def entropy_from_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``logits [N, C, H, W]`` -> ``(probs [N, C, H, W], entropy [N, H, W])`` in one softmax."""
    log_probs = logits.float().log_softmax(1)
    probs = log_probs.exp()
    return probs, -(probs * log_probs).sum(1)


def bald(mc_probs: torch.Tensor) -> torch.Tensor:
    """BALD mutual information from T MC samples.

    ``mc_probs [T, N, C, H, W]`` -> ``[N, H, W]`` = H(mean_t p) - mean_t H(p_t).
    """
    mean_probs = mc_probs.mean(0)
    expected_entropy = pixel_entropy(mc_probs, dim=2).mean(0)
    return (pixel_entropy(mean_probs, dim=1) - expected_entropy).clamp_min(0)
