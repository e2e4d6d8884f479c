"""The scripted annotator: answers a round's requests from ground truth, in a format's file.

It writes exactly the file a labelling tool would export after a person labelled the requested
regions (:meth:`Format.write_answer`), so importing it goes through the same code as a real
export. Tests and benchmarks use it to check that the round trip loses nothing: a project
answered this way must request, label and train exactly what ``ralis simulate`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ralis.labelling.formats import ExportContext, ImageAnswer, RequestBox, get_format
from ralis.labelling.project import Project


def answer_round(project: Project, round_: int, truth: Callable[[str], np.ndarray], fmt: str,
                 path: Path) -> Path:
    """Write ``fmt``'s export for round ``round_`` to ``path``; ``truth(name)`` gives an
    image's ground truth ``[H, W]`` at native size (class ids, ignore where unknown)."""
    boxes = [RequestBox(r["region_id"], r["name"], r["top"], r["left"], r["height"], r["width"])
             for r in project.ledger.requests(round_)]
    by_image: dict[str, list[RequestBox]] = {}
    for b in boxes:
        by_image.setdefault(b.image, []).append(b)
    ctx = ExportContext(project.settings.name, round_, project.classes,
                        {n: project.infos[n] for n in by_image}, boxes,
                        project.round_dir(round_), None, None, project.project_id)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    answers = [ImageAnswer(name, np.asarray(truth(name)), bs) for name, bs in by_image.items()]
    return get_format(fmt).write_answer(Path(path), answers, ctx)
