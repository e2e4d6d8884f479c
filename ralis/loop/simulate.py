"""The active-learning simulation: select K regions per step, label them, train, evaluate.

One run serves every budget: budgets are prefixes of one acquisition sequence, and at each budget
a copy of the network is trained to convergence (early stopping on D_R) and tested.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch

from ralis.acquisition import StepContext, Strategy, Timer, create_strategy
from ralis.config import RunConfig
from ralis.data.pool import UNIT_TOLERANCE, RegionPool
from ralis.data.protocol import Protocol, load_protocol
from ralis.errors import ConfigError, first_line
from ralis.files.arrays import concat_rows
from ralis.files.atomic import atomic_write_text
from ralis.files.safe import tensors_digest
from ralis.loop.final import final_train, miou_on
from ralis.loop.pretrain import pretrain
from ralis.models import check_classes, load_model
from ralis.progress import progress_bar
from ralis.run.inputs import input_paths, same_input
from ralis.run.names import CHECKPOINT
from ralis.run.rundir import Run, RunDirError, has_run, open_run
from ralis.run.session import set_threads, step_seed
from ralis.training.divergence import blame, check_model_file
from ralis.training.oracle import Oracle
from ralis.training.regression import Comparison, warning
from ralis.training.train import LabelledData, make_optimizer, train_pass

PRETRAIN_IGNORES = ("al", "agent", "train.lr", "train.final_lr", "train.final_from",
                    "train.final_with_start_set", "train.final_samples_per_epoch",
                    "train.final_schedule", "train.final_epochs", "train.final_patience",
                    "data.regions", "data.superpixels", "data.slic_compactness")
"""Settings θ0 pretraining never reads: a θ0 is reused whatever they are."""
BUDGET_KEYS = ("regions", "pixel_fraction", "miou", "val_miou", "miou_last", "val_miou_last",
               "fixed_schedule", "start_miou", "start_val_miou", "val_delta", "val_noise",
               "regressed", "iou", "class_distribution", "class_entropy", "epochs", "wall")
"""A budget's row in results.json (runs from before 0.5 lack miou_last .. regressed)."""


def check_budgets(cfg: RunConfig, pool_regions: float, pool_images: int) -> None:
    """``pool_regions``: the pool in budget units (regions; superpixels: average ones)."""
    if max(cfg.al.budgets) > pool_regions:
        what = "regions" if cfg.data.regions == "rect" else "average superpixels"
        raise ConfigError(
            f"budget {max(cfg.al.budgets)} is larger than the pool ({pool_regions:.0f} {what} "
            f"in {pool_images} images); lower --budgets or use more pool images"
        )


def crossed(budgets, before: float, after: float) -> list[int]:
    """The budgets reached by going from ``before`` to ``after`` labelled units."""
    return [b for b in budgets if before < b <= after + UNIT_TOLERANCE]


