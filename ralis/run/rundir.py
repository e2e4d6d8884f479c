"""One guard for every run directory: a lock, an identity, a config, and files that agree.

Every command that writes a run directory (``pretrain``, ``simulate``, ``upper-bound``,
``train-agent``, each benchmark cell) opens it with :func:`open_run`, which

* takes an exclusive lock (``fcntl.flock`` on ``DIR/.lock``) held until the run is closed or
  the process ends; a second process gets a one-line error naming the holder; a symbolic link
  anywhere in the directory is refused (:func:`ralis.files.folders.lock_dir`);
* creates ``run.sqlite`` (the run's record: run id, command, resolved config, and everything
  it computes) atomically, or reopens it with an integrity check on ``--resume``;
* refuses a ``--resume`` whose command line asks for other settings than the stored ones,
  listing each field with both values;
* refuses a directory whose files do not agree with its record: run files without a
  ``run.sqlite``, a checkpoint that is missing, from another run or older than the record.
  It never recomputes a lost record into different numbers; ``config.json`` and
  ``command.json`` are views of the record and are rewritten when missing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ralis.config import (
    MACHINE_FIELDS,
    RunConfig,
    apply_overrides,
    config_diff,
    describe_diff,
    from_dict,
    save_config,
    to_dict,
    validate,
)
from ralis.errors import ConfigError
from ralis.files.atomic import atomic_write_text
from ralis.files.folders import FolderError, LockedError, lock_dir, unlock_dir
from ralis.files.record import data_hash
from ralis.files.safe import FileFormatError, base_record, file_digest, load_file, save_file
from ralis.run.names import LEGACY_FILES, RUN_FILES, STORE_NAME
from ralis.run.session import check_device
from ralis.run.store import RunStore, RunStoreError

__all__ = ["Run", "RunDirError", "RunLockedError", "open_run", "lock_dir", "unlock_dir",
           "prepare_dir", "has_run", "stored_command", "data_digests"]


class RunDirError(FolderError):
    """A run directory cannot be used: unwritable, inconsistent, or a mismatched resume."""


RunLockedError = LockedError
"""Another process holds the run directory (:func:`ralis.files.folders.lock_dir`)."""


# ------------------------------------------------------------------------------ folder
def prepare_dir(out: Path) -> Path:
    """Create ``out`` (and parents); an unusable path is a one-line error."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a folder; choose a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunDirError(f"cannot create run directory {out}: part of the path is a file; "
                          "choose another --out") from None
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {out} ({exc.strerror}); choose another "
                          "--out") from None
    return out


# ------------------------------------------------------------------------------------- run
def _recover(root: Path) -> str:
    return f"start over in a new --out (or delete {root} to rerun it from scratch)"


