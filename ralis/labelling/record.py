"""A labelling project's record: its settings and its ledger, opened and locked.

This is what every project command reads first and all that ``ralis label status`` needs; it
imports no torch, so a read-only command answers at once. :class:`ralis.labelling.project.Project`
adds the images, the region grid and the model's seeds.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Self

from ralis.config import RunConfig, from_dict, to_dict, validate
from ralis.files.atomic import atomic_write_text
from ralis.files.folders import lock_dir, unlock_dir
from ralis.labelling.ledger import LEDGER_NAME, Ledger, LedgerError

PROJECT = "labelling project"  # how the lock's errors name the folder
MODELS_DIR = "models"
ROUNDS_DIR = "rounds"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())


def model_file(version: int) -> str:
    return f"{MODELS_DIR}/v{version:04d}.safetensors"


def state_file(version: int) -> str:
    return f"{MODELS_DIR}/v{version:04d}.state.safetensors"


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


class ProjectRecord:
    """An open (locked) project's ledger and settings, without its images or model: what
    ``label status`` reads. Use as a context manager, or call :meth:`close`."""

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

    def __enter__(self) -> Self:
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

    @cached_property
    def image_rows(self) -> list[dict]:
        return self.ledger.images()

    @cached_property
    def names(self) -> list[str]:
        return [r["name"] for r in self.image_rows]

    @property
    def num_images(self) -> int:
        return len(self.image_rows)

    @property
    def regions_per_image(self) -> int:
        """Rectangles of the region grid per image (projects request rectangles only)."""
        (h, w), (rh, rw) = self.settings.working, self.cfg.data.region_size
        return (h // rh) * (w // rw)

    def write_view(self) -> None:
        atomic_write_text(json.dumps(self.settings.to_json(), indent=2) + "\n",
                          self.root / "project.json")


def open_record(root: Path, command: str) -> ProjectRecord:
    return ProjectRecord(Path(root), command)
