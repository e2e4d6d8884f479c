"""The head game: frozen start-model features, a linear head refit on every label so far.

Once per game, the start model's features (``forward_features``, the maps its classifier
reads) are computed for the game's pool, the start set, the state set and, when first asked
for, each scored split (:mod:`ralis.game.pixels`). A fixed seeded sample of the start set's
labelled pixels (``agent.head_sample``) stands for the labels the start model was trained on.
At each step the head, a multinomial logistic regression (:mod:`ralis.game.head_fit`), is refit
from the *start head* (the fit on that sample alone) on the sample plus the labelled pixels of
every region labelled in the episode, for at most ``agent.head_iterations`` L-BFGS iterations.
Fits read one feature pixel in ``agent.head_stride`` per direction (neighbours are nearly
copies of each other; stride 2 costs a quarter), the scores every pixel. The
reward is 100 x the change of the head's D_R mIoU, measured at feature resolution against the
block-majority labels: a function of the labelled set alone (the same regions give the same
reward bit for bit, whatever order they came in). A smoother signal is logged beside it: the
class-balanced cross-entropy of D_R (``last["reward_ce"]``).

The candidates' features come from the same head: its logits, upsampled to the image size,
give the predicted classes and entropy maps the query network's features are computed from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ralis.config import RunConfig
from ralis.data.pool import RegionPool
from ralis.data.protocol import ImageSet, Protocol
from ralis.errors import ConfigError
from ralis.game.base import GAMES, SPLIT_ROLES, Observation, episode_copy
from ralis.game.candidates import candidate_images, view_candidates
from ralis.game.head_fit import Standardizer, fit_head, head_logits, zero_head
from ralis.game.influence import (
    class_bias,
    influence_direction,
    pixel_influence,
    unlabelled_influence,
)
from ralis.game.pixels import PixelTable, extract_pixels
from ralis.metrics import confusion_matrix, mean_iou
from ralis.models.inference import Prediction
from ralis.rl.observe import FeatureSpec, state_from
from ralis.run.session import step_seed
from ralis.training.oracle import Oracle
from ralis.uncertainty import entropy_from_logits

__all__ = ["HeadGame", "split_scores"]

_ROWS = 1 << 16  # pixels per chunk when scoring a split


def split_scores(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, std: Standardizer,
                 num_classes: int) -> tuple[float, float]:
    """``(mIoU, class-balanced cross-entropy)`` of the head ``w`` on labelled pixels
    ``x [P, F]`` (raw features), ``y [P]`` (no void): one pass in chunks of rows."""
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long)
    ce_sum = torch.zeros(num_classes, dtype=torch.float64)
    for s in range(0, x.shape[0], _ROWS):
        logits = head_logits(std(x[s:s + _ROWS]), w)
        yy = y[s:s + _ROWS]
        conf += confusion_matrix(logits.argmax(1), yy, num_classes, -1)
        ce = F.cross_entropy(logits, yy, reduction="none").double()
        ce_sum += torch.bincount(yy, weights=ce, minlength=num_classes)
    counts = conf.sum(1).double()
    present = counts > 0
    balanced_ce = float((ce_sum[present] / counts[present]).mean())
    return mean_iou(conf), balanced_ce


def strided(table: PixelTable, stride: int) -> torch.Tensor:
    """``[rows]`` bool: the table's pixels on a ``stride`` grid (every ``stride``-th row and
    column of each image's feature map, from the first)."""
    h, w = table.size
    on = ((torch.arange(h) % stride == 0)[:, None] & (torch.arange(w) % stride == 0)[None, :])
    return on.reshape(-1).repeat(table.num_images)


