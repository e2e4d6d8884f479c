"""``run.sqlite``: the record of a run, and the one source of truth in its directory.

It holds the run's identity (run id, command, resolved config), everything acquired (committed
the moment it is chosen, so an interrupted run never loses a label), per-step, per-epoch,
per-budget and per-episode metrics, and which checkpoint belongs to the record. Opened in WAL
mode with ``synchronous=FULL``, checked with ``PRAGMA quick_check``, written in transactions.
The JSON and CSV files beside it are views for people and other tools.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from ralis import provenance
from ralis.errors import RalisError, disk_full, full_disk_reported
from ralis.files.atomic import fsync_dir
from ralis.run.names import STORE_NAME

SCHEMA = """
CREATE TABLE IF NOT EXISTS acquisitions (
    position INTEGER PRIMARY KEY, step INTEGER NOT NULL, region_id INTEGER NOT NULL,
    image TEXT, row INTEGER, col INTEGER);
CREATE TABLE IF NOT EXISTS steps (
    step INTEGER PRIMARY KEY, labelled INTEGER, val_miou REAL, loss REAL,
    t_forward REAL, t_score REAL, t_train REAL, t_eval REAL, wall REAL);
CREATE TABLE IF NOT EXISTS budgets (
    regions INTEGER PRIMARY KEY, pixel_fraction REAL, miou REAL, val_miou REAL,
    iou TEXT, class_distribution TEXT, class_entropy REAL, epochs INTEGER, wall REAL,
    extra TEXT);
CREATE TABLE IF NOT EXISTS episodes (
    episode INTEGER PRIMARY KEY, return REAL, final_miou REAL, start_miou REAL, epsilon REAL,
    loss REAL, dqn_lr REAL, labelled INTEGER, class_entropy REAL, wall REAL,
    best_fitness REAL, search_std REAL, expert_agreement REAL);
CREATE TABLE IF NOT EXISTS heldout (
    episode INTEGER, seed INTEGER, policy TEXT, role TEXT, miou REAL,
    PRIMARY KEY (episode, seed, policy, role));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

BUDGET_COLUMNS = ("regions", "pixel_fraction", "miou", "val_miou", "iou", "class_distribution",
                  "class_entropy", "epochs", "wall")


class RunStoreError(RalisError):
    """``run.sqlite`` is missing, damaged or belongs to another run."""


def _recover_hint(root: Path) -> str:
    return f"start over in a new --out (or delete {root} to rerun it from scratch)"


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit transactions
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


