"""Is the project's model still better than the one it started from? Checked on fresh labels.

A labelling project has no validation set of its own, but every round brings one: the regions
labelled since the latest model version were seen by no model yet. Before ``label train``
trains on them, :func:`check_latest` scores the latest trained version and the start model
(version 0, when it was trained, e.g. θ0 from ``ralis pretrain``) on those labels, paired over
the images that hold them, with the validation noise of :mod:`ralis.training.regression`. When the
latest version is below the start by more than that noise, a one-line warning names the fix;
the result is kept in the ledger (meta ``check:vNNNN``).

The version about to be trained is checked the same way at the next ``label train``, once the
next round's labels exist: a model cannot be scored on labels it trained on.
"""

from __future__ import annotations

import torch

from ralis.labelling.crops import active_labels
from ralis.labelling.project import Project
from ralis.labelling.training import load_version, partial_masks
from ralis.training.regression import NOISE_Z, compare
from ralis.training.train import evaluate


def fresh_regions(project: Project, version: int) -> list[int]:
    """Region ids labelled (active labels) after model ``version`` was trained."""
    upto = int(project.ledger.get_meta(f"labels_upto:{version}", 0))
    rows = project.ledger.rows("SELECT id, region_id FROM labels WHERE active = 1")
    fresh = {r["region_id"] for r in rows if r["id"] > upto}
    return [r for r in project.ledger.labelled_ids() if r in fresh]


def check_latest(project: Project, say=print) -> dict | None:
    """Compare the latest trained version with version 0 on the fresh labels; ``None`` when
    there is nothing to compare (no version trained since a trained start, no fresh labels)."""
    ledger, cfg = project.ledger, project.cfg
    latest, models = ledger.latest_model(), ledger.models()
    start = next((m for m in models if m["version"] == 0), None)
    if latest is None or start is None or latest["version"] == 0 or not start["trained"]:
        return None
    regions = fresh_regions(project, latest["version"])
    if not regions:
        return None
    images = sorted({r // project.grid.per_image for r in regions})
    masks = partial_masks(project, active_labels(ledger, regions))
    target = torch.stack([masks.image(k) for k in images])
    pixels = project.images[torch.tensor(images)]
    C, ignore = project.classes.num_classes, project.classes.ignore_index
    confs = [evaluate(load_version(project, row), pixels, target, C, ignore,
                      cfg.train.eval_batch_size, cfg.device, cfg.train.amp, per_image=True)
             for row in (start, latest)]
    result = compare(*confs)
    record = {"version": latest["version"], "against": 0, "regions": len(regions),
              "images": len(images), "noise_z": NOISE_Z, **result.record()}
    with ledger.transaction() as db:
        ledger.set_meta(db, f"check:v{latest['version']:04d}", record)
    if result.regressed:
        say(f"warning: regressed: model version {latest['version']} scores mIoU "
            f"{100 * result.miou:.1f}% on the {len(regions)} regions labelled since it was "
            f"trained, {-100 * result.delta:.1f} points below the start model's "
            f"{100 * result.start_miou:.1f}% (validation noise ±{100 * result.noise:.1f}); "
            f"the versions trained since version 0 made it worse: start a project from the "
            f"start model with a lower learning rate (train.lr={cfg.train.lr:g} now, e.g. "
            f"`ralis label init ... --set train.lr={cfg.train.lr / 10:g}`), or use version 0")
    return record
