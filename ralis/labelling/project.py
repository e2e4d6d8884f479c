"""A labelling project: a folder of real images, a ledger, a model history.

``ralis label init`` creates one (:func:`ralis.labelling.create.init_project`); every other
command opens it with :func:`open_project`, which takes the project's lock (one command at a time) and reads its
settings from the ledger. Layout::

    myproj/
      project.sqlite      the ledger (images, rounds, requests, labels, imports, models)
      project.json        a view of the settings (classes, resolution, regions, config)
      cache/              the images at the working resolution (built once)
      models/v0000.safetensors, v0001.safetensors, ...  one model per `label train`
      rounds/<n>/         requests.csv, preview.png and the format's export files

Image names are paths relative to the images folder with ``/`` separators; the images folder
is only read, and nothing is ever written outside the project folder.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ralis.data.base import ClassInfo
from ralis.files.arrays import LazyTensor
from ralis.labelling.formats.base import ImageInfo, ImportContext, RequestBox
from ralis.labelling.geometry import NativeMap, region_boxes
from ralis.labelling.images import ImageCache, cache_path
from ralis.labelling.record import (
    MODELS_DIR,
    PROJECT,
    ROUNDS_DIR,
    ProjectRecord,
    ProjectSettings,
    model_file,
    now,
    state_file,
)
from ralis.regions import RegionGrid
from ralis.run.session import step_seed

__all__ = ["MODELS_DIR", "PROJECT", "ROUNDS_DIR", "Project", "ProjectSettings",
           "model_file", "now", "open_project", "seed_for", "state_file", "torch_seed"]


class Project(ProjectRecord):
    """An open (locked) project with its images, region grid and model seeds. Use as a context
    manager, or call :meth:`close`."""

    @property
    def classes(self) -> ClassInfo:
        st = self.settings
        return ClassInfo(tuple(st.classes), st.ignore_index,
                         None if st.colors is None else tuple(map(tuple, st.colors)))

    @cached_property
    def infos(self) -> dict[str, ImageInfo]:
        base = Path(self.settings.images_dir)
        return {r["name"]: ImageInfo(r["name"], base / r["name"], r["height"], r["width"])
                for r in self.image_rows}

    @cached_property
    def grid(self) -> RegionGrid:
        return RegionGrid(tuple(self.settings.working), tuple(self.cfg.data.region_size))

    @cached_property
    def images(self) -> LazyTensor:
        """The images at the working resolution, ``[N, 3, H, W]`` uint8, read on demand."""
        return ImageCache(cache_path(self.root, self.settings.working), self.num_images,
                          self.settings.working).tensor()

    def native_map(self, index: int) -> NativeMap:
        r = self.image_rows[index]
        return NativeMap.of((r["height"], r["width"]), self.settings.working)

    def import_context(self) -> ImportContext:
        return ImportContext(self.classes, self.infos, self.settings.name, self.project_id,
                             self.ledger.last_round())

    def boxes(self, region_ids: list[int]) -> list[RequestBox]:
        """Native boxes of regions (in the given order)."""
        out = []
        per = self.grid.per_image
        for rid in region_ids:
            img, local = divmod(int(rid), per)
            y0, x0, y1, x1 = region_boxes(self.grid, np.array([local]))[0].tolist()
            top, left, h, w = self.native_map(img).box(y0, x0, y1, x1)
            out.append(RequestBox(int(rid), self.names[img], top, left, h, w))
        return out

    def round_dir(self, round_: int) -> Path:
        return self.root / ROUNDS_DIR / str(round_)


def open_project(root: Path, command: str) -> Project:
    return Project(Path(root), command)


def seed_for(project: Project, step: int, stream: str) -> int:
    return step_seed(project.cfg.seed, step, stream)


def torch_seed(project: Project, step: int, stream: str) -> None:
    torch.manual_seed(seed_for(project, step, stream))
