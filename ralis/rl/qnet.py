"""The RALIS query network (reference section 5.1).

Every layer is pre-activation: ``BatchNorm -> ReLU -> 1x1 Conv1d`` (a fully-connected layer
shared over regions / candidates, channels first).

* state path, per state region: ``Ds -> 256 -> 128 -> 1``, flattened to ``[B, R_S]``, then
  ``BN(R_S) -> ReLU -> Linear(R_S, 128)``: one 128-d state embedding per pool;
* action path, per candidate, on the first ``action_dim - kl_dim`` features:
  ``-> 512 -> 256 -> 128``;
* fusion: ``[state emb | action emb]`` (256 channels) ``-> BN -> 1x1 conv -> 1``: score ``s``;
* gate, from the last ``kl_dim`` features (the two KL histograms):
  ``BN -> ReLU -> 1x1 conv -> 1 -> sigmoid``: ``g``;
* output ``Q = g * s`` (``Q = s`` when ``kl_dim == 0``, the no-KL ablation).

Pools of different sizes are batched zero-padded with a candidate mask (see
:meth:`QueryNetwork.forward`): the per-candidate layers then run on the real candidates only, so
padding changes neither their Q-values nor the BatchNorm statistics in training mode.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["QueryNetwork"]


def _preact(in_ch: int, out_ch: int) -> nn.Sequential:
    """``BN(in) -> ReLU -> 1x1 Conv1d(in, out)`` on ``[B, in, L]``."""
    return nn.Sequential(nn.BatchNorm1d(in_ch), nn.ReLU(), nn.Conv1d(in_ch, out_ch, kernel_size=1))


class QueryNetwork(nn.Module):
    """Q-values of the candidates of a pool, given the state.

    Args:
        state_dim: ``Ds``, features per state region (``C + 1 + 192`` in the paper).
        num_state_regions: ``R_S``, regions in the state (10 images x regions per image).
        action_dim: ``Da``, features per candidate (``C + 1 + 192 + 64``).
        kl_dim: trailing KL-histogram features of a candidate that feed the gate (64);
            0 disables the gate and feeds all ``action_dim`` features to the action path.

    ``forward(pool [B, N, Da], state [B, R_S, Ds] or [R_S, Ds], mask [B, N] | None)
    -> q [B, N]``.
    """

    def __init__(
        self, state_dim: int, num_state_regions: int, action_dim: int, kl_dim: int = 64
    ) -> None:
        super().__init__()
        if min(state_dim, num_state_regions, action_dim) < 1 or kl_dim < 0:
            raise ValueError(
                "QueryNetwork needs positive state_dim, num_state_regions and action_dim "
                f"and kl_dim >= 0, got {state_dim}, {num_state_regions}, {action_dim}, {kl_dim}"
            )
        if kl_dim >= action_dim:
            raise ValueError(f"kl_dim ({kl_dim}) must be smaller than action_dim ({action_dim})")
        self.state_dim = state_dim
        self.num_state_regions = num_state_regions
        self.action_dim = action_dim
        self.kl_dim = kl_dim
        self.state_path = nn.Sequential(_preact(state_dim, 256), _preact(256, 128), _preact(128, 1))
        self.state_head = nn.Sequential(
            nn.BatchNorm1d(num_state_regions), nn.ReLU(), nn.Linear(num_state_regions, 128)
        )
        self.action_path = nn.Sequential(
            _preact(action_dim - kl_dim, 512), _preact(512, 256), _preact(256, 128)
        )
        self.fusion = nn.Sequential(nn.BatchNorm1d(256), nn.Conv1d(256, 1, kernel_size=1))
        self.gate = _preact(kl_dim, 1) if kl_dim > 0 else None

    def config(self) -> dict[str, Any]:
        """Constructor arguments: ``QueryNetwork(**net.config())`` rebuilds the architecture."""
        return {
            "state_dim": self.state_dim,
            "num_state_regions": self.num_state_regions,
            "action_dim": self.action_dim,
            "kl_dim": self.kl_dim,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> QueryNetwork:
        return cls(**config)

    def embed_state(self, state: torch.Tensor) -> torch.Tensor:
        """``[B, R_S, Ds]`` -> ``[B, 128]``."""
        x = self.state_path(state.transpose(1, 2))  # [B, 1, R_S]
        return self.state_head(x.flatten(1))

    def forward(
        self, pool: torch.Tensor, state: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Q-value of every candidate.

        Args:
            pool: ``[B, N, Da]`` candidate features of ``B`` pools.
            state: ``[B, R_S, Ds]``, or ``[R_S, Ds]`` shared by all pools. In training mode a
                shared state is repeated ``B`` times (as the authors do, so BatchNorm sees
                the same statistics); in eval mode it is embedded once and broadcast.
            mask: ``[B, N]`` bool, true on real candidates, for pools of different sizes
                zero-padded to ``N`` (``None``: all real). The per-candidate layers (action
                path, fusion, gate) then run on the ``C`` real candidates alone, packed into one
                ``[1, *, C]`` sequence, each with its own pool's state embedding: in training
                mode BatchNorm normalises over exactly those candidates, as if the pools had
                been batched without padding; the state path still sees the ``B`` states.
                An all-true mask takes the unpadded computation unchanged.

        Returns:
            ``[B, N]``; ``-inf`` at padded positions, so an ``argmax`` never picks them.
        """
        if pool.dim() != 3 or pool.shape[2] != self.action_dim:
            raise ValueError(f"pool must be [B, N, {self.action_dim}], got {tuple(pool.shape)}")
        expected = (self.num_state_regions, self.state_dim)
        if state.dim() not in (2, 3) or tuple(state.shape[-2:]) != expected:
            raise ValueError(
                f"state must be [B, {expected[0]}, {expected[1]}] or {list(expected)}, "
                f"got {tuple(state.shape)}"
            )
        B, N = pool.shape[:2]
        if mask is not None:
            if mask.dtype != torch.bool or tuple(mask.shape) != (B, N):
                raise ValueError(
                    f"mask must be a bool [{B}, {N}] tensor, got {mask.dtype} "
                    f"{tuple(mask.shape)}"
                )
            mask = mask.to(pool.device)
            if bool(mask.all()):
                mask = None
            elif not bool(mask.any()):  # nothing to score
                return pool.new_full((B, N), -math.inf)
        if state.dim() == 2:
            if self.training:
                emb = self.embed_state(state.unsqueeze(0).expand(B, *expected))
            else:
                emb = self.embed_state(state.unsqueeze(0)).expand(B, -1)
        else:
            if state.shape[0] != B:
                raise ValueError(f"state batch {state.shape[0]} != pool batch {B}")
            emb = self.embed_state(state)
        if mask is None:  # every candidate real: [B, *, N] as is
            x = pool.transpose(1, 2)  # [B, Da, N]
            return self._score(x, emb.unsqueeze(2).expand(-1, -1, N))  # [B, N]
        owner = mask.nonzero()[:, 0]  # [C] pool of each real candidate, in mask order
        x = pool[mask].t().unsqueeze(0)  # [1, Da, C]
        q = self._score(x, emb[owner].t().unsqueeze(0)).squeeze(0)  # [C]
        return q.new_full((B, N), -math.inf).masked_scatter(mask, q)

    def _score(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Per-candidate layers: ``x [B', Da, L]`` and state embeddings ``[B', 128, L]``
        -> ``[B', L]``."""
        n_act = self.action_dim - self.kl_dim
        act = self.action_path(x[:, :n_act])  # [B', 128, L]
        fused = torch.cat([emb, act], dim=1)
        score = self.fusion(fused).squeeze(1)  # [B', L]
        if self.gate is None:
            return score
        gate = torch.sigmoid(self.gate(x[:, n_act:])).squeeze(1)
        return gate * score
