"""Replay buffer of decomposed per-pool transitions (reference section 5.3).

One active-learning step with ``K`` pools yields ``K`` transitions
``(state, pool_k, action_k, reward, next_state, next_pool_k)``. They all share ``state``,
``next_state`` and ``reward``, so the buffer stores each step once (its tensors by reference)
and a transition is just ``(step id, k)``; a step is dropped when its last transition is
overwritten. Memory therefore grows with the number of steps held, not K-fold.

Pools need not all have the same size ``N``: near the end of an episode fewer than ``K x N``
unlabelled regions remain and :meth:`RegionPool.sample_candidates` shrinks ``N`` (and a step's
next pools may be smaller than its pools). :meth:`ReplayBuffer.sample` then zero-pads the pools
to the batch's largest size and says which candidates are real in ``pool_mask`` /
``next_pool_mask``; :class:`~ralis.rl.qnet.QueryNetwork` and :func:`~ralis.rl.dqn.dqn_update`
use the masks so the padding changes nothing (not even BatchNorm statistics).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

__all__ = ["Batch", "ReplayBuffer"]


class Batch(NamedTuple):
    """A minibatch of ``B`` transitions (stacked tensors).

    ``N`` is the largest pool size in the batch and ``N'`` the largest next-pool size (``N``
    when every transition is terminal); smaller pools are zero-padded, and the masks are true
    on real candidates. A batch built by hand may leave the masks ``None`` (no padding).
    """

    state: torch.Tensor  # [B, R_S, Ds]
    pool: torch.Tensor  # [B, N, Da], zeros where padded
    action: torch.Tensor  # [B] int64, index into the pool
    reward: torch.Tensor  # [B] float32
    next_state: torch.Tensor  # [B, R_S, Ds], zeros where done
    next_pool: torch.Tensor  # [B, N', Da], zeros where done or padded
    done: torch.Tensor  # [B] bool: terminal transition (no next state)
    pool_mask: torch.Tensor | None = None  # [B, N] bool: real candidates of ``pool``
    next_pool_mask: torch.Tensor | None = None  # [B, N'] bool; all false where done


class ReplayBuffer:
    """Circular buffer of per-pool transitions, stored per AL step.

    Args:
        capacity: maximum number of transitions (the oldest are overwritten).
        generator: a ``torch.Generator`` or an integer seed for sampling (default seed 0).

    Tensors are kept by reference (detached), not copied: do not modify them in place after
    pushing. Passing the same tensor object as one step's ``next_state`` and the next step's
    ``state`` stores it once.
    """

    def __init__(self, capacity: int, generator: torch.Generator | int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        if isinstance(generator, torch.Generator):
            self.generator = generator
        else:
            self.generator = torch.Generator().manual_seed(0 if generator is None else generator)
        self._entries: list[tuple[int, int]] = []  # (step id, pool index k), circular
        self._position = 0  # next slot to overwrite once full
        self._steps: dict[int, dict[str, Any]] = {}
        self._next_step_id = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def num_steps(self) -> int:
        """Steps (shared state tensors) currently held."""
        return len(self._steps)

    def push_step(
        self,
        state: torch.Tensor,
        pools: torch.Tensor,
        actions: torch.Tensor,
        reward: float,
        next_state: torch.Tensor | None,
        next_pools: torch.Tensor | None,
    ) -> None:
        """Store the ``K`` transitions of one AL step.

        Args:
            state: ``[R_S, Ds]`` state at step t.
            pools: ``[K, N, Da]`` the step's candidate pools.
            actions: ``[K]`` chosen index in each pool.
            reward: the step's reward (shared by the K transitions).
            next_state: ``[R_S, Ds]`` state at t+1, or ``None`` for a terminal step.
            next_pools: ``[K, N', Da]`` pools at t+1 (pool k pairs with pool k; ``N'`` may
                differ from ``N``), ``None`` iff ``next_state`` is ``None``.
        """
        actions = torch.as_tensor(actions, dtype=torch.long).reshape(-1)
        if pools.dim() != 3 or state.dim() != 2 or pools.shape[0] != actions.shape[0]:
            raise ValueError(
                f"expected state [R_S, Ds], pools [K, N, Da] and actions [K], got "
                f"{tuple(state.shape)}, {tuple(pools.shape)} and {tuple(actions.shape)}"
            )
        if (next_state is None) != (next_pools is None):
            raise ValueError("next_state and next_pools must both be given or both be None")
        if next_state is not None and (
            next_state.shape != state.shape
            or next_pools.dim() != 3
            or next_pools.shape[0] != pools.shape[0]
            or next_pools.shape[2] != pools.shape[2]
        ):
            raise ValueError(
                f"next_state {tuple(next_state.shape)} / next_pools {tuple(next_pools.shape)} "
                f"do not match state {tuple(state.shape)} / pools {tuple(pools.shape)}"
            )
        step_id = self._next_step_id
        self._next_step_id += 1
        self._steps[step_id] = {
            "state": state.detach(),
            "pools": pools.detach(),
            "actions": actions.detach().cpu(),
            "reward": float(reward),
            "next_state": None if next_state is None else next_state.detach(),
            "next_pools": None if next_pools is None else next_pools.detach(),
            "refs": 0,
        }
        for k in range(actions.shape[0]):
            self._add((step_id, k))
        if self._steps[step_id]["refs"] == 0:  # everything already overwritten (K > capacity)
            del self._steps[step_id]

    def _add(self, entry: tuple[int, int]) -> None:
        self._steps[entry[0]]["refs"] += 1
        if len(self._entries) < self.capacity:
            self._entries.append(entry)
            return
        old = self._entries[self._position]
        self._entries[self._position] = entry
        self._position = (self._position + 1) % self.capacity
        step = self._steps[old[0]]
        step["refs"] -= 1
        if step["refs"] == 0:
            del self._steps[old[0]]

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` distinct transitions drawn uniformly (without replacement).

        Pools of different sizes are zero-padded to the largest (see :class:`Batch`); when
        all have the same size the tensors are plain stacks and the masks all true.
        """
        if not 1 <= batch_size <= len(self):
            raise ValueError(f"cannot sample {batch_size} transitions from {len(self)}")
        picks = torch.randperm(len(self), generator=self.generator)[:batch_size].tolist()
        steps = [self._steps[self._entries[i][0]] for i in picks]
        ks = [self._entries[i][1] for i in picks]
        state = torch.stack([s["state"] for s in steps])
        pool, pool_mask = _pad([s["pools"][k] for s, k in zip(steps, ks, strict=True)])
        done = torch.tensor([s["next_state"] is None for s in steps], dtype=torch.bool)
        zero_state = torch.zeros_like(state[0])
        next_state = torch.stack(
            [zero_state if s["next_state"] is None else s["next_state"] for s in steps]
        )
        live_sizes = [s["next_pools"].shape[1] for s in steps if s["next_pools"] is not None]
        width = max(live_sizes) if live_sizes else pool.shape[1]
        empty = pool.new_zeros(0, pool.shape[2])  # a terminal transition has no next candidate
        next_pool, next_pool_mask = _pad(
            [
                empty if s["next_pools"] is None else s["next_pools"][k]
                for s, k in zip(steps, ks, strict=True)
            ],
            width,
        )
        return Batch(
            state=state,
            pool=pool,
            action=torch.stack([s["actions"][k] for s, k in zip(steps, ks, strict=True)]),
            reward=torch.tensor([s["reward"] for s in steps], dtype=torch.float32),
            next_state=next_state,
            next_pool=next_pool,
            done=done,
            pool_mask=pool_mask,
            next_pool_mask=next_pool_mask,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (tensors by reference; ``torch.save`` stores a
        tensor shared between steps once). Loadable with ``torch.load(weights_only=True)``."""
        return {
            "capacity": self.capacity,
            "entries": [list(e) for e in self._entries],
            "position": self._position,
            "next_step_id": self._next_step_id,
            "steps": {sid: dict(step) for sid, step in self._steps.items()},
            "rng_state": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; later samples continue identically."""
        self.capacity = int(state["capacity"])
        self._entries = [(int(sid), int(k)) for sid, k in state["entries"]]
        self._position = int(state["position"])
        self._next_step_id = int(state["next_step_id"])
        self._steps = {int(sid): dict(step) for sid, step in state["steps"].items()}
        self.generator.set_state(state["rng_state"])


def _pad(rows: list[torch.Tensor], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack pools ``[N_i, Da]`` zero-padded to ``width`` (default: the largest ``N_i``).

    Returns ``([B, width, Da], mask [B, width] bool on the CPU, true on real rows)``. Pools
    that all have ``width`` rows are stacked as they are.
    """
    sizes = torch.tensor([r.shape[0] for r in rows], dtype=torch.long)
    width = int(sizes.max()) if width is None else width
    mask = torch.arange(width) < sizes.unsqueeze(1)  # [B, width]
    if bool((sizes == width).all()):
        return torch.stack(rows), mask
    flat = torch.cat(rows)  # [sum N_i, Da], pool after pool: the order of mask's true entries
    out = flat.new_zeros(len(rows), width, flat.shape[1])
    out[mask.to(flat.device)] = flat
    return out, mask