class RunStore:
    """One run's ``run.sqlite``. Open an existing one with ``RunStore(root)``; a new one is
    made by :meth:`create` (atomically: built under a temporary name, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        path = self.root / STORE_NAME
        if not path.is_file():
            raise RunStoreError(f"{path} is missing: the run's record is gone, so it cannot be "
                                f"resumed without different numbers; {_recover_hint(self.root)}")
        try:
            self.db = _connect(path)
            ok = self.db.execute("PRAGMA quick_check").fetchone()
            if not ok or ok[0] != "ok":
                raise sqlite3.DatabaseError(ok[0] if ok else "integrity check failed")
            self.db.executescript(SCHEMA)
            if "extra" not in {r[1] for r in self.db.execute("PRAGMA table_info(budgets)")}:
                self.db.execute("ALTER TABLE budgets ADD COLUMN extra TEXT")  # before 0.5
            self._noted = False  # this process's git revision is in computed_by
        except sqlite3.DatabaseError as exc:
            if disk_full(exc, self.root) is not None:  # not damaged: no room to open it
                raise disk_full(exc, self.root) from None
            raise RunStoreError(f"{path} is damaged ({exc}); {_recover_hint(self.root)}"
                                ) from None

    @classmethod
    def create(cls, root: Path, meta: dict[str, Any]) -> RunStore:
        """A new store holding ``meta``; it appears under its final name only when complete."""
        root = Path(root)
        tmp = root / f".{STORE_NAME}.{os.getpid()}.tmp"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        with full_disk_reported(root):
            cls._write_new(tmp, meta)
        os.replace(tmp, root / STORE_NAME)
        fsync_dir(root)
        return cls(root)

    @staticmethod
    def _write_new(tmp: Path, meta: dict[str, Any]) -> None:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            with db:
                db.execute("BEGIN")
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in meta.items()])
        finally:
            db.close()  # checkpoints the WAL into the file

    def close(self) -> None:
        self.db.close()

    def _write(self, sql: str, rows: list[tuple] | tuple = ()) -> None:
        with full_disk_reported(self.root), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if rows and isinstance(rows, list):
                self.db.executemany(sql, rows)
            else:
                self.db.execute(sql, rows)

    # --- acquisitions ---------------------------------------------------------------------
    def add_acquisitions(self, step: int, rows: list[tuple[int, str, int, int]]) -> None:
        """``rows``: (region_id, image name, row, col) in selection order; one transaction."""
        with full_disk_reported(self.root), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            start = self.num_acquired()
            self.db.executemany(
                "INSERT INTO acquisitions VALUES (?, ?, ?, ?, ?, ?)",
                [(start + i, step, *r) for i, r in enumerate(rows)],
            )

    def num_acquired(self, up_to_step: int | None = None) -> int:
        if up_to_step is None:
            return self.db.execute("SELECT COUNT(*) FROM acquisitions").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM acquisitions WHERE step <= ?",
                               (up_to_step,)).fetchone()[0]

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
        self._write("DELETE FROM acquisitions WHERE step > ?", (step,))

    # --- metrics --------------------------------------------------------------------------
    def _upsert(self, table: str, row: dict) -> None:
        keys = ",".join(f'"{k}"' for k in row)
        marks = ",".join("?" for _ in row)
        self._write(f"INSERT OR REPLACE INTO {table} ({keys}) VALUES ({marks})",
                    tuple(row.values()))

    def _rows(self, sql: str) -> list[dict]:
        cur = self.db.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def _add_result(self, table: str, row: dict) -> None:
        """Write a step, budget or episode row, naming this process's code among those that
        computed the run (:meth:`computed_by`) before its first such row."""
        if not self._noted:
            self.note_revision(provenance.git_revision())
            self._noted = True
        self._upsert(table, row)

    def add_step(self, row: dict) -> None:
        self._add_result("steps", row)

    def steps(self) -> list[dict]:
        return self._rows("SELECT * FROM steps ORDER BY step")

    def add_budget(self, row: dict) -> None:
        """One budget's row; keys beyond the table's columns go to its ``extra`` JSON."""
        extra = {k: v for k, v in row.items() if k not in BUDGET_COLUMNS}
        base = {k: json.dumps(v) if isinstance(v, dict | list) else v
                for k, v in row.items() if k in BUDGET_COLUMNS}
        self._add_result("budgets", {**base, "extra": json.dumps(extra) if extra else None})

    def budgets(self) -> list[dict]:
        out = self._rows("SELECT * FROM budgets ORDER BY regions")
        for d in out:
            for k in ("iou", "class_distribution"):
                d[k] = json.loads(d[k]) if d[k] else None
            d.update(json.loads(d.pop("extra") or "{}"))
        return out

    def add_episode(self, row: dict) -> None:
        self._add_result("episodes", row)

    def episodes(self) -> list[dict]:
        return self._rows("SELECT * FROM episodes ORDER BY episode")

    def add_heldout(self, rows: list[dict]) -> None:
        """Held-out greedy episodes: ``{"episode": training episodes (or search generations)
        done, "seed", "policy", "role", "miou"}`` each (a row replaces the same key's)."""
        for row in rows:
            self._add_result("heldout", row)

    def heldout(self) -> list[dict]:
        return self._rows("SELECT * FROM heldout ORDER BY episode, policy, role, seed")

    def set_meta(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def note_revision(self, revision: str) -> None:
        """Add ``revision`` to the git revisions that computed this run's records (each once,
        in order). Done before a store first writes a step, a budget or an episode, so
        reopening a finished run under newer code does not claim its numbers."""
        revisions = self.get_meta("computed_by") or []
        if revision not in revisions:
            self.set_meta("computed_by", [*revisions, revision])

    def computed_by(self) -> str:
        """The git revisions that computed this run's records, oldest first, joined by
        ``" + "``; a run recorded before this was kept names the revision that created it."""
        revisions = self.get_meta("computed_by") or [self.get_meta("git_revision")]
        return " + ".join(r for r in revisions if r) or "unknown"

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default
