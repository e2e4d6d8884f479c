"""The learned RALIS strategy: a trained query network picks greedily in each pool."""

from __future__ import annotations

from pathlib import Path

import torch

from ralis.acquisition.base import STRATEGIES, StepContext, pick_per_pool
from ralis.errors import ConfigError
from ralis.files.header import FileFormatError
from ralis.rl.dqn import pool_q_values
from ralis.rl.observe import FeatureSpec, observe_pools, observe_state
from ralis.rl.policy import load_policy


@STRATEGIES.register("ralis")
class RalisStrategy:
    """Greedy actions of a policy from ``ralis train-agent`` (reference section 5.2, test mode)."""

    name = "ralis"
    needs: frozenset[str] = frozenset({"forward", "policy", "state_set", "labelled_gt"})

    def __init__(self, policy: Path | str | None = None) -> None:
        if policy is None:
            raise ConfigError(
                "--strategy ralis needs --policy PATH (a policy.safetensors from "
                "`ralis train-agent`)"
            )
        self.qnet, self.spec, self.meta = load_policy(Path(policy))
        self.path = Path(policy)
        self._checked = False

    def select(self, pools: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        proto, oracle = ctx.extras["protocol"], ctx.extras["oracle"]
        # the state set's regions (rectangles: the pool's grid)
        state_regions = proto.regions_of(proto.state)
        if not self._checked:
            here = FeatureSpec(num_classes=proto.num_classes, state_images=len(proto.state),
                               **FeatureSpec.layout(state_regions))
            self.spec.check_compatible(here, f"policy {self.path}")
            trained_on = self.meta.get("classes")
            if trained_on is not None and not (isinstance(trained_on, list) and all(
                    isinstance(c, str) for c in trained_on)):
                raise ConfigError(f"policy {self.path}: its record's class list is malformed")
            if trained_on and list(trained_on) != list(proto.classes.names):
                raise ConfigError(
                    f"policy {self.path} was trained on classes {', '.join(trained_on)}, but this "
                    f"run's classes are {', '.join(proto.classes.names)}; use a policy trained on "
                    "this dataset's classes")
            self.qnet.to(ctx.device)
            self._checked = True
        labelled = ctx.pool.labelled_ids()
        labelled_dist = oracle.region_distributions(labelled, proto.num_classes)
        with ctx.timer("forward"):
            state = observe_state(ctx.model, proto.state.images_u8, state_regions, self.spec,
                                  ctx.batch_size, ctx.device)
        feats = observe_pools(ctx.model, pools, ctx.images_u8, ctx.regions, labelled_dist,
                              self.spec, ctx.batch_size, ctx.device, ctx.timer)
        with ctx.timer("score"):
            q = pool_q_values(self.qnet, feats.to(ctx.device), state.to(ctx.device))
            if not bool(torch.isfinite(q).all()):  # finite weights can still overflow
                raise FileFormatError(
                    f"policy {self.path} gives NaN or infinite Q-values on this run's regions: "
                    "its weights are finite but too large (the file is damaged or crafted, or "
                    "its training diverged); use another policy")
            scores = torch.nn.functional.one_hot(q.argmax(dim=1).cpu(), pools.shape[1])
            return pick_per_pool(pools, scores)
