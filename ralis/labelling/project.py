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

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ralis.config import RunConfig, from_dict, to_dict, validate
from ralis.data.base import ClassInfo
from ralis.files.arrays import LazyTensor
from ralis.files.atomic import atomic_write_text
from ralis.files.folders import lock_dir, unlock_dir
from ralis.labelling.formats.base import ImageInfo, ImportContext, RequestBox
from ralis.labelling.geometry import NativeMap, region_boxes
from ralis.labelling.images import ImageCache, cache_path
from ralis.labelling.ledger import LEDGER_NAME, Ledger, LedgerError
from ralis.regions import RegionGrid
from ralis.run.session import step_seed

PROJECT = "labelling project"  # how the lock's errors name the folder
MODELS_DIR = "models"
ROUNDS_DIR = "rounds"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())


def model_file(version: int) -> str:
    return f"{MODELS_DIR}/v{version:04d}.safetensors"


def state_file(version: int) -> str:
    return f"{MODELS_DIR}/v{version:04d}.state.safetensors"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ProjectSettings:
    """What a project is, fixed at ``init`` (saved in the ledger and as ``project.json``)."""

    name: str
    images_dir: str  # absolute path of the images folder (read only)
    classes: tuple[str, ...]
    ignore_index: int
    colors: tuple[tuple[int, int, int], ...] | None
    working: tuple[int, int]  # (H, W) working resolution
    config: RunConfig  # model, training and acquisition settings (as `simulate` reads them)

    @property
    def class_info(self) -> ClassInfo:
        return ClassInfo(tuple(self.classes), self.ignore_index,
                         None if self.colors is None else tuple(map(tuple, self.colors)))

    def to_json(self) -> dict:
        return {"name": self.name, "images_dir": self.images_dir, "classes": list(self.classes),
                "ignore_index": self.ignore_index,
                "colors": None if self.colors is None else [list(c) for c in self.colors],
                "working": list(self.working), "config": to_dict(self.config)}

    @classmethod
    def from_json(cls, d: dict) -> ProjectSettings:
        return cls(d["name"], d["images_dir"], tuple(d["classes"]), int(d["ignore_index"]),
                   None if d["colors"] is None else tuple(tuple(c) for c in d["colors"]),
                   tuple(d["working"]), validate(from_dict(RunConfig, d["config"])))


class Project:
    """An open (locked) project. Use as a context manager, or call :meth:`close`."""

    def __init__(self, root: Path, command: str, ready: bool = True) -> None:
        self.root = Path(root)
        if not (self.root / LEDGER_NAME).is_file():
            raise LedgerError(f"{self.root} is not a labelling project ({LEDGER_NAME} is "
                              "missing); create one with `ralis label init`")
        lock_dir(self.root, command, PROJECT, None)
        try:
            self.ledger = Ledger(self.root)
            stored = self.ledger.get_meta("settings")
            if stored is None:
                raise LedgerError(f"{self.root}: `ralis label init` did not finish; rerun it")
            if ready and not self.ledger.get_meta("ready", False):
                raise LedgerError(f"{self.root}: `ralis label init` did not finish; rerun it "
                                  "with the same arguments")
            self.settings = ProjectSettings.from_json(stored)
            self.project_id = self.ledger.get_meta("project_id")
            if self.project_id is None:  # a project from before ids: it gets one now
                self.project_id = uuid.uuid4().hex
                with self.ledger.transaction() as db:
                    self.ledger.set_meta(db, "project_id", self.project_id)
        except BaseException:
            unlock_dir(self.root)
            raise

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ledger.close()
        unlock_dir(self.root)

    # --- what every command reads ---------------------------------------------------------------
    @property
    def cfg(self) -> RunConfig:
        return self.settings.config

    @property
    def classes(self) -> ClassInfo:
        return self.settings.class_info

    @cached_property
    def image_rows(self) -> list[dict]:
        return self.ledger.images()

    @cached_property
    def infos(self) -> dict[str, ImageInfo]:
        base = Path(self.settings.images_dir)
        return {r["name"]: ImageInfo(r["name"], base / r["name"], r["height"], r["width"])
                for r in self.image_rows}

    @cached_property
    def names(self) -> list[str]:
        return [r["name"] for r in self.image_rows]

    @property
    def num_images(self) -> int:
        return len(self.image_rows)

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

    def write_view(self) -> None:
        atomic_write_text(json.dumps(self.settings.to_json(), indent=2) + "\n",
                          self.root / "project.json")


def open_project(root: Path, command: str) -> Project:
    return Project(Path(root), command)


def seed_for(project: Project, step: int, stream: str) -> int:
    return step_seed(project.cfg.seed, step, stream)


def torch_seed(project: Project, step: int, stream: str) -> None:
    torch.manual_seed(seed_for(project, step, stream))
