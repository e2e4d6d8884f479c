"""The folders ralis owns (run directories, grid folders, labelling projects): one process at a
time, and no link inside.

Run directories and projects are copied between people, and ralis writes and reads its own
state in them; a symbolic link inside one would make ralis write or read somewhere else (a
``.lock`` linked to any file, ``rounds/3`` or ``pretrain/`` linked to another folder). Every
command that opens such a folder calls :func:`lock_dir`, which

* opens ``DIR/.lock`` without following a link (``O_NOFOLLOW``), refuses anything but a regular
  file with a single name (a hard link to another file is refused too), never truncates it, and
  holds an exclusive ``flock`` on it until :func:`unlock_dir` or the end of the process. The
  holder (pid, host, command, time) is written over the file's first :data:`HOLDER_BYTES` bytes
  for the error a second process gets, and blanked on release;
* refuses every symbolic link, FIFO, socket or device below ``DIR`` (:func:`refuse_links`).

The folder itself may be a link: the user named it on the command line.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import time
from pathlib import Path

from ralis.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, documented
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderError", "LockedError", "HOLDER_BYTES", "LOCK_NAME", "lock_dir", "unlock_dir",
           "open_lock_file", "refuse_links"]

LOCK_NAME = ".lock"
HOLDER_BYTES = 1024  # the holder's record: JSON padded with spaces, written at offset 0


class FolderError(ConfigError):
    """A folder ralis owns cannot be used: unwritable, a link inside it, a bad ``.lock``."""


class LockedError(FolderError):
    """Another process holds the folder."""


_HELD: dict[str, list] = {}  # real path -> [fd, count]: the locks this process holds


def open_lock_file(path: Path, create: bool = True) -> int:
    """``path`` opened read-write without following a link; a link, a folder, a FIFO or a file
    with another name (hard link) is a one-line :class:`FolderError`; never truncated."""
    path = Path(path)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_CREAT if create
                                                                       else 0)
    link = FolderError(f"{path} is a symbolic link; ralis never writes through links in its "
                       f"folders (a copied folder?): delete {path}")
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISLNK(mode):
        raise link
    if mode is not None and not stat.S_ISREG(mode):  # not even opened: a FIFO, a device
        raise FolderError(f"{path} is not a regular file; ralis only locks a plain file of its "
                          f"own there: delete {path}")
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # made a link since the check above
            raise link from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(info.st_mode) else (
            f"a hard link to another file ({info.st_nlink} names)")
        raise FolderError(f"{path} is {what}; ralis only locks a plain file of its own there: "
                          f"delete {path}")
    return fd


def _holder(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            info = json.loads(os.pread(fd, HOLDER_BYTES, 0).strip() or b"{}")
        finally:
            os.close(fd)
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("since", 0))))
    return (f"process {info.get('pid', '?')} on {info.get('host', '?')} "
            f"(`ralis {info.get('command', '?')}`, since {since})")


def _record(command: str) -> bytes:
    info = {"pid": os.getpid(), "host": socket.gethostname()[:200], "command": command[:400],
            "since": time.time()}
    return json.dumps(info).encode()[:HOLDER_BYTES].ljust(HOLDER_BYTES)


def refuse_links(root: Path, what: str = "run directory") -> None:
    """A one-line :class:`FolderError` for the first symbolic link (or FIFO, socket, device)
    below ``root``: ralis reads and writes its own state there, never through a link."""
    todo = [Path(root)]
    while todo:
        folder = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # unreadable: opening what ralis needs there reports it
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                raise FolderError(
                    f"{path} is a symbolic link (to {os.readlink(path)}); ralis follows no link "
                    f"inside a {what}, whose files it writes or reads as its own (a copied "
                    "folder?): replace it by the real file or folder")
            if entry.is_dir(follow_symlinks=False):
                todo.append(path)
            elif not entry.is_file(follow_symlinks=False):
                raise FolderError(f"{path} is not a regular file or folder (a FIFO, socket or "
                                  f"device) inside a {what}; delete it")


def lock_dir(root: Path, command: str, what: str = "run directory",
             other: str | None = "choose another --out") -> None:
    """Take the exclusive lock of ``root`` for this process (re-entrant within it) and check
    that nothing below it is a link (see the module docs). ``what`` names the folder and
    ``other`` the way out in the errors."""
    root = Path(root)
    key = os.path.realpath(root)
    if key in _HELD:
        _HELD[key][1] += 1
        return
    path = root / LOCK_NAME
    try:
        fd = open_lock_file(path)
    except OSError as exc:
        raise FolderError(f"cannot write in {what} {root} ({exc.strerror})"
                          + (f"; {other}" if other else "; check its permissions")) from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LockedError(f"{root} is in use by {_holder(path)}; wait for it to "
                                      "finish, or stop it" + (f", or {other}" if other else "")
                                      ) from None
                raise FolderError(f"cannot lock {what} {root} ({exc.strerror})") from None
        refuse_links(root, what)
        os.pwrite(fd, _record(command), 0)
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = [fd, 1]


def unlock_dir(root: Path) -> None:
    """Release one hold of ``root``'s lock (the last one blanks the holder and unlocks)."""
    key = os.path.realpath(Path(root))
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _HELD[key]
        try:
            os.pwrite(held[0], b" " * HOLDER_BYTES, 0)
        except OSError:
            pass
        os.close(held[0])  # releases the flock
