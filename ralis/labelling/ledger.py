"""``project.sqlite``: the labelling project's ledger, the one source of truth of a project.

It holds the images (name, native size, checksum), the rounds and the regions each requested
(a pending region asked for again by a later round stays in its first round, the later one lists
it in ``repeats``),
every label (a region's native pixels, compressed, with the file it came from and when), every
import (by the checksum of its file, so importing a file twice is a no-op) and the model
versions. Every command changes it in one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), in
WAL mode with ``synchronous=FULL``: a ``kill -9`` at any point leaves the ledger as it was
before the command or after it, never in between. Labels are never deleted: a replaced label
stays, marked inactive, with the import that replaced it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ralis.errors import RalisError, disk_full, full_disk_reported

LEDGER_NAME = "project.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS images (
    idx INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, height INTEGER, width INTEGER,
    sha256 TEXT, cached INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY, strategy TEXT, format TEXT, model_version INTEGER,
    regions INTEGER, created TEXT, note TEXT, exported TEXT, files TEXT);
CREATE TABLE IF NOT EXISTS requests (
    region_id INTEGER PRIMARY KEY, round INTEGER NOT NULL, position INTEGER NOT NULL,
    image INTEGER NOT NULL, top INTEGER, left INTEGER, height INTEGER, width INTEGER);
CREATE TABLE IF NOT EXISTS repeats (
    region_id INTEGER NOT NULL, round INTEGER NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (region_id, round));
CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY, source TEXT, sha256 TEXT UNIQUE, format TEXT, time TEXT,
    regions INTEGER, replaced INTEGER, unchanged INTEGER, empty INTEGER,
    dropped_pixels INTEGER, conflict_pixels INTEGER);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY, region_id INTEGER NOT NULL, import_id INTEGER NOT NULL,
    active INTEGER NOT NULL, replaced_by INTEGER, height INTEGER, width INTEGER,
    dtype TEXT, data BLOB, pixels INTEGER, counts TEXT);
CREATE INDEX IF NOT EXISTS labels_region ON labels (region_id, active);
CREATE TABLE IF NOT EXISTS models (
    version INTEGER PRIMARY KEY, file TEXT, sha256 TEXT, labelled INTEGER, new_regions INTEGER,
    loss REAL, created TEXT, wall REAL, trained INTEGER);
"""


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: ``RALIS_CRASH_POINT=name`` makes the process
    SIGKILL itself here (a real ``kill -9``: no cleanup, no ``finally``)."""
    if os.environ.get("RALIS_CRASH_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class LedgerError(RalisError):
    """``project.sqlite`` is missing, damaged or not a project's."""


class Ledger:
    """One project's ``project.sqlite`` (see the module docs)."""

    def __init__(self, root: Path, create: bool = False) -> None:
        self.root = Path(root)
        path = self.root / LEDGER_NAME
        if not create and not path.is_file():
            raise LedgerError(f"{self.root} is not a labelling project ({LEDGER_NAME} is missing);"
                              " create one with `ralis label init`")
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            ok = self.db.execute("PRAGMA quick_check").fetchone()
            if not ok or ok[0] != "ok":
                raise sqlite3.DatabaseError(ok[0] if ok else "integrity check failed")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            if disk_full(exc, self.root) is not None:  # not damaged: no room to open it
                raise disk_full(exc, self.root) from None
            raise LedgerError(f"{path} is damaged ({exc}); restore it from a backup") from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: everything inside is committed together or not at all."""
        with full_disk_reported(self.root):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def rows(self, sql: str, args: tuple = ()) -> list[dict]:
        cur = self.db.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def scalar(self, sql: str, args: tuple = ()) -> Any:
        row = self.db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # --- reads used by every command ------------------------------------------------------------
    def images(self) -> list[dict]:
        return self.rows("SELECT idx, name, height, width, sha256, cached FROM images ORDER BY idx")

    def num_images(self) -> int:
        return int(self.scalar("SELECT COUNT(*) FROM images"))

    def last_round(self) -> int:
        return int(self.scalar("SELECT COALESCE(MAX(round), 0) FROM rounds"))

    def labelled_ids(self) -> list[int]:
        """Labelled regions in the order they were requested (round, position)."""
        return [r[0] for r in self.db.execute(
            "SELECT q.region_id FROM requests q WHERE EXISTS (SELECT 1 FROM labels l WHERE "
            "l.region_id = q.region_id AND l.active = 1) ORDER BY q.round, q.position")]

    def pending_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT q.region_id FROM requests q WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE "
            "l.region_id = q.region_id AND l.active = 1) ORDER BY q.round, q.position")]

    def requests(self, round_: int | None = None) -> list[dict]:
        """Every region requested, once, with the round that first asked for it; or the
        requests of round ``round_``, pending regions it asked for again included
        (``--include-pending``: table ``repeats``; earlier rounds keep theirs)."""
        columns = "q.region_id, q.image, i.name, q.top, q.left, q.height, q.width"
        if round_ is None:
            return self.rows(f"SELECT {columns}, q.round, q.position FROM requests q JOIN images "
                             "i ON i.idx = q.image ORDER BY q.round, q.position")
        return self.rows(
            f"SELECT {columns}, q.round, q.position FROM requests q JOIN images i ON i.idx = "
            f"q.image WHERE q.round = ? UNION ALL SELECT {columns}, r.round, r.position FROM "
            "repeats r JOIN requests q ON q.region_id = r.region_id JOIN images i ON i.idx = "
            "q.image WHERE r.round = ? ORDER BY 9", (round_, round_))  # by position

    def repeats(self) -> list[dict]:
        """``{region_id, round}`` of the pending regions a later round asked for again."""
        return self.rows("SELECT region_id, round FROM repeats ORDER BY round, position")

    def active_label_rows(self) -> list[tuple[int, int, int, str, bytes]]:
        """``(region id, height, width, dtype, compressed bytes)`` of every active label;
        :func:`ralis.labelling.crops.active_labels` decodes them."""
        return list(self.db.execute(
            "SELECT region_id, height, width, dtype, data FROM labels WHERE active = 1"))

    def models(self) -> list[dict]:
        return self.rows("SELECT * FROM models ORDER BY version")

    def latest_model(self) -> dict | None:
        rows = self.rows("SELECT * FROM models ORDER BY version DESC LIMIT 1")
        return rows[0] if rows else None