class HeadGame:
    """The head game over ``game_images`` (the pool), from ``start_model`` trained on
    ``start_images``. ``seed`` fixes the start-set sample and, with each episode number, the
    candidate pools."""

    name = "head"

    def __init__(self, cfg: RunConfig, proto: Protocol, start_model: torch.nn.Module,
                 start_images: ImageSet, game_images: ImageSet, spec: FeatureSpec,
                 seed: int) -> None:
        a = cfg.agent
        self.cfg, self.proto, self.spec, self.seed = cfg, proto, spec, seed
        self.model = start_model
        self.C, self.ignore = proto.num_classes, proto.ignore_index
        self.images = game_images
        self.regions = proto.regions_of(game_images)
        self.budget = min(a.episode_budget, RegionPool(self.regions, len(game_images)).total_units)
        self.pool_table = self._table(game_images, self.regions)
        start = self._table(start_images)
        self.fit_rows = strided(self.pool_table, a.head_stride)
        keep = ((start.labels != self.ignore) & strided(start, a.head_stride)).nonzero()
        keep = keep.squeeze(1)
        g = torch.Generator().manual_seed(step_seed(seed, 0, "head-sample"))
        rows = keep[torch.randperm(keep.numel(), generator=g)[:a.head_sample]].sort().values
        if rows.numel() == 0:
            raise ConfigError("the head game's start set has no labelled pixel")
        self.std = Standardizer.fit(start.features[rows].float())
        self.x0, self.y0 = self.std(start.features[rows]), start.labels[rows]
        self.start_head = fit_head(self.x0, self.y0, zero_head(self.x0.shape[1], self.C),
                                   a.head_l2, a.head_start_iterations)
        self.pool_x = self.std(self.pool_table.features)
        self.state_table = self._table(proto.state)
        self._scored: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._reward_lookahead: tuple | None = None  # D_R standardised + class weights
        self.head = self.start_head
        self.start_score = self.score("reward")
        self.last: dict = {}
        self.reset(0)

    # --- tables ---------------------------------------------------------------------------
    def _table(self, images: ImageSet, regions=None) -> PixelTable:
        return extract_pixels(self.model, images.images_u8, images.masks, self.C, self.ignore,
                              regions, self.cfg.train.eval_batch_size, self.cfg.device)

    def _split(self, role: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Labelled pixels of a scored split, extracted the first time it is asked for."""
        if role not in SPLIT_ROLES:
            raise ValueError(f"unknown split role {role!r}; valid: {', '.join(SPLIT_ROLES)}")
        if role not in self._scored:
            images = {"reward": self.proto.reward, "test": self.proto.test,
                      "selection": self.proto.selection or self.proto.reward}[role]
            t = self._table(images)
            keep = t.labels != self.ignore
            self._scored[role] = (t.features[keep], t.labels[keep])
        return self._scored[role]

    def _predict(self, table: PixelTable, x: torch.Tensor | None, images: torch.Tensor
                 ) -> Prediction:
        """Full-resolution prediction of the head on some images of a table."""
        rows = table.image_rows(images)
        feats = x[rows] if x is not None else self.std(table.features[rows])
        h, w = table.size
        logits = head_logits(feats, self.head).reshape(len(images), h, w, self.C)
        logits = F.interpolate(logits.permute(0, 3, 1, 2), size=tuple(self.images.masks.shape[-2:]),
                               mode="bilinear", align_corners=False)
        probs, entropy = entropy_from_logits(logits)
        return Prediction(probs.max(1).indices, entropy)

    # --- the game -------------------------------------------------------------------------
    def reset(self, episode: int) -> None:
        self.episode, self.step = episode, 0
        self.pool = RegionPool(self.regions, len(self.images))
        self.oracle = Oracle(self.images.masks, self.regions, self.ignore, self.budget,
                             self.cfg.al.labelling, self.C)
        self.head = self.start_head
        self.past = self.start_score

    def observe(self) -> Observation | None:
        if self.pool.spent(self.budget):
            return None
        step = self.step + 1
        a, K = self.cfg.agent, self.cfg.al.regions_per_step
        g = torch.Generator().manual_seed(
            step_seed(self.seed, self.episode * 100003 + step, "pools"))
        n = min(K, self.pool.regions_for(self.budget - self.pool.units()))
        pools = self.pool.sample_candidates(n, a.pool_size, g)
        images, row_of = candidate_images(pools, self.regions.per_image)
        pred = self._predict(self.pool_table, self.pool_x, images)
        labelled = self.pool.labelled_ids()
        truth = torch.as_tensor(self.images.masks[images]).long()
        obs = view_candidates(step, pools, pred, images, row_of, truth, self.regions,
                              lambda: self.oracle.region_distributions(labelled, self.C),
                              self.labelled_distribution(), self._state(), self.spec,
                              self.ignore)
        head = self.head
        obs.make_lookahead = lambda kind: self.lookahead(pools, head, kind)
        return obs

    def lookahead(self, pools: torch.Tensor, head: torch.Tensor, kind: str = "truth"
                  ) -> torch.Tensor:
        """``[K, N]``: each candidate's predicted drop of D_R's class-balanced cross-entropy
        if it were labelled next (:mod:`ralis.game.influence`), for the head ``head`` fitted on
        the labels so far. ``kind="truth"`` reads the pool's ground truth; ``"pseudo"``,
        ``"expected"`` and ``"calibrated"`` do not (they read D_R's labels:
        :func:`~ralis.game.influence.unlabelled_influence`)."""
        a, t = self.cfg.agent, self.pool_table
        rows = self.labelled_rows()
        x_fit = torch.cat([self.x0, self.pool_x[rows]])
        if self._reward_lookahead is None:  # the class-balanced mean: weight 1 / class count
            x_r, y_r = self._split("reward")
            counts = torch.bincount(y_r, minlength=self.C).float()
            self._reward_lookahead = (self.std(x_r), y_r, torch.where(
                counts > 0, 1.0 / counts.clamp_min(1.0), torch.zeros_like(counts)))
        xs_r, y_r, weight = self._reward_lookahead
        v = influence_direction(x_fit, head, a.head_l2, xs_r, y_r, weight)
        cand = torch.isin(t.regions, pools.reshape(-1)) & self.fit_rows
        if kind == "truth":  # a label-free kind does not know which pixels are void either
            cand &= t.labels != self.ignore
        cand = cand.nonzero().squeeze(1)
        bias = (class_bias(head_logits(xs_r, head), y_r) if kind == "calibrated" else None)
        drop = (pixel_influence(self.pool_x[cand], t.labels[cand], head, v) if kind == "truth"
                else unlabelled_influence(self.pool_x[cand], head, v, kind, bias))
        total = torch.zeros(len(self.images) * self.regions.per_image, dtype=drop.dtype)
        return total.index_add_(0, t.regions[cand], drop)[pools]

    def _state(self) -> torch.Tensor:
        pred = self._predict(self.state_table, None, torch.arange(len(self.proto.state)))
        return state_from(pred, self.proto.regions_of(self.proto.state), self.spec)

    def labelled_rows(self, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Pool-table rows inside labelled regions (and the regions ``extra``, if given) with a
        label (one feature pixel in ``agent.head_stride`` per direction), in row order."""
        ids = self.pool.labelled_ids()
        if extra is not None:
            ids = torch.cat([ids, extra])
        t = self.pool_table
        inside = torch.isin(t.regions, ids) & (t.labels != self.ignore) & self.fit_rows
        return inside.nonzero().squeeze(1)

    def fit(self, extra: torch.Tensor | None = None) -> torch.Tensor:
        """The head on the start sample plus every labelled region (from the start head);
        ``extra`` region ids are fitted as if labelled too (an exact lookahead; the episode's
        state does not change)."""
        rows = self.labelled_rows(extra)
        x = torch.cat([self.x0, self.pool_x[rows]])
        y = torch.cat([self.y0, self.pool_table.labels[rows]])
        a = self.cfg.agent
        return fit_head(x, y, self.start_head, a.head_l2, a.head_iterations)

    def play(self, chosen: torch.Tensor, generator: torch.Generator | None = None) -> float:
        self.step += 1
        self.pool.label(chosen, self.step)
        self.oracle.label(chosen)
        self.head = self.fit()
        miou, ce = self.scores("reward")
        reward = 100.0 * (miou - self.past)
        self.past = miou
        self.last = {"reward_miou": miou, "reward_ce": ce}
        return reward

    def score(self, role: str) -> float:
        return self.scores(role)[0]

    def scores(self, role: str, head: torch.Tensor | None = None) -> tuple[float, float]:
        """``(mIoU, class-balanced cross-entropy)`` on ``role`` of ``head`` (default: the
        current head)."""
        x, y = self._split(role)
        return split_scores(x, y, self.head if head is None else head, self.std, self.C)

    def snapshot(self) -> tuple:
        """The episode's state (:meth:`restore` returns to it; lookaheads and probes)."""
        return episode_copy((self.pool, self.oracle, self.step, self.past, self.last),
                            self.images.masks), self.head

    def restore(self, snap: tuple) -> None:
        state, self.head = snap
        (self.pool, self.oracle, self.step, self.past,
         self.last) = episode_copy(state, self.images.masks)

    def labelled_distribution(self) -> torch.Tensor:
        return self.oracle.labelled_distribution(self.C)

    def labelled_count(self) -> int:
        return self.pool.num_labelled


GAMES.register("head")(HeadGame)
