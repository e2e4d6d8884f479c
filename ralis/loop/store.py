"""The run directory: config, an SQLite log of everything acquired and measured, checkpoints.

Each acquisition is committed to ``run.sqlite`` the moment it is made, so an interrupted run
never loses a label; per-step and per-budget metrics land there too. Checkpoints are written
atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import torch

from ralis.errors import RalisError

SCHEMA = """
CREATE TABLE IF NOT EXISTS acquisitions (
    position INTEGER PRIMARY KEY, step INTEGER NOT NULL, region_id INTEGER NOT NULL,
    image TEXT, row INTEGER, col INTEGER);
CREATE TABLE IF NOT EXISTS steps (
    step INTEGER PRIMARY KEY, labelled INTEGER, val_miou REAL, loss REAL,
    t_forward REAL, t_score REAL, t_train REAL, t_eval REAL, wall REAL);
CREATE TABLE IF NOT EXISTS budgets (
    regions INTEGER PRIMARY KEY, pixel_fraction REAL, miou REAL, val_miou REAL,
    iou TEXT, class_distribution TEXT, class_entropy REAL, epochs INTEGER, wall REAL);
CREATE TABLE IF NOT EXISTS episodes (
    episode INTEGER PRIMARY KEY, return REAL, final_miou REAL, start_miou REAL, epsilon REAL,
    loss REAL, dqn_lr REAL, labelled INTEGER, class_entropy REAL, wall REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(text: str, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise RalisError(f"cannot read checkpoint {path} ({exc}); delete it to start over") from None


class RunStore:
    """One AL run's directory and its SQLite log."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "run.sqlite")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    # --- acquisitions ---------------------------------------------------------------------
    def add_acquisitions(self, step: int, rows: list[tuple[int, str, int, int]]) -> None:
        """``rows``: (region_id, image name, row, col) in selection order; committed at once."""
        start = self.num_acquired()
        self.db.executemany(
            "INSERT INTO acquisitions VALUES (?, ?, ?, ?, ?, ?)",
            [(start + i, step, *r) for i, r in enumerate(rows)],
        )
        self.db.commit()

    def num_acquired(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM acquisitions").fetchone()[0]

    def acquisitions(self, step: int | None = None) -> list[tuple[int, int]]:
        """(step, region_id) in acquisition order (only ``step`` if given)."""
        q = "SELECT step, region_id FROM acquisitions"
        args: tuple = ()
        if step is not None:
            q, args = q + " WHERE step = ?", (step,)
        return self.db.execute(q + " ORDER BY position", args).fetchall()

    def acquisition_table(self) -> list[dict]:
        cur = self.db.execute(
            "SELECT position, step, region_id, image, row, col FROM acquisitions ORDER BY position"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def drop_acquisitions_after(self, step: int) -> None:
        self.db.execute("DELETE FROM acquisitions WHERE step > ?", (step,))
        self.db.commit()

    # --- metrics --------------------------------------------------------------------------
    def add_step(self, row: dict) -> None:
        keys = ",".join(row)
        marks = ",".join("?" for _ in row)
        self.db.execute(f"INSERT OR REPLACE INTO steps ({keys}) VALUES ({marks})", tuple(row.values()))
        self.db.commit()

    def steps(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM steps ORDER BY step")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def add_budget(self, row: dict) -> None:
        row = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}
        keys = ",".join(row)
        marks = ",".join("?" for _ in row)
        self.db.execute(
            f"INSERT OR REPLACE INTO budgets ({keys}) VALUES ({marks})", tuple(row.values())
        )
        self.db.commit()

    def budgets(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM budgets ORDER BY regions")
        cols = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            d = dict(zip(cols, r, strict=True))
            for k in ("iou", "class_distribution"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    def add_episode(self, row: dict) -> None:
        keys = ",".join(f'"{k}"' for k in row)
        marks = ",".join("?" for _ in row)
        self.db.execute(f"INSERT OR REPLACE INTO episodes ({keys}) VALUES ({marks})",
                        tuple(row.values()))
        self.db.commit()

    def episodes(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM episodes ORDER BY episode")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        self.db.commit()

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default
