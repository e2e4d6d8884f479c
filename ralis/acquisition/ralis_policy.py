"""The learned RALIS strategy: a trained policy picks greedily in each pool (the paper's query
network, or an entropy-started scorer from ``agent.mode=credit`` / ``search``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ralis.acquisition.base import STRATEGIES, StepContext, pick_per_pool
from ralis.errors import ConfigError
from ralis.files.header import FileFormatError
from ralis.models.inference import predict
from ralis.rl.dqn import pool_q_values
from ralis.rl.observe import FeatureSpec, candidate_regions, observe_pools, observe_state
from ralis.rl.policy import load_policy
from ralis.rl.scorers import EntropyResidual, descriptor


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
        if isinstance(self.qnet, EntropyResidual):
            return self._select_residual(pools, ctx, oracle, proto.num_classes)
        labelled = ctx.pool.labelled_ids()
        labelled_dist = oracle.region_distributions(labelled, proto.num_classes)
        with ctx.timer("forward"):
            state = observe_state(ctx.model, proto.state.images_u8, state_regions, self.spec,
                                  ctx.batch_size, ctx.device)
        feats = observe_pools(ctx.model, pools, ctx.images_u8, ctx.regions, labelled_dist,
                              self.spec, ctx.batch_size, ctx.device, ctx.timer)
        with ctx.timer("score"):
            q = self._finite(pool_q_values(self.qnet, feats.to(ctx.device), state.to(ctx.device)))
            scores = torch.nn.functional.one_hot(q.argmax(dim=1).cpu(), pools.shape[1])
            return pick_per_pool(pools, scores)

    def _select_residual(self, pools: torch.Tensor, ctx: StepContext, oracle,
                         num_classes: int) -> torch.Tensor:
        """An entropy-started scorer: one forward per candidate image gives each candidate's
        mean entropy and descriptor (:mod:`ralis.rl.scorers`)."""
        images, row_of, local = ctx.image_index(pools)
        with ctx.timer("forward"):
            pred = predict(ctx.model, ctx.images_u8[images], ctx.batch_size, ctx.device,
                           ctx.extras.get("amp", False))
        with ctx.timer("score"):
            regional = candidate_regions(pred, images, row_of, pools, ctx.regions, self.spec)
            entropy = ctx.regions.region_mean(pred.entropy, images)[row_of, local]
            desc = descriptor(regional, oracle.labelled_distribution(num_classes), self.spec)
            with torch.no_grad():
                scores = self._finite(self.qnet(entropy, desc))
            return pick_per_pool(pools, scores)

    def _finite(self, q: torch.Tensor) -> torch.Tensor:
        """The policy's scores, refused when not finite (finite weights can still overflow)."""
        if not bool(torch.isfinite(q).all()):
            raise FileFormatError(
                f"policy {self.path} gives NaN or infinite Q-values on this run's regions: "
                "its weights are finite but too large (the file is damaged or crafted, or "
                "its training diverged); use another policy")
        return q
