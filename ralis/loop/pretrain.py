"""θ0 (the start model, trained on the labelled start set D_T) and the full-supervision bound.

Both train with :func:`ralis.training.supervised.train_supervised`, which checkpoints every epoch into the run directory
(``train_checkpoint.safetensors``) so an interrupted training resumes exactly.
"""

from __future__ import annotations

from pathlib import Path

from ralis.config import RunConfig
from ralis.data.protocol import Protocol, load_protocol
from ralis.models.pretrained import check_encoder_weights
from ralis.provenance import git_revision
from ralis.run.names import MODEL_NAME
from ralis.run.rundir import has_run, open_run
from ralis.run.session import set_threads
from ralis.training.supervised import (
    concat_sets,
    finished_model,
    record_model,
    save_trained,
    train_supervised,
)


def pretrain(
    cfg: RunConfig, out: Path, resume: bool = False, progress: bool = True,
    proto: Protocol | None = None, given: list[str] | None = None,
    given_preset: str | None = None, ignore: tuple[str, ...] = (),
) -> Path:
    """Train θ0 on D_T into ``out/model.safetensors`` (reused when the run finished); return
    its path. An interrupted pretraining continues from its last epoch with ``resume``."""
    if proto is None and not has_run(Path(out)):  # bad data fails before anything is written
        proto = load_protocol(cfg.data, progress)
    check_encoder_weights(cfg.model.name, cfg.model.encoder_weights)  # so do missing weights
    with open_run(Path(out), cfg, "pretrain", resume, given, given_preset, ignore) as run:
        cfg = run.cfg
        done = finished_model(run)
        metrics = run.store.get_meta("metrics")
        if done is not None and metrics is not None:
            run.write_json("metrics.json", metrics)
            return done
        set_threads(cfg)
        proto = proto or load_protocol(cfg.data, progress)
        run.same_data(proto)
        model, metrics = train_supervised(cfg, proto, proto.dqn_train, "pretrain θ0 on D_T",
                                          progress, run=run)
        metrics["git_revision"] = git_revision()
        path = save_trained(run.root / MODEL_NAME, cfg, proto, model, proto.dqn_train, metrics,
                            "theta0")
        run.store.set_meta("metrics", metrics)
        record_model(run, path)
        run.write_json("metrics.json", metrics)
        return path


def upper_bound(
    cfg: RunConfig, out: Path, resume: bool = False, progress: bool = True,
    proto: Protocol | None = None, given: list[str] | None = None,
    given_preset: str | None = None, ignore: tuple[str, ...] = (),
) -> dict:
    """Full supervision with the same recipe: all training-split images, all labels."""
    if proto is None and not has_run(Path(out)):  # bad data fails before anything is written
        proto = load_protocol(cfg.data, progress)
    check_encoder_weights(cfg.model.name, cfg.model.encoder_weights)
    with open_run(Path(out), cfg, "upper-bound", resume, given, given_preset, ignore) as run:
        cfg = run.cfg
        results = run.store.get_meta("results")
        if results is not None and finished_model(run) is not None:
            run.write_json("results.json", results)
            if run.store.get_meta("metrics") is not None:
                run.write_json("metrics.json", run.store.get_meta("metrics"))
            return results
        set_threads(cfg)
        proto = proto or load_protocol(cfg.data, progress)
        run.same_data(proto)
        everything = concat_sets(proto.state, proto.dqn_train, proto.pool)
        model, metrics = train_supervised(cfg, proto, everything, "upper bound (all labels)",
                                          progress, run=run)
        path = save_trained(run.root / MODEL_NAME, cfg, proto, model, everything, metrics,
                            "upper-bound")
        results = {
            "strategy": "full", "seed": cfg.seed, "dataset": cfg.data.dataset,
            "dataset_name": getattr(proto, "name", None) or cfg.data.dataset,
            "preset": cfg.preset, "git_revision": git_revision(),
            "classes": list(proto.classes.names),
            "budgets": [{
                "regions": len(everything) * proto.grid.per_image, "pixel_fraction": 1.0,
                "miou": metrics["test_miou"], "val_miou": metrics["val_miou"],
                "miou_last": metrics["test_miou_last"], "val_miou_last": metrics["val_miou_last"],
                "iou": metrics["iou"], "epochs": metrics["epochs"], "wall": metrics["wall"],
            }],
            "wall_time": metrics["wall"],
        }
        run.store.set_meta("metrics", metrics)  # with the per-epoch history, as θ0's
        run.store.set_meta("results", results)
        record_model(run, path)
        run.write_json("metrics.json", metrics)
        run.write_json("results.json", results)
        return results
