"""The RALIS agents' training game, read from their run directories for the report.

``ralis train-agent`` (and every ``agent-s<seed>/`` cell of a grid) records one row per episode
in the ``episodes`` table of its ``run.sqlite``: ``final_miou`` is the D_R mIoU at the episode's
end (a fraction), ``class_entropy`` the entropy in nats of the labelled pixels' classes,
``epsilon`` the exploration rate. :func:`find_agent_dirs` finds the agents beside the runs of a
grid, :func:`read_episodes` reads their episodes without writing anything (a read-only
connection, as :func:`ralis.run.rundir.stored_command` opens a record), and :func:`summarize`
compares the first and the last episodes.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ralis.errors import RalisError
from ralis.run.names import STORE_NAME

WINDOW = 10
"""Episodes in the moving average and in each of the first / last windows."""


def find_agent_dirs(folders: Iterable[Path]) -> list[Path]:
    """Every ``agent-*`` directory holding a ``run.sqlite`` directly under each folder.

    In the order of the folders, each folder's agents by name; a directory met twice counts
    once.
    """
    found: dict[Path, None] = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for d in sorted(folder.glob("agent-*")):
            if d.is_dir() and (d / STORE_NAME).is_file():
                found.setdefault(d.resolve(), None)
    return list(found)


def read_episodes(agent_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``agent_dir/run.sqlite``'s ``episodes`` table, by episode (:func:`read_rows`)."""
    return read_rows(agent_dir, "episodes", "episode")


def read_rows(agent_dir: Path, table: str, order_by: str) -> list[dict[str, Any]]:
    """The rows of one table of ``agent_dir/run.sqlite`` (``table`` and ``order_by`` are the
    caller's constants, never user input).

    Opened read-only (``file:...?mode=ro``): the report never writes to a run's record, and an
    agent still training can be read. A record without the table has no rows.
    """
    path = Path(agent_dir) / STORE_NAME
    if not path.is_file():
        raise RalisError(f"{agent_dir} has no {STORE_NAME}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            has = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                             "AND name = ?", (table,)).fetchone()
            if not has:
                return []
            cur = db.execute(f"SELECT * FROM {table} ORDER BY {order_by}")
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise RalisError(f"cannot read {path}: {exc}") from None


def agent_labels(dirs: Sequence[Path]) -> dict[Path, str]:
    """Display names: the directory name, with its parent's in front when two agents share a
    name (``grid-rect/agent-s0``, ``grid-slic/agent-s0``)."""
    counts: dict[str, int] = {}
    for d in dirs:
        counts[Path(d).name] = counts.get(Path(d).name, 0) + 1
    return {Path(d): (Path(d).name if counts[Path(d).name] == 1
                      else f"{Path(d).parent.name}/{Path(d).name}") for d in dirs}


def moving_average(values: Sequence[float], window: int = WINDOW) -> np.ndarray:
    """Trailing mean over ``window`` values; the first ones average what there is so far."""
    vals = np.asarray(values, dtype=float)
    if vals.size == 0:
        return vals
    sums = np.cumsum(np.insert(vals, 0, 0.0))
    idx = np.arange(1, vals.size + 1)
    start = np.maximum(idx - window, 0)
    return (sums[idx] - sums[start]) / (idx - start)


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
           if len(values) > 1 else None)
    return mean, std


@dataclass(frozen=True)
class AgentSummary:
    """First and last ``window`` episodes of one agent, final D_R mIoU in % (x 100).

    ``spread`` is the episodes' spread: the pooled sample standard deviation of the two
    windows, sqrt((s_first^2 + s_last^2) / 2) (None when a window has fewer than two episodes).
    ``learned``: whether the last mean is above the first mean by more than that spread (None
    when it cannot be told). ``overlap``: fewer than 2 x window episodes, so the windows share
    episodes. ``start``: the mean D_R mIoU (%) the episodes started from (the game's start
    model), so an episode's end can be read against it. ``loss_first`` / ``loss_last``: the
    median DQN (Huber) loss of the first / last window, ``loss_max`` the largest episode loss:
    a loss far above the squared scale of the returns means diverging Q-values.
    """

    episodes: int
    window: int
    first: float | None
    last: float | None
    spread: float | None
    start: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    loss_max: float | None = None

    @property
    def difference(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first

    @property
    def overlap(self) -> bool:
        return self.episodes < 2 * self.window

    @property
    def learned(self) -> bool | None:
        if self.difference is None or self.spread is None:
            return None
        return self.difference > self.spread


def summarize(episodes: Sequence[dict[str, Any]], window: int = WINDOW) -> AgentSummary:
    """:class:`AgentSummary` of the episodes that have a ``final_miou`` (in episode order)."""
    done = [e for e in sorted(episodes, key=lambda e: e["episode"])
            if e.get("final_miou") is not None]
    values = [100.0 * float(e["final_miou"]) for e in done]
    if not values:
        return AgentSummary(0, window, None, None, None)
    first_mean, first_std = _mean_std(values[:window])
    last_mean, last_std = _mean_std(values[-window:])
    spread = (None if first_std is None or last_std is None
              else math.sqrt((first_std ** 2 + last_std ** 2) / 2))
    starts = [100.0 * float(e["start_miou"]) for e in done if e.get("start_miou") is not None]
    losses = [float(e["loss"]) for e in done if e.get("loss") is not None]
    return AgentSummary(
        len(values), window, first_mean, last_mean, spread,
        start=sum(starts) / len(starts) if starts else None,
        loss_first=float(np.median(losses[:window])) if losses else None,
        loss_last=float(np.median(losses[-window:])) if losses else None,
        loss_max=max(losses) if losses else None,
    )
