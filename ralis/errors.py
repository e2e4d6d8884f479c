"""User-facing errors: the CLI prints them as one line and exits non-zero, without a traceback."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


class RalisError(Exception):
    """A mistake the user can fix (bad input, bad config). The message says what and how."""


class DataError(RalisError):
    """A dataset is missing, malformed or inconsistent."""


class ConfigError(RalisError):
    """A config value or a name (model, strategy, dataset, preset) is invalid."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for
    one-line errors that wrap a library's multi-line message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def disk_full(exc: BaseException, folder: str | os.PathLike | None = None) -> RalisError | None:
    """A full disk (or quota) while writing, as a one-line error; None for anything else.
    SQLite may report a full disk as ``disk I/O error``: with ``folder`` (where it writes), that
    counts when less than 1 MiB is free there. Every file ralis writes is written atomically and
    every record in a transaction, so the same command run again once there is room continues
    exactly."""
    full = (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        isinstance(exc, sqlite3.Error)
        and (getattr(exc, "sqlite_errorcode", None) == getattr(sqlite3, "SQLITE_FULL", 13)
             or "database or disk is full" in str(exc)))
    if not full and folder is not None and isinstance(exc, sqlite3.OperationalError) and (
            "disk I/O error" in str(exc)):
        try:
            info = os.statvfs(folder)
            full = info.f_bavail * info.f_frsize < 1 << 20
        except OSError:
            pass
    if not full:
        return None
    where = f" (writing {exc.filename})" if getattr(exc, "filename", None) else ""
    return RalisError(f"no space left on the device{where}; free some space and run the same "
                      "command again (with --resume if it has that option): everything saved "
                      "so far is kept")


def as_user_error(exc: BaseException) -> RalisError | None:
    """``exc`` if it is a :class:`RalisError`, a full disk as one (:func:`disk_full`), else
    None (a bug: its traceback matters)."""
    return exc if isinstance(exc, RalisError) else disk_full(exc)


@contextmanager
def full_disk_reported(folder: str | os.PathLike) -> Iterator[None]:
    """Turn a full disk while writing in ``folder`` into :func:`disk_full`'s one-line error."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        full = disk_full(exc, folder)
        if full is None:
            raise
        raise full from None
