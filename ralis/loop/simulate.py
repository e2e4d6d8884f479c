"""The active-learning simulation: select K regions per step, label them, train, evaluate.

One run serves every budget: budgets are prefixes of one acquisition sequence, and at each budget
a copy of the network is trained to convergence (early stopping on D_R) and tested.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ralis.acquisition import StepContext, Strategy, Timer, create_strategy
from ralis.config import RunConfig
from ralis.data.pool import RegionPool
from ralis.data.protocol import Protocol, load_protocol
from ralis.errors import ConfigError
from ralis.loop.oracle import Oracle
from ralis.loop.pretrain import load_start_model, pretrain
from ralis.loop.session import git_revision, open_run_dir, set_threads, step_seed
from ralis.loop.store import RunStore, atomic_save, atomic_write_text, load_checkpoint
from ralis.loop.train import LabelledData, evaluate, fit, make_optimizer, train_pass
from ralis.metrics import class_distribution, distribution_entropy, iou_per_class, mean_iou


def check_budgets(cfg: RunConfig, pool_regions: int, pool_images: int) -> None:
    if max(cfg.al.budgets) > pool_regions:
        raise ConfigError(
            f"budget {max(cfg.al.budgets)} is larger than the pool ({pool_regions} regions in "
            f"{pool_images} images); lower --budgets or use more pool images"
        )


def miou_on(model, images, proto: Protocol, cfg: RunConfig) -> tuple[float, torch.Tensor]:
    conf = evaluate(model, images.images_u8, images.masks, proto.num_classes, proto.ignore_index,
                    cfg.train.eval_batch_size, cfg.device)
    return mean_iou(conf), conf


class Simulation:
    """State of one AL run; :meth:`run` drives it to the largest budget, resumably."""

    def __init__(self, cfg: RunConfig, strategy: str, out: Path, proto: Protocol,
                 model: torch.nn.Module, progress: bool = True, strategy_kwargs: dict | None = None,
                 strategy_impl: Strategy | None = None):
        self.cfg, self.out, self.proto, self.progress = cfg, Path(out), proto, progress
        self.strategy_name = strategy
        self.strategy = strategy_impl or create_strategy(strategy, **(strategy_kwargs or {}))
        self.model = model.to(cfg.device)
        self.start_state = copy.deepcopy(self.model.state_dict())  # θ0, before any step
        self.pool = RegionPool(proto.grid, len(proto.pool))
        check_budgets(cfg, self.pool.num_regions, len(proto.pool))
        self.oracle = Oracle(proto.pool.masks, proto.grid, proto.ignore_index, max(cfg.al.budgets))
        self.optimizer = make_optimizer(self.model, cfg.train.lr, cfg.train)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, cfg.train.lr_gamma)
        self.store = RunStore(self.out)
        self.step = 0
        self.wall = 0.0
        self.last_val: tuple[int, float] | None = None  # (step, D_R mIoU) of the latest eval

    # --- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        atomic_save({
            "step": self.step, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "wall": self.wall,
        }, self.out / "checkpoint.pt")

    def restore(self) -> None:
        path = self.out / "checkpoint.pt"
        if not path.exists():
            return
        ck = load_checkpoint(path)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.step, self.wall = ck["step"], ck["wall"]
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
            grid=self.proto.grid, generator=generator, device=self.cfg.device,
            batch_size=self.cfg.train.eval_batch_size, mc_samples=self.cfg.al.mc_samples,
            timer=timer, extras={"protocol": self.proto, "oracle": self.oracle, "config": self.cfg,
                                 "mc_full_resolution": self.cfg.al.mc_full_resolution},
        )
        return self.strategy.select(pools, ctx)

    def labelled_data(self) -> LabelledData:
        return LabelledData(self.proto.pool.images_u8, self.oracle.partial_masks,
                            self.proto.grid, self.proto.ignore_index)

    def final_training_set(self) -> tuple[LabelledData, torch.Tensor]:
        """The final training's images and region ids: the labelled regions of the pool, and
        with ``train.final_with_start_set`` every region of D_T (fully labelled) before them."""
        data, ids = self.labelled_data(), self.pool.labelled_ids()
        if not self.cfg.train.final_with_start_set:
            return data, ids
        dt = self.proto.dqn_train
        offset = len(dt) * self.proto.grid.per_image
        data = LabelledData(torch.cat([dt.images_u8, data.images_u8]),
                            torch.cat([dt.masks, data.masks]), data.grid, data.ignore_index)
        return data, torch.cat([torch.arange(offset), ids + offset])

    def do_step(self, n: int) -> dict:
        """One AL step. Its randomness depends only on (seed, step), so a resumed run repeats
        exactly what an uninterrupted one would have done."""
        self.step += 1
        torch.manual_seed(step_seed(self.cfg.seed, self.step, "torch"))
        timer = Timer()
        start = time.perf_counter()
        stored = self.store.acquisitions(self.step)
        if stored:  # labelled before an interruption: never relabel
            ids = torch.tensor([rid for _, rid in stored])
        else:
            ids = self.select(n, timer)
            img, row, col = self.proto.grid.split(ids)
            names = self.proto.pool.names
            self.store.add_acquisitions(self.step, [
                (int(r), names[int(i)], int(a), int(b))
                for r, i, a, b in zip(ids, img, row, col, strict=True)
            ])
        self._label(ids, self.step)
        with timer("train"):
            train_ids = ids if self.cfg.al.train_on_new_only else self.pool.labelled_ids()
            generator = torch.Generator().manual_seed(step_seed(self.cfg.seed, self.step, "train"))
            loss = train_pass(self.model, self.optimizer, self.labelled_data(), train_ids,
                              self.cfg.train, generator, self.cfg.device)
            for _ in range(self.cfg.train.lr_steps_per_step):
                self.scheduler.step()
        val = None
        every = self.cfg.al.eval_every
        if (every and self.step % every == 0) or self.pool.num_labelled in self.cfg.al.budgets:
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
        """Train a copy to convergence on the labelled regions, early-stopped on D_R; test it.

        By default (the authors' recipe) the copy continues from the AL-phase model with its
        optimiser state and lr, and keeps it unless an epoch beats its D_R mIoU.
        ``train.final_from="start"`` restarts from θ0 with a fresh optimiser at
        ``train.final_lr`` and keeps the best epoch of this training: θ0 was itself selected as
        the best of many epochs on D_R, so its D_R score is an optimistic bar that a retraining
        rarely clears even when it is better on test. ``train.final_with_start_set`` adds D_T's
        full labels; ``train.final_schedule="cosine"`` anneals the lr to 0 over the epochs.
        """
        start = time.perf_counter()
        cfg, proto = self.cfg, self.proto
        torch.manual_seed(step_seed(cfg.seed, budget, "final-torch"))
        generator = torch.Generator().manual_seed(step_seed(cfg.seed, budget, "final"))
        model = copy.deepcopy(self.model)
        if cfg.train.final_from == "start":
            model.load_state_dict(self.start_state)
            opt = make_optimizer(model, cfg.train.final_lr or cfg.train.lr, cfg.train)
            bar = -1.0  # no bar: the best epoch of this training
        else:
            opt = make_optimizer(model, cfg.train.lr, cfg.train)
            opt.load_state_dict(copy.deepcopy(self.optimizer.state_dict()))  # never share buffers
            if cfg.train.final_lr is not None:
                for group in opt.param_groups:
                    group["lr"] = cfg.train.final_lr
            if self.last_val is not None and self.last_val[0] == self.step:
                bar = self.last_val[1]  # this very model was just evaluated on D_R
            else:
                bar = miou_on(model, proto.reward, proto, cfg)[0]
        if cfg.train.final_schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, max(1, cfg.train.final_epochs * cfg.train.lr_steps_per_step))
        else:
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, cfg.train.lr_gamma)
        data, region_ids = self.final_training_set()
        fit_cfg = replace(cfg.train, samples_per_epoch=cfg.train.final_samples_per_epoch)
        result = fit(
            model, opt, data, region_ids,
            lambda m: miou_on(m, proto.reward, proto, cfg)[0], fit_cfg, cfg.train.final_epochs,
            cfg.train.final_patience, generator, cfg.device, sched,
            desc=f"final training @{budget}", initial_miou=bar, progress=self.progress,
        )
        test_miou, conf = miou_on(model, proto.test, proto, cfg)
        iou = iou_per_class(conf)
        dist = class_distribution(
            proto.pool.masks[self.pool.label_mask()], proto.num_classes, proto.ignore_index
        )
        region_px = budget * proto.grid.region_pixels
        total_px = len(proto.pool) * proto.pool.images_u8.shape[-2] * proto.pool.images_u8.shape[-1]
        row = {
            "regions": budget, "pixel_fraction": region_px / total_px, "miou": test_miou,
            "val_miou": result.best_miou,
            "iou": {n: (None if torch.isnan(v) else float(v))
                    for n, v in zip(proto.classes.names, iou, strict=True)},
            "class_distribution": {n: float(v)
                                   for n, v in zip(proto.classes.names, dist, strict=True)},
            "class_entropy": distribution_entropy(dist), "epochs": result.epochs,
            "wall": time.perf_counter() - start,
        }
        self.store.add_budget(row)
        return row

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> dict:
        self.restore()
        budgets = list(self.cfg.al.budgets)
        done = {b["regions"] for b in self.store.budgets()}
        total = max(budgets)
        bar = tqdm(total=total, initial=self.pool.num_labelled, desc=f"{self.strategy_name}",
                   unit="region", disable=not self.progress)
        while True:
            labelled = self.pool.num_labelled
            if labelled in budgets and labelled not in done:
                row = self.final_train(labelled)
                done.add(labelled)
                bar.write(f"  {self.strategy_name} @ {labelled} regions: test mIoU "
                          f"{row['miou']:.4f} (val {row['val_miou']:.4f})")
            if labelled >= total:
                break
            next_budget = min(b for b in budgets if b > labelled)
            n = min(self.cfg.al.regions_per_step, next_budget - labelled)
            row = self.do_step(n)
            bar.update(row["labelled"] - labelled)
            if row["val_miou"] is not None:
                bar.set_postfix(val_miou=f"{row['val_miou']:.3f}")
        bar.close()
        return self.write_results()

    def write_results(self) -> dict:
        cfg = self.cfg
        results = {
            "strategy": self.strategy_name, "seed": cfg.seed, "dataset": cfg.data.dataset,
            "preset": cfg.preset, "git_revision": git_revision(),
            "classes": list(self.proto.classes.names),
            "budgets": [
                {k: b[k] for k in ("regions", "pixel_fraction", "miou", "val_miou", "iou",
                                   "class_distribution", "class_entropy", "epochs", "wall")}
                for b in self.store.budgets()
            ],
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


def _same_inputs(out: Path, pretrained: Path | None, kwargs: dict, resume: bool
                 ) -> tuple[Path | None, dict, dict]:
    """θ0 and policy of a run: a resumed run reuses the recorded ones and refuses others.

    Returns ``(pretrained, strategy kwargs, record)``; ``record`` goes to ``inputs.json`` once the
    run directory is open. Nothing is written here.
    """
    path = out / "inputs.json"
    given = {"pretrained": pretrained, "policy": kwargs.get("policy")}
    given = {k: str(Path(v).resolve()) if v is not None else None for k, v in given.items()}
    if resume and path.exists():
        saved = json.loads(path.read_text())
        for key, value in given.items():
            if value is not None and saved.get(key) not in (None, value):
                raise ConfigError(f"{out} was run with --{key} {saved[key]}, not {value}; resume "
                                  f"with the same --{key} (or leave it out)")
            given[key] = value or saved.get(key)
    if given["policy"] is not None:
        kwargs["policy"] = Path(given["policy"])
    return (Path(given["pretrained"]) if given["pretrained"] else None), kwargs, given


def simulate(
    cfg: RunConfig,
    strategy: str,
    out: Path,
    pretrained: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    strategy_kwargs: dict | None = None,
    proto: Protocol | None = None,
) -> dict:
    """Run (or resume) one AL simulation and return its results (also in ``out/results.json``)."""
    out = Path(out)
    pretrained, strategy_kwargs, inputs = _same_inputs(out, pretrained,
                                                       dict(strategy_kwargs or {}), resume)
    impl = create_strategy(strategy, **strategy_kwargs)  # once, before any long work
    cfg = open_run_dir(out, cfg, resume, f"simulate:{strategy}")
    atomic_write_text(json.dumps(inputs, indent=2) + "\n", out / "inputs.json")
    set_threads(cfg)
    proto = proto or load_protocol(cfg.data, progress)
    check_budgets(cfg, len(proto.pool) * proto.grid.per_image, len(proto.pool))
    if pretrained is None:
        pretrained = pretrain(cfg, out / "pretrain", resume=True, progress=progress, proto=proto)
    model = load_start_model(pretrained, cfg, proto)
    sim = Simulation(cfg, strategy, out, proto, model, progress, strategy_impl=impl)
    try:
        return sim.run()
    finally:
        sim.store.close()