@dataclass
class Run:
    """An open, locked run directory. Close it (or use ``with``) to release the lock."""

    root: Path
    cfg: RunConfig
    store: RunStore
    run_id: str
    command: str

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            unlock_dir(self.root)

    # --- identity ---------------------------------------------------------------------------
    def remember(self, key: str, value: Any, mismatch: Callable[[Any], str]) -> None:
        """Record ``value`` under ``key`` the first time, and on every later open check that it
        is the same; else a one-line error, ``mismatch(recorded value)``."""
        noted = self.store.get_meta(key)
        if noted is None:
            self.store.set_meta(key, value)
        elif noted != value:
            raise RunDirError(mismatch(noted))

    def same_data(self, proto: Any, roles: tuple[str, ...] | None = None) -> None:
        """Record what the run reads (a SHA-256 of each set's names, images and masks at the
        working size), or check that a resumed run reads the same: a changed dataset, split
        rule or resolution would otherwise give other numbers under the same run. ``roles``:
        only those sets (``train-agent`` never reads the test split, not even to hash it); a
        run recorded with more sets is compared on these."""
        now = data_digests(proto, roles)
        noted = self.store.get_meta("data")
        if noted is None:
            self.store.set_meta("data", now)
            return
        changed = [k for k in now if noted.get(k, now[k]) != now[k]]
        if changed:
            raise RunDirError(
                f"the data of {self.root} changed since the run started "
                f"({', '.join(changed)} differ: other images, labels, split rules or "
                "resolution); resume on the same data, or start over in a new --out")

    # --- views ------------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_text(json.dumps(obj, indent=2) + "\n", self.root / name)

    # --- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, name: str, kind: str, tree: Any, position: dict[str, int]) -> None:
        """Write ``name`` (atomically) and record it in the store: ``position`` (e.g.
        ``{"step": 12}``) and the file's checksum. The record is written after the file, so a
        crash between the two leaves a file exactly one position ahead of the record."""
        record = {**base_record(), "run_id": self.run_id, "command": self.command, **position}
        path = save_file(self.root / name, tree, kind, record)
        digest = file_digest(path)
        self.store.set_meta(f"checkpoint:{name}", {**position, "digest": digest})

    def load_checkpoint(self, name: str, kind: str, key: str) -> tuple[Any, dict] | None:
        """The checkpoint ``name`` if it agrees with the record, None if none was saved yet.

        ``key`` is the position field (``step``, ``epoch``, ``episode``). Refused with a
        one-line error: missing while the record names it, from another run, older than the
        record, or ahead of it by more than the one position a crash can leave.
        """
        path = self.root / name
        noted = self.store.get_meta(f"checkpoint:{name}")
        if not path.exists():
            if noted is None:
                return None
            raise RunDirError(f"{path} is missing, but run.sqlite records it at {key} "
                              f"{noted[key]}: the run cannot continue with the same numbers; "
                              f"{_recover(self.root)}")
        tree, record = load_file(path, kind)
        if isinstance(tree, dict) and key in tree and tree[key] != record.get(key):
            raise RunDirError(f"{path} says {key} {tree[key]} in its content but {record.get(key)} "
                              f"in its record; the file is damaged; {_recover(self.root)}")
        if record.get("run_id") != self.run_id:
            raise RunDirError(f"{path} belongs to another run (run id {record.get('run_id')!r}, "
                              f"this run is {self.run_id!r}); {_recover(self.root)}")
        pos = record.get(key)
        if not isinstance(pos, int):
            raise FileFormatError(f"{path}: its record has no {key}")
        if noted is None:
            ok = pos == 1 or (key == "episode" and pos == 0)
        elif pos == noted[key]:
            ok = record["sha256"] == noted.get("digest")
        else:
            ok = pos == noted[key] + 1
        if not ok:
            at = "nothing" if noted is None else f"{key} {noted[key]}"
            raise RunDirError(f"{path} is at {key} {pos} but run.sqlite records {at}: the "
                              f"files of {self.root} do not agree; {_recover(self.root)}")
        return tree, record


DATA_ROLES = ("D_S", "D_T", "D_V", "D_R", "test", "selection")


def data_digests(proto: Any, roles: tuple[str, ...] | None = None) -> dict[str, str]:
    """``{"D_S", "D_T", "D_V", "D_R", "test"}`` (and ``"selection"`` when the protocol has a
    selection split), or just ``roles`` of them -> SHA-256 of that set (cached on ``proto``)."""
    cached = getattr(proto, "_ralis_data_digests", None)
    if cached is None:
        cached = {}
        try:
            proto._ralis_data_digests = cached
        except AttributeError:
            pass
    sets = {"D_S": lambda: proto.state, "D_T": lambda: proto.dqn_train,
            "D_V": lambda: proto.pool, "D_R": lambda: proto.reward, "test": lambda: proto.test,
            "selection": lambda: getattr(proto, "selection", None)}
    out = {}
    for role in roles or DATA_ROLES:
        if role not in cached:
            images = sets[role]()
            if images is None:
                continue
            cached[role] = data_hash(images.images_u8, images.masks, list(images.names))
        out[role] = cached[role]
    return out


def has_run(out: Path) -> bool:
    """Whether ``out`` already holds a run record (no lock taken, nothing written)."""
    return (Path(out) / STORE_NAME).exists()


def stored_command(out: Path) -> str | None:
    """The command recorded in ``out/run.sqlite`` (e.g. ``simulate:entropy``), read without
    the lock or any write; None when there is no readable record. For defaults only: the run
    is checked again when it is opened."""
    import sqlite3

    path = Path(out) / STORE_NAME
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'command'").fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row else None
    except (sqlite3.Error, ValueError):
        return None


def _legacy(root: Path) -> str:
    return (f"{root} was written by ralis 0.1, whose checkpoints are pickles that 0.2 does not "
            "load; its results.json stay readable (`ralis report`), but the run cannot be "
            "resumed: start it over in a new --out (models and policies convert with "
            "`ralis convert FILE`)")


def _orphans(root: Path) -> list[str]:
    return [n for n in RUN_FILES if (root / n).exists()]


def _stored_config(store: RunStore, root: Path) -> RunConfig:
    try:
        return validate(from_dict(RunConfig, store.get_meta("config")))
    except (ConfigError, TypeError) as exc:
        raise RunStoreError(f"{root / STORE_NAME} holds an unreadable config ({exc}); "
                            f"{_recover(root)}") from None