class Simulation:
    """State of one AL run; :meth:`run` drives it to the largest budget, resumably.

    ``run``: the open run directory (:func:`ralis.run.rundir.open_run`); without it,
    ``out`` is opened (created, or continued with ``resume``) and closed by :meth:`run`.
    """

    def __init__(self, cfg: RunConfig, strategy: str, out: Path, proto: Protocol,
                 model: torch.nn.Module, progress: bool = True, strategy_kwargs: dict | None = None,
                 strategy_impl: Strategy | None = None, run: Run | None = None,
                 resume: bool = False):
        self.owns_run = run is None
        self.rundir = run or open_run(Path(out), cfg, f"simulate:{strategy}", resume)
        try:
            self._setup(strategy, out, proto, model, progress, strategy_kwargs, strategy_impl)
        except BaseException:
            if self.owns_run:
                self.rundir.close()
            raise

    def _setup(self, strategy, out, proto, model, progress, strategy_kwargs, strategy_impl):
        cfg = self.rundir.cfg
        self.rundir.same_data(proto)
        self.cfg, self.out, self.proto, self.progress = cfg, Path(out), proto, progress
        self.strategy_name = strategy
        self.strategy = strategy_impl or create_strategy(strategy, **(strategy_kwargs or {}))
        self.model = model.to(cfg.device)
        self.start_state = copy.deepcopy(self.model.state_dict())  # θ0, before any step
        self._check_start(tensors_digest(self.start_state))
        self.pool = RegionPool(proto.regions, len(proto.pool))
        check_budgets(cfg, self.pool.total_units, len(proto.pool))
        self.oracle = Oracle(proto.pool.masks, proto.regions, proto.ignore_index,
                             max(cfg.al.budgets), cfg.al.labelling, proto.num_classes)
        self.optimizer = make_optimizer(self.model, cfg.train.lr, cfg.train)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, cfg.train.lr_gamma)
        self.store = self.rundir.store
        self.step = 0
        self.wall = 0.0
        self.last_val: tuple[int, float] | None = None  # (step, D_R mIoU) of the latest eval
        self.start_scores: dict | None = None  # θ0 on D_R (per image) and test, once

    # --- persistence ------------------------------------------------------------------------
    def _check_start(self, digest: str) -> None:
        """The network a run starts from is part of its identity: a resumed run must be
        handed the same start weights (θ0) as the first session."""
        self.rundir.remember("start_weights", digest, lambda _: (
            f"{self.out} started from other network weights than the model given now; resume "
            "with the same start model, or start over in a new --out"))

    def save(self) -> None:
        self.rundir.save_checkpoint(CHECKPOINT, "checkpoint", {
            "step": self.step, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "wall": self.wall,
        }, {"step": self.step, "labelled": self.pool.num_labelled})

    def restore(self) -> None:
        found = self.rundir.load_checkpoint(CHECKPOINT, "checkpoint", "step")
        if found is None:
            return
        ck, record = found
        labelled = self.store.num_acquired(ck["step"])
        if labelled != record.get("labelled"):
            raise RunDirError(
                f"{self.out / CHECKPOINT} was saved with {record.get('labelled')} labelled "
                f"regions but run.sqlite holds {labelled} up to step {ck['step']}: the files of "
                f"{self.out} do not agree; start over in a new --out")
        try:
            self.model.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
            self.scheduler.load_state_dict(ck["scheduler"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            first = first_line(exc)
            raise RunDirError(f"{self.out / CHECKPOINT} does not fit this run's network "
                              f"({first}); start over in a new --out") from None
        self.step, self.wall = int(ck["step"]), float(ck["wall"])
        by_step: dict[int, list[int]] = {}
        for step, rid in self.store.acquisitions():
            if step <= self.step:
                by_step.setdefault(step, []).append(rid)
        for step, ids in sorted(by_step.items()):
            self._label(torch.tensor(ids), step)

    def _label(self, ids: torch.Tensor, step: int) -> None:
        self.pool.label(ids, step)
        self.oracle.label(ids)

    # --- one step ---------------------------------------------------------------------------
    def select(self, n: int, timer: Timer) -> torch.Tensor:
        """Choose ``n`` regions: ``n`` pools of N candidates, one region from each."""
        generator = torch.Generator().manual_seed(step_seed(self.cfg.seed, self.step, "select"))
        pools = self.pool.sample_candidates(n, self.cfg.pool_size(self.strategy_name), generator)
        ctx = StepContext(
            model=self.model, images_u8=self.proto.pool.images_u8, pool=self.pool,
            regions=self.proto.regions, generator=generator, device=self.cfg.device,
            batch_size=self.cfg.train.eval_batch_size, mc_samples=self.cfg.al.mc_samples,
            timer=timer, extras={"protocol": self.proto, "oracle": self.oracle, "config": self.cfg,
                                 "mc_full_resolution": self.cfg.al.mc_full_resolution,
                    "amp": self.cfg.train.amp},
        )
        return self.strategy.select(pools, ctx)

    def labelled_data(self) -> LabelledData:
        return LabelledData(self.proto.pool.images_u8, self.oracle.partial_masks,
                            self.proto.regions, self.proto.ignore_index)

    def final_training_set(self) -> tuple[LabelledData, torch.Tensor]:
        """The final training's images and region ids: the labelled regions of the pool, and
        with ``train.final_with_start_set`` every region of D_T (fully labelled) before them."""
        data, ids = self.labelled_data(), self.pool.labelled_ids()
        if not self.cfg.train.final_with_start_set:
            return data, ids
        dt = self.proto.dqn_train
        dt_regions = self.proto.regions_of(dt)
        offset = len(dt) * dt_regions.per_image
        data = LabelledData(concat_rows([dt.images_u8, data.images_u8]),
                            concat_rows([dt.masks, data.masks]),
                            dt_regions.concat(data.regions), data.ignore_index)
        start = dt_regions.valid(len(dt)).nonzero().squeeze(1)
        return data, torch.cat([start, ids + offset])

    def _cells(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(image, row, col)`` of regions for the acquisition table (superpixels: -1, -1)."""
        regions = self.proto.regions
        if regions.kind == "rect":
            return regions.split(ids)
        none = torch.full_like(ids, -1)
        return ids // regions.per_image, none, none

    def do_step(self, n: int) -> dict:
        """One AL step. Its randomness depends only on (seed, step), so a resumed run repeats
        exactly what an uninterrupted one would have done."""
        with blame(f"train.lr={self.cfg.train.lr:g}"):
            return self._do_step(n)

    def _do_step(self, n: int) -> dict:
        self.step += 1
        torch.manual_seed(step_seed(self.cfg.seed, self.step, "torch"))
        timer = Timer()
        start = time.perf_counter()
        stored = self.store.acquisitions(self.step)
        if stored:  # labelled before an interruption: never relabel
            ids = torch.tensor([rid for _, rid in stored])
        else:
            ids = self.select(n, timer)
            img, row, col = self._cells(ids)
            names = self.proto.pool.names
            self.store.add_acquisitions(self.step, [
                (int(r), names[int(i)], int(a), int(b))
                for r, i, a, b in zip(ids, img, row, col, strict=True)
            ])
        before = self.pool.units()
        self._label(ids, self.step)
        # selection may draw from torch's global generator (BALD), and a resumed step skips
        # it: training gets its own seed so it is the same either way
        torch.manual_seed(step_seed(self.cfg.seed, self.step, "train-torch"))
        with timer("train"):
            train_ids = ids if self.cfg.al.train_on_new_only else self.pool.labelled_ids()
            generator = torch.Generator().manual_seed(step_seed(self.cfg.seed, self.step, "train"))
            loss = train_pass(self.model, self.optimizer, self.labelled_data(), train_ids,
                              self.cfg.train, generator, self.cfg.device,
                              hint=f"train.lr={self.cfg.train.lr:g}")
            for _ in range(self.cfg.train.lr_steps_per_step):
                self.scheduler.step()
        val = None
        every = self.cfg.al.eval_every
        at_budget = bool(crossed(self.cfg.al.budgets, before, self.pool.units()))
        if (every and self.step % every == 0) or at_budget:
            with timer("eval"):
                val, _ = miou_on(self.model, self.proto.reward, self.proto, self.cfg)
            self.last_val = (self.step, val)
        self.wall += time.perf_counter() - start
        row = {"step": self.step, "labelled": self.pool.num_labelled, "val_miou": val,
               "loss": loss, "t_forward": timer.seconds["forward"],
               "t_score": timer.seconds["score"], "t_train": timer.seconds["train"],
               "t_eval": timer.seconds["eval"], "wall": self.wall}
        self.store.add_step(row)
        self.save()
        return row

    # --- budgets ------------------------------------------------------------------------------
    def final_train(self, budget: int) -> dict:
        """The final training at ``budget`` (:func:`ralis.loop.final.final_train`), stored."""
        lr = self.cfg.train.final_lr or self.cfg.train.lr
        with blame(f"train.{'final_lr' if self.cfg.train.final_lr else 'lr'}={lr:g}"):
            row = final_train(self, budget)
        self.store.add_budget(row)
        return row

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> dict:
        try:
            self.restore()
            budgets = list(self.cfg.al.budgets)
            done = {b["regions"] for b in self.store.budgets()}
            total = max(budgets)
            rect = self.proto.regions.kind == "rect"
            bar = progress_bar(total=total, initial=min(total, round(self.pool.units())),
                               desc=f"{self.strategy_name}",
                               unit="region" if rect else "unit", disable=not self.progress)
            while True:
                labelled = self.pool.units()
                for b in crossed(budgets, -1.0, labelled):
                    if b in done:
                        continue
                    row = self.final_train(b)
                    done.add(b)
                    bar.write(f"  {self.strategy_name} @ {b} {'regions' if rect else 'units'}: "
                              f"test mIoU {100 * row['miou']:.2f}% (last epoch "
                              f"{100 * row['miou_last']:.2f}%, val {100 * row['val_miou']:.2f}%)")
                if self.pool.spent(total):
                    break
                next_budget = min(b for b in budgets if b > labelled + UNIT_TOLERANCE)
                # rectangles land on every budget exactly; superpixels differ in size, so
                # the step that crosses a budget stops at its first region past it
                n = min(self.cfg.al.regions_per_step,
                        self.pool.regions_for(next_budget - labelled))
                row = self.do_step(n)
                bar.update(min(total, round(self.pool.units())) - min(total, round(labelled)))
                if row["val_miou"] is not None:  # the step it was measured at: never stale
                    bar.set_postfix(val_miou=f"{100 * row['val_miou']:.1f}% (step {row['step']})")
            bar.close()
            return self.write_results()
        finally:
            if self.owns_run:
                self.rundir.close()

    def regressions(self) -> dict:
        """``regressed`` (any budget below θ0 beyond the noise) and one warning line each."""
        lines = [warning(f"{self.strategy_name} at {b['regions']} regions",
                         Comparison(b["start_val_miou"], b["val_miou"], b["val_delta"],
                                    b["val_noise"], True), self.cfg)
                 for b in self.store.budgets() if b.get("regressed")]
        return {"regressed": bool(lines), "warnings": lines}

    def write_results(self) -> dict:
        cfg = self.cfg
        results = {
            "strategy": self.strategy_name, "seed": cfg.seed, "dataset": cfg.data.dataset,
            "dataset_name": getattr(self.proto, "name", None) or cfg.data.dataset,
            "preset": cfg.preset, "git_revision": self.store.computed_by(),
            "run_id": self.rundir.run_id, "classes": list(self.proto.classes.names),
            "region_kind": self.proto.regions.kind, "regions": self.proto.regions.describe(),
            "labelling": cfg.al.labelling,
            "budgets": [{k: b[k] for k in BUDGET_KEYS if k in b} for b in self.store.budgets()],
            **self.regressions(),
            "steps": self.store.steps(),
            "wall_time": self.wall + sum(b["wall"] for b in self.store.budgets()),
        }
        atomic_write_text(json.dumps(results, indent=2) + "\n", self.out / "results.json")
        rows = self.store.acquisition_table()
        lines = ["position,step,region_id,image,row,col"] + [
            ",".join(str(r[k]) for k in ("position", "step", "region_id", "image", "row", "col"))
            for r in rows
        ]
        atomic_write_text("\n".join(lines) + "\n", self.out / "acquired_regions.csv")
        return results


def simulate(
    cfg: RunConfig,
    strategy: str,
    out: Path,
    pretrained: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    strategy_kwargs: dict | None = None,
    proto: Protocol | None = None,
    given: list[str] | None = None,
    given_preset: str | None = None,
    ignore: tuple[str, ...] = (),
) -> dict:
    """Run (or resume) one AL simulation and return its results (also in ``out/results.json``).

    ``given`` / ``given_preset``: the command line's explicit settings, checked against the
    stored config on resume (see :func:`ralis.run.rundir.open_run`).
    """
    out = Path(out)
    strategy_kwargs = dict(strategy_kwargs or {})
    policy = strategy_kwargs.pop("policy", None)
    if policy is not None and strategy != "ralis":
        raise ConfigError(f"--policy is only used by --strategy ralis, not {strategy}; leave it "
                          "out")
    if not has_run(out):  # bad data or a budget over the pool fail before anything is written
        proto = proto or load_protocol(cfg.data, progress)
        check_budgets(cfg, RegionPool(proto.regions, len(proto.pool)).total_units, len(proto.pool))
    run = open_run(out, cfg, f"simulate:{strategy}", resume, given, given_preset, ignore)
    try:
        cfg = run.cfg
        pretrained, policy = input_paths(run, pretrained, policy)
        if policy is not None:
            strategy_kwargs["policy"] = policy
        impl = create_strategy(strategy, **strategy_kwargs)  # once, before any long work
        if policy is not None:
            same_input(run, "policy", policy, impl.meta["sha256"])
        set_threads(cfg)
        proto = proto or load_protocol(cfg.data, progress)
        run.same_data(proto)
        check_budgets(cfg, RegionPool(proto.regions, len(proto.pool)).total_units, len(proto.pool))
        if pretrained is None:
            pretrained = pretrain(cfg, out / "pretrain", resume=True, progress=progress,
                                  proto=proto, ignore=PRETRAIN_IGNORES)
        model, meta = load_model(pretrained)
        check_classes(meta, list(proto.classes.names))
        check_model_file(model.to(cfg.device), proto.reward.images_u8[:2], pretrained,
                         cfg.device)  # finite but huge weights: not train.lr's fault
        same_input(run, "pretrained", pretrained, meta["extra"]["sha256"])
        sim = Simulation(cfg, strategy, out, proto, model.to(cfg.device), progress,
                         strategy_impl=impl, run=run)
        return sim.run()
    finally:
        run.close()
