"""The head game's classifier: multinomial logistic regression on frozen pixel features.

Pure tensor functions. ``P`` labelled pixels, ``F`` feature channels, ``C`` classes. Weights are
``[F + 1, C]``: one row per (standardised) feature plus a bias row. The fit is full batch and
deterministic: L-BFGS with a strong-Wolfe line search and a fixed iteration cap from a given
start, so the same pixels in the same order give the same weights bit for bit (on the same
device and thread count).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Standardizer", "head_logits", "head_loss", "fit_head", "zero_head"]


@dataclass(frozen=True)
class Standardizer:
    """Per-channel ``(x - mean) / std`` fixed once per game (from the start set's sample)."""

    mean: torch.Tensor  # [F]
    std: torch.Tensor  # [F]

    @classmethod
    def fit(cls, x: torch.Tensor, eps: float = 1e-6) -> Standardizer:
        """From features ``[P, F]``; constant channels get std 1."""
        x = x.float()
        std = x.std(0, unbiased=False)
        return cls(x.mean(0), torch.where(std > eps, std, torch.ones_like(std)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., F]`` -> ``[..., F]`` float32."""
        return (x.float() - self.mean) / self.std


def zero_head(num_features: int, num_classes: int) -> torch.Tensor:
    """The all-zero start ``[F + 1, C]`` (uniform predictions)."""
    return torch.zeros(num_features + 1, num_classes)


def head_logits(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Standardised features ``[P, F]`` and weights ``[F + 1, C]`` -> logits ``[P, C]``."""
    return torch.addmm(w[-1], x, w[:-1])


def head_loss(
    w: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    l2: float,
    class_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``y [P]`` under ``head_logits(x, w)`` plus ``l2 / 2 * |W|^2`` on the
    feature rows (not the bias). ``class_weight [C]``: a class-weighted mean, as
    ``F.cross_entropy``. Returns a scalar."""
    ce = F.cross_entropy(head_logits(x, w), y, weight=class_weight)
    return ce + 0.5 * l2 * (w[:-1] ** 2).sum()


def fit_head(
    x: torch.Tensor,
    y: torch.Tensor,
    start: torch.Tensor,
    l2: float = 1e-2,
    iterations: int = 25,
) -> torch.Tensor:
    """Refit the head on ``(x [P, F], y [P])`` from ``start [F + 1, C]``; returns ``[F + 1, C]``.

    Full-batch L-BFGS (history 10, strong-Wolfe line search) for at most ``iterations``
    iterations, stopping early only on a vanishing gradient or step (tolerances 1e-7 / 1e-9).
    The problem is strongly convex (L2 > 0), so every start reaches the same optimum; the cap
    bounds the cost.
    """
    if x.shape[0] != y.shape[0] or x.dim() != 2 or y.dim() != 1:
        raise ValueError(f"x must be [P, F] and y [P], got {tuple(x.shape)} and {tuple(y.shape)}")
    if tuple(start.shape) != (x.shape[1] + 1, start.shape[1]):
        raise ValueError(f"start must be [{x.shape[1] + 1}, C], got {tuple(start.shape)}")
    w = start.detach().clone().float().requires_grad_(True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iterations, history_size=10,
                            tolerance_grad=1e-7, tolerance_change=1e-9,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = head_loss(w, x, y, l2)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()
