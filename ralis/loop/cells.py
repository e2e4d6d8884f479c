"""The cells of ``ralis benchmark``: one run directory of the grid each, and how one is run.

A :class:`Cell` is θ0, one agent, one AL run or the upper bound, with the cells it needs (an AL
run needs θ0; a RALIS run also needs its agent). :func:`run_cell` runs (or resumes, or reopens)
one, in whatever process an executor (:mod:`ralis.loop.executors`) gives it; a :class:`Task` is a
submitted cell as the executor tracks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ralis.config import RunConfig
from ralis.errors import as_user_error, first_line
from ralis.loop.agent import train_agent
from ralis.loop.pretrain import pretrain, upper_bound
from ralis.loop.simulate import simulate

__all__ = ["Cell", "Task", "describe", "run_cell"]


@dataclass(frozen=True)
class Cell:
    """One run directory of the grid and how to run it (picklable: it travels to workers)."""

    name: str  # theta0, agent-s<seed>, <strategy>-s<seed>, full
    kind: str  # pretrain, agent, simulate, upper
    cfg: RunConfig
    run_dir: Path
    ignore: tuple[str, ...] = ()  # fields that may differ from a stored run (open_run's ignore)
    strategy: str | None = None  # simulate: the strategy
    pretrained: Path | None = None  # simulate: θ0's model file
    policy: Path | None = None  # simulate ralis: the agent's policy file
    needs: tuple[str, ...] = ()  # names of the cells that must finish first


def run_cell(cell: Cell, progress: bool = False, proto: Any = None) -> None:
    """Run (or resume, or just reopen and check, when finished) one cell."""
    kw = {"resume": True, "progress": progress, "proto": proto, "ignore": cell.ignore}
    if cell.kind == "pretrain":
        pretrain(cell.cfg, cell.run_dir, **kw)
    elif cell.kind == "agent":
        train_agent(cell.cfg, cell.run_dir, **kw)
    elif cell.kind == "simulate":
        extra = {"policy": cell.policy} if cell.policy is not None else {}
        simulate(cell.cfg, cell.strategy, cell.run_dir, pretrained=cell.pretrained,
                 strategy_kwargs=extra, **kw)
    elif cell.kind == "upper":
        upper_bound(cell.cfg, cell.run_dir, **kw)
    else:
        raise ValueError(f"unknown cell kind {cell.kind!r}")


def describe(exc: BaseException) -> str:
    """One line for a failed cell: a ralis error's (or a full disk's) message, else the type and
    first line."""
    user = as_user_error(exc)
    return first_line(user) if user is not None else f"{type(exc).__name__}: {first_line(exc)}"


@dataclass(eq=False)
class Task:
    """A submitted cell: what the executor tracks (its future or Ray reference, its tries)."""

    cell: Cell
    handle: Any = None
    tries: int = 1
    error: str | None = None  # set when finished and failed
    detail: str | None = None  # traceback of an unexpected error (not a RalisError)
