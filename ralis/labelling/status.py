"""``ralis label status``: where a project stands, as one JSON-ready dict (from the ledger only:
no torch, no images)."""

from __future__ import annotations

import json

from ralis.labelling.record import ProjectRecord


def project_status(project: ProjectRecord) -> dict:
    """Rounds, region counts (requested / labelled / pending), labelled pixels per class,
    imports and the model history."""
    ledger = project.ledger
    names = list(project.settings.classes)
    labelled = set(ledger.labelled_ids())
    per_round: dict[int, dict] = {}
    requests = ledger.requests()
    for r in [*requests, *ledger.repeats()]:  # a region asked again counts in both rounds
        d = per_round.setdefault(r["round"], {"requested": 0, "labelled": 0})
        d["requested"] += 1
        d["labelled"] += int(r["region_id"] in labelled)
    rounds = []
    for row in ledger.rows("SELECT * FROM rounds ORDER BY round"):
        d = per_round.get(row["round"], {"requested": 0, "labelled": 0})
        rounds.append({"round": row["round"], "strategy": row["strategy"],
                       "format": row["format"], "model_version": row["model_version"],
                       "requested": d["requested"], "labelled": d["labelled"],
                       "pending": d["requested"] - d["labelled"], "created": row["created"],
                       "exported": row["exported"],
                       "files": json.loads(row["files"]) if row["files"] else [],
                       **({"note": row["note"]} if row["note"] else {})})
    pixels = [0] * len(names)
    for (counts,) in ledger.db.execute("SELECT counts FROM labels WHERE active = 1"):
        for k, v in enumerate(json.loads(counts)):
            pixels[k] += v
    requested = len(requests)
    total = project.num_images * project.regions_per_image
    return {
        "project": project.settings.name, "images": project.num_images,
        "regions": total, "region_size": list(project.cfg.data.region_size),
        "resolution": list(project.settings.working),
        "rounds": rounds, "requested": requested, "labelled": len(labelled),
        "pending": requested - len(labelled), "unrequested": total - requested,
        "pixels_per_class": dict(zip(names, pixels, strict=True)),
        "imports": ledger.rows("SELECT id, source, format, time, regions, replaced, unchanged, "
                               "empty, dropped_pixels, conflict_pixels FROM imports ORDER BY id"),
        "models": [{k: m[k] for k in ("version", "file", "labelled", "new_regions", "loss",
                                      "created", "wall", "trained")} for m in ledger.models()],
    }
