"""Query scorers that start from entropy: ``score = z(entropy) + residual(z(descriptor))``.

The entropy baseline is hard to beat (``docs/results/agent-v6/NOTES.md``), so these scorers
start *at* it: with a zero residual they pick, in every pool, the candidate of highest mean
entropy, exactly as ``--strategy entropy`` does; learning moves them away from it only as far
as the reward pays. Both inputs are standardised over the step's candidates (``z``: minus the
mean, over the SD, across all ``K x N`` candidates of the step), so a scorer trained on one
model's outputs (the head game's linear head) ranks another model's (the network being
labelled for) on the same scale.

The descriptor of a candidate (``D = C + 4``; :func:`descriptor`):

* its predicted class shares ``p_c`` (``C``), from the query network's class histogram;
* the means of its min-, mean- and max-pooled entropy cells (3);
* rarity: ``sum_c p_c * -log(L_c + 0.01)`` with ``L_c`` the class shares of the pixels labelled
  so far (1): high where the candidate seems to hold classes the labels lack.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ralis.rl.observe import FeatureSpec

__all__ = ["descriptor", "standardize", "EntropyResidual", "descriptor_dim"]

RARITY_FLOOR = 0.01


def descriptor_dim(num_classes: int) -> int:
    return num_classes + 4


def standardize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``[K, N, ...]`` -> the same, minus the mean over the first two dimensions, over their SD
    (a constant column becomes 0)."""
    flat = x.reshape(-1, *x.shape[2:]).float()
    mean, std = flat.mean(0), flat.std(0, unbiased=False)
    return (x.float() - mean) / torch.where(std > eps, std, torch.ones_like(std))


def descriptor(actions: torch.Tensor, labelled: torch.Tensor, spec: FeatureSpec) -> torch.Tensor:
    """Candidate descriptors from the query network's action features.

    Args:
        actions: ``[K, N, Da]`` (:func:`ralis.rl.action_features.action_features` layout).
        labelled: ``[C]`` class shares of the labelled pixels (zeros when none yet).
        spec: the features' layout.

    Returns:
        ``[K, N, C + 4]`` float32 (not standardised).
    """
    C = spec.num_classes
    hist = actions[..., : C + 1].float()
    shares = hist / hist.sum(-1, keepdim=True).clamp_min(1e-12)
    p = shares[..., :C]
    cells = actions[..., C + 1: C + 1 + 64 * len(spec.poolings)].float()
    pooled = cells.reshape(*cells.shape[:-1], len(spec.poolings), 64).mean(-1)
    by_name = dict(zip(spec.poolings, pooled.unbind(-1), strict=True))
    mean = by_name.get("mean", pooled.mean(-1))
    ent = torch.stack([by_name.get("min", mean), mean, by_name.get("max", mean)], dim=-1)
    rarity = (p * -(labelled.float().to(p.device) + RARITY_FLOOR).log()).sum(-1, keepdim=True)
    return torch.cat([p, ent, rarity], dim=-1)


class EntropyResidual(nn.Module):
    """``score [K, N] = alpha * z(entropy) + beta + residual(z(descriptor))``.

    ``hidden = 0``: a linear residual ``z(desc) @ w`` (what episode-level search tunes, with
    ``alpha = 1``, ``beta = 0``); ``hidden > 0``: a two-layer MLP. ``alpha`` (start 1) and
    ``beta`` (start 0) let a value regression put the score on the reward's scale without
    changing the ranking. The residual's last layer starts at zero, so a new scorer ranks
    exactly like entropy.
    """

    def __init__(self, num_classes: int, hidden: int = 0) -> None:
        super().__init__()
        self.num_classes, self.hidden = int(num_classes), int(hidden)
        d = descriptor_dim(num_classes)
        if hidden:
            self.body = nn.Sequential(nn.Linear(d, hidden), nn.ReLU())
            self.out = nn.Linear(hidden, 1)
        else:
            self.body = nn.Identity()
            self.out = nn.Linear(d, 1, bias=False)
        nn.init.zeros_(self.out.weight)
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)
        self.alpha = nn.Parameter(torch.ones(()))
        self.beta = nn.Parameter(torch.zeros(()))

    def config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "hidden": self.hidden}

    def residual(self, desc_z: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` standardised descriptors -> ``[...]``."""
        return self.out(self.body(desc_z)).squeeze(-1)

    def forward(self, entropy: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
        """``entropy [K, N]`` and ``desc [K, N, D]`` (raw) -> scores ``[K, N]``."""
        return self.alpha * standardize(entropy) + self.beta + self.residual(standardize(desc))

    @property
    def weights(self) -> torch.Tensor:
        """A linear residual's ``w [D]`` (the search's parameter vector)."""
        if self.hidden:
            raise ValueError("only a linear residual (hidden=0) has a weight vector")
        return self.out.weight.detach().reshape(-1)

    @torch.no_grad()
    def set_weights(self, w: torch.Tensor) -> EntropyResidual:
        if self.hidden:
            raise ValueError("only a linear residual (hidden=0) has a weight vector")
        self.out.weight.copy_(w.reshape(1, -1))
        return self