def _check_views(root: Path, saved: RunConfig, meta: dict[str, Any]) -> None:
    """config.json / command.json are views of the record: rewritten when missing or
    unreadable; a readable copy that says something else (edited by hand, or from another run)
    is refused."""
    path = root / "config.json"
    try:
        there = validate(from_dict(RunConfig, json.loads(path.read_text())))
    except (OSError, ValueError, ConfigError, TypeError):
        there = None  # missing or unreadable: rewritten from the record below
    if there is not None:
        diff = config_diff(saved, there)
        if diff:
            raise RunDirError(
                f"{path} differs from the run's record in run.sqlite "
                f"({describe_diff(diff[:3], 'run.sqlite', 'config.json')}): was it edited? "
                f"Restore it, or {_recover(root)}")
    else:
        save_config(saved, path)
    try:
        json.loads((root / "command.json").read_text())
    except (OSError, ValueError):
        atomic_write_text(json.dumps(meta, indent=2) + "\n", root / "command.json")


def open_run(out: Path, cfg: RunConfig, command: str, resume: bool,
             given: list[str] | None = None, given_preset: str | None = None,
             ignore: tuple[str, ...] = ()) -> Run:
    """Create the run directory ``out`` for ``cfg``, or reopen it with ``resume``.

    On resume the stored config wins; what the caller asked for must agree with it:
    with ``given=None`` (library calls) the whole ``cfg`` except :data:`MACHINE_FIELDS`;
    otherwise only the command line's explicit settings (``given``: ``field=value``
    assignments, ``given_preset``: an explicit ``--preset``). ``ignore``: fields or sections
    that may differ (a shared θ0 reused by a grid whose budgets changed). The device and
    thread count may change between sessions. Returns the open, locked :class:`Run`.
    """
    out = prepare_dir(Path(out))
    lock_dir(out, command)
    try:
        return _open_locked(out, cfg, command, resume, given, given_preset, ignore)
    except BaseException:
        unlock_dir(out)
        raise


def _open_locked(out: Path, cfg: RunConfig, command: str, resume: bool,
                 given: list[str] | None, given_preset: str | None,
                 ignore: tuple[str, ...]) -> Run:
    if (out / STORE_NAME).exists():
        if not resume:
            raise RunDirError(f"{out} already holds a run; pass --resume to continue it or "
                              "choose another --out")
        if (out / STORE_NAME).stat().st_size == 0:
            raise RunStoreError(f"{out / STORE_NAME} is empty: the run's record is lost; "
                                f"{_recover(out)}")
        store = RunStore(out)
        try:
            meta = {k: store.get_meta(k) for k in ("run_id", "command", "git_revision",
                                                    "ralis_version", "created")}
            if meta["run_id"] is None:
                legacy = store.num_acquired() or store.steps() or store.episodes() or any(
                    (out / n).exists() for n in LEGACY_FILES)
                raise RunDirError(_legacy(out) if legacy else
                                  f"{out / STORE_NAME} holds no run record; {_recover(out)}")
            if meta["command"] != command:
                raise RunDirError(f"{out} holds a `{meta['command']}` run, not `{command}`; "
                                  "choose another --out")
            saved = _stored_config(store, out)
            _check_views(out, saved, {**meta, "config": to_dict(saved)})
            if given is None:
                wanted = cfg
            else:
                wanted = apply_overrides(saved, given)
                if given_preset is not None:
                    wanted = replace(wanted, preset=given_preset)
            validate(wanted)
            diff = config_diff(saved, wanted, ignore=(*MACHINE_FIELDS, *ignore))
            if diff:
                raise RunDirError(
                    f"--resume of {out} asks for other settings than the run was started with "
                    f"({describe_diff(diff)}); resume with the stored settings (leave those "
                    "options out) or start a new run in another --out")
            final = replace(saved, device=wanted.device, threads=wanted.threads)
            if final.device != "cpu":
                check_device(final.device)
            return Run(out, final, store, meta["run_id"], command)
        except BaseException:
            store.close()
            raise
    if any((out / n).exists() for n in LEGACY_FILES):
        raise RunDirError(_legacy(out))
    orphans = _orphans(out)
    if orphans:
        raise RunDirError(f"{out} holds files of a run ({', '.join(orphans)}) but no "
                          f"run.sqlite: its record is lost and it cannot be resumed without "
                          f"different numbers; {_recover(out)}")
    validate(cfg)
    run_id = uuid.uuid4().hex
    info = base_record()
    meta = {"run_id": run_id, "command": command, "git_revision": info["git_revision"],
            "ralis_version": info["ralis_version"], "created": info["created"]}
    store = RunStore.create(out, {**meta, "config": to_dict(cfg)})
    save_config(cfg, out / "config.json")
    atomic_write_text(json.dumps({**meta, "config": to_dict(cfg)}, indent=2) + "\n",
                      out / "command.json")
    return Run(out, cfg, store, run_id, command)
