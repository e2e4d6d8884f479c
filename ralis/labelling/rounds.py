"""``ralis label next``: choose the regions people label next, and export them.

Selection is the simulator's (:meth:`ralis.loop.simulate.Simulation.select`): K pools of N
candidate regions drawn from the unlabelled regions with the seed of (project seed, round,
"select"), one region picked per pool by the strategy with the current model. By default the
candidates are every unlabelled region (N = unlabelled // K), so the whole project is scored in
batches of images; ``--candidates M`` scores a random M instead (N = M // K, the simulator's
``pool_size`` when M = K x N). Regions already labelled, or requested and still pending, are
never requested again (pending ones can be, with ``include_pending``).

The round (its requests with their native boxes) is committed to the ledger in one transaction
before any file is written; the export files are written after, and the round is marked
exported last. A rerun after a crash finishes the export of the same round instead of
choosing again.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from ralis.acquisition import StepContext, Timer, create_strategy
from ralis.data.pool import RegionPool
from ralis.errors import ConfigError
from ralis.labelling.crops import active_labels
from ralis.labelling.formats import ExportContext, RequestBox, get_format
from ralis.labelling.formats.png import write_requests_csv
from ralis.labelling.ledger import crash_point
from ralis.labelling.preview import write_preview
from ralis.labelling.project import Project, now, seed_for, torch_seed
from ralis.labelling.training import load_version, partial_masks
from ralis.models.inference import predict
from ralis.regions import RegionGrid
from ralis.training.oracle import SparseMasks, tile_distributions


class _StateSet:
    """D_S for the RALIS policy: a fixed, seeded set of the project's images."""

    def __init__(self, images_u8: torch.Tensor) -> None:
        self.images_u8 = images_u8

    def __len__(self) -> int:
        return self.images_u8.shape[0]


class _Protocol:
    def __init__(self, project: Project, state: _StateSet) -> None:
        self.classes, self.state = project.classes, state
        self.num_classes = project.classes.num_classes
        self.ignore_index = project.classes.ignore_index
        self.grid = project.grid

    def regions_of(self, images) -> RegionGrid:
        return self.grid


class _Labels:
    """What the RALIS policy reads of the labels: class distributions of labelled regions."""

    def __init__(self, project: Project, masks: SparseMasks) -> None:
        self.project, self.masks = project, masks

    def region_distributions(self, region_ids: torch.Tensor, num_classes: int) -> torch.Tensor:
        return tile_distributions(self.masks, region_ids, num_classes,
                                  self.project.classes.ignore_index)


def _pool(project: Project, include_pending: bool) -> tuple[RegionPool, int]:
    ledger = project.ledger
    pool = RegionPool(project.grid, project.num_images)
    by_round: dict[int, list[int]] = {}
    for r in ledger.requests():
        by_round.setdefault(r["round"], []).append(r["region_id"])
    labelled = set(ledger.labelled_ids())
    pending = 0
    for round_, ids in sorted(by_round.items()):
        take = [i for i in ids if i in labelled or not include_pending]
        pending += sum(1 for i in ids if i not in labelled)
        if take:
            pool.label(torch.tensor(take), round_)
    return pool, pending


def unfinished_round(project: Project) -> dict | None:
    rows = project.ledger.rows("SELECT * FROM rounds WHERE exported IS NULL ORDER BY round "
                               "DESC LIMIT 1")
    return rows[0] if rows else None


