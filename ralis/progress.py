"""Progress bars that suit where the output goes.

On a terminal: tqdm bars (and :func:`console_for`, rich output at the terminal's width). Into a file or a pipe (CI logs, ``nohup``, ``> log``): plain lines,
at most one every ``RALIS_PROGRESS_INTERVAL`` seconds (default 30) plus the last one, with no
carriage returns or cursor codes, so a log stays small and readable.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from rich.console import Console
from tqdm.auto import tqdm

__all__ = ["progress_bar", "LineProgress", "is_terminal", "console_for"]

UNWRAPPED = 100_000  # columns of a console that is not a terminal: nothing is ever wrapped


def console_for(stderr: bool = False) -> Console:
    """A rich console for stdout (or stderr). On a terminal it wraps at the terminal's width;
    into a pipe or a file it never wraps, so a command it prints stays one line to copy and a
    table's title stays on its line."""
    stream = sys.stderr if stderr else sys.stdout
    if is_terminal(stream):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=UNWRAPPED, soft_wrap=True)


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("RALIS_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


class LineProgress:
    """A small stand-in for ``tqdm`` that prints one plain line per interval.

    Supports what ralis uses of tqdm: iteration, ``update``, ``set_postfix``, ``write``,
    ``close``, ``n``/``total``, and use as a context manager.
    """

    def __init__(self, iterable: Iterable | None = None, total: float | None = None,
                 desc: str = "", initial: float = 0, unit: str = "it", leave: bool = True,
                 disable: bool = False, file: TextIO | None = None, interval: float | None = None,
                 **_: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total, self.desc, self.n, self.unit = total, desc, initial, unit
        self.leave, self.disable = leave, disable
        self.file = file or sys.stderr
        self.interval = _interval() if interval is None else interval
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.closed = False
        self._printed_n: float | None = None

    def __iter__(self) -> Iterator:
        assert self.iterable is not None
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> str:
        elapsed = time.monotonic() - self.start
        done = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        post = f" {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {done} {self.unit}{pct}, {elapsed:.0f} s{post}"

    def _emit(self) -> None:
        if self.disable:
            return
        print(self._line(), file=self.file, flush=True)
        self.last = time.monotonic()
        self._printed_n = self.n

    def update(self, n: float = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self._emit()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def write(self, text: str) -> None:
        if not self.disable:
            print(text, file=self.file, flush=True)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.leave and self._printed_n != self.n:
            self._emit()


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> Any:
    """``tqdm(iterable, **kwargs)`` on a terminal, :class:`LineProgress` elsewhere."""
    if is_terminal(kwargs.get("file")):
        return tqdm(iterable, **kwargs)
    return LineProgress(iterable, **kwargs)
