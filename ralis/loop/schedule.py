"""When the cells of ``ralis benchmark`` run: each once the cells it needs have finished, as many
at a time as the executor (:mod:`ralis.loop.executors`) has slots."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ralis.loop.cells import Cell, Task
from ralis.loop.executors import Executor

__all__ = ["run_cells"]


def run_cells(cells: Sequence[Cell], executor: Executor,
              on_start: Callable[[Cell], None] | None = None,
              on_done: Callable[[Task], None] | None = None) -> dict[str, str]:
    """Run ``cells`` on ``executor``, each once its ``needs`` finished, in the order given among
    those ready; return ``{cell name: one-line error}`` of the cells that failed or could not
    start because a cell they need failed (empty when all finished).

    ``on_done`` is called in this process after each finished or failed cell (not for those
    never started). An exception here (Ctrl-C) cancels what is queued and stops the workers;
    every cell keeps what it saved and resumes on the next run.
    """
    names = {c.name for c in cells}
    for cell in cells:
        missing = [n for n in cell.needs if n not in names]
        if missing:
            raise ValueError(f"cell {cell.name} needs unknown cells {missing}")
    pending = list(cells)
    running: list[Task] = []
    done: set[str] = set()
    failed: dict[str, str] = {}
    executor.start()
    try:
        while pending or running:
            for cell in list(pending):
                blocked = [n for n in cell.needs if n in failed]
                if blocked:
                    pending.remove(cell)
                    failed[cell.name] = f"not run: it needs {blocked[0]}, which failed"
                elif all(n in done for n in cell.needs) and len(running) < executor.slots:
                    pending.remove(cell)
                    if on_start is not None:
                        on_start(cell)
                    running.append(executor.submit(cell))
            if not running:
                break  # everything left is blocked (reported above)
            for task in executor.wait(running):
                running.remove(task)
                if task.error is None:
                    done.add(task.cell.name)
                else:
                    failed[task.cell.name] = task.error
                if on_done is not None:
                    on_done(task)
    except BaseException:
        executor.close(cancel=True)
        raise
    executor.close()
    return failed