def next_round(project: Project, regions: int, strategy: str, fmt: str, policy=None,
               candidates: int | None = None, include_pending: bool = False,
               image_root_url: str | None = None, progress: bool = True, say=print) -> dict:
    """Choose ``regions`` regions, record them as round n, export them in ``fmt``."""
    exporter = get_format(fmt)
    ledger, cfg = project.ledger, project.cfg
    left = unfinished_round(project)
    if left is not None:
        say(f"round {left['round']} was chosen but its export did not finish; finishing it "
            "(the same regions)")
        return _export(project, left["round"], left["format"], image_root_url, say)
    if regions <= 0:
        raise ConfigError(f"--regions must be positive, got {regions}")
    pool, pending = _pool(project, include_pending)
    if regions > pool.num_unlabelled:
        raise ConfigError(
            f"--regions {regions} is more than the {pool.num_unlabelled} regions left to request "
            f"({pool.num_labelled} of {pool.num_regions} are labelled or pending); ask for at most "
            f"{pool.num_unlabelled}" + ("" if include_pending or not pending else
                                        ", or add --include-pending"))
    version = ledger.latest_model()
    assert version is not None
    impl = create_strategy(strategy, **({"policy": policy} if policy is not None else {}))
    note = None
    if not version["trained"] and "forward" in impl.needs:
        note = (f"no trained model yet: this round is random ({strategy} needs a model; import "
                "labels and run `ralis label train` first)")
        say(note)
        strategy, impl = "random", create_strategy("random")
    round_ = ledger.last_round() + 1
    torch_seed(project, round_, "torch")
    generator = torch.Generator().manual_seed(seed_for(project, round_, "select"))
    per_pool = (pool.num_unlabelled // regions if candidates is None
                else max(1, candidates // regions))
    pools = pool.sample_candidates(regions, per_pool, generator)
    model = load_version(project, version)
    extras: dict = {"config": cfg, "mc_full_resolution": cfg.al.mc_full_resolution,
                    "progress": progress, "amp": cfg.train.amp}
    if "policy" in impl.needs:
        count = impl.spec.state_images
        if count > project.num_images:
            raise ConfigError(f"the policy needs {count} state images but the project has "
                              f"{project.num_images}")
        order = torch.randperm(project.num_images,
                               generator=torch.Generator().manual_seed(project.cfg.seed))
        state = _StateSet(project.images[order[:count].sort().values])
        masks = partial_masks(project, active_labels(ledger, ledger.labelled_ids()))
        extras.update(protocol=_Protocol(project, state), oracle=_Labels(project, masks))
    ctx = StepContext(model=model, images_u8=project.images, pool=pool, regions=project.grid,
                      generator=generator, device=cfg.device,
                      batch_size=cfg.train.eval_batch_size, mc_samples=cfg.al.mc_samples,
                      timer=Timer(), extras=extras)
    ids = impl.select(pools, ctx)
    boxes = project.boxes(ids.tolist())
    with ledger.transaction() as db:
        db.execute("INSERT INTO rounds (round, strategy, format, model_version, regions, created,"
                   " note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (round_, strategy, fmt, version["version"], len(boxes), now(), note))
        asked = {r["region_id"] for r in ledger.requests()}
        db.executemany(
            "INSERT INTO requests (region_id, round, position, image, top, left, height, width) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(b.region_id, round_, k, int(b.region_id) // project.grid.per_image, b.top, b.left,
              b.height, b.width) for k, b in enumerate(boxes) if b.region_id not in asked])
        db.executemany(  # pending ones asked again: their first round keeps them
            "INSERT INTO repeats (region_id, round, position) VALUES (?, ?, ?)",
            [(b.region_id, round_, k) for k, b in enumerate(boxes) if b.region_id in asked])
    crash_point("next:after-commit")
    return _export(project, round_, fmt, image_root_url, say, exporter)


def _prediction(project: Project, version: dict):
    """``name -> predicted class ids at native size`` with the current model, or None."""
    if not version["trained"]:
        return None
    model = load_version(project, version)
    index = {n: i for i, n in enumerate(project.names)}

    def predicted(name: str) -> np.ndarray:
        i = index[name]
        pred = predict(model, project.images[[i]], 1, project.cfg.device).pred_ids[0].numpy()
        return project.native_map(i).to_native(pred)

    return predicted


def _export(project: Project, round_: int, fmt: str, image_root_url: str | None, say,
            exporter=None) -> dict:
    exporter = exporter or get_format(fmt)
    ledger = project.ledger
    row = ledger.rows("SELECT * FROM rounds WHERE round = ?", (round_,))[0]
    boxes = [RequestBox(r["region_id"], r["name"], r["top"], r["left"], r["height"], r["width"])
             for r in ledger.requests(round_)]
    out_dir = project.round_dir(round_)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = ledger.rows("SELECT * FROM models WHERE version = ?", (row["model_version"],))[0]
    images = {b.image: project.infos[b.image] for b in boxes}
    ctx = ExportContext(project.settings.name, round_, project.classes, images, boxes, out_dir,
                        image_root_url, _prediction(project, version), project.project_id)
    written = [write_requests_csv(ctx)]
    written += [p for p in exporter.export_requests(ctx) if p not in written]
    written.append(write_preview(project, boxes, out_dir / "preview.png"))
    crash_point("next:after-files")
    with ledger.transaction() as db:
        db.execute("UPDATE rounds SET exported = ?, files = ? WHERE round = ?",
                   (now(), json.dumps([str(p.relative_to(project.root)) for p in written]),
                    round_))
    say(f"round {round_}: {len(boxes)} regions in {len(images)} images ({row['strategy']}, "
        f"model version {row['model_version']}); files: "
        + ", ".join(str(p.relative_to(project.root)) for p in written))
    return {"round": round_, "regions": len(boxes), "images": len(images),
            "strategy": row["strategy"], "files": [str(p) for p in written],
            "region_ids": [b.region_id for b in boxes]}
