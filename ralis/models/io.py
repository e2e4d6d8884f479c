"""Self-describing model checkpoints.

A checkpoint is a ``torch.save`` file holding the plain dict
``{"name", "num_classes", "kwargs", "state_dict", "extra"}``; :func:`load_model` rebuilds the
network from the model registry, so no code is pickled and files load with
``weights_only=True``.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ralis.errors import ConfigError, RalisError

_KEYS = ("name", "num_classes", "kwargs", "state_dict", "extra")


def _plain(obj: Any, where: str) -> Any:
    """Convert ``obj`` to types ``torch.load(weights_only=True)`` accepts (numpy -> Python,
    paths -> str); anything else is a :class:`TypeError` naming ``where``."""
    if type(obj).__module__.startswith("numpy") and callable(getattr(obj, "tolist", None)):
        return obj.tolist()  # numpy scalars (even float64, a float subclass) and arrays
    if obj is None or isinstance(obj, torch.Tensor):
        return obj
    for plain in (bool, int, float, str):  # exact types: subclasses may not unpickle safely
        if isinstance(obj, plain):
            return plain(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {_plain(k, where): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"cannot store {where} of type {type(obj).__name__} in a checkpoint "
        "(use None, bool, int, float, str, tensors, lists, tuples, dicts)"
    )


def save_model(
    path: str | os.PathLike[str],
    model: nn.Module,
    name: str,
    num_classes: int,
    kwargs: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and how to rebuild it (``create_model(name, num_classes,
    **kwargs)``) to ``path`` atomically: a temporary file in the same folder, then
    ``os.replace``, so a crash never leaves a half-written checkpoint. Parent folders are
    created. ``extra`` is free metadata (epoch, mIoU, ...) returned by :func:`load_model`.
    Returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": str(name),
        "num_classes": int(num_classes),
        "kwargs": _plain(dict(kwargs), "kwargs"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": _plain(dict(extra or {}), "extra"),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path: Path, map_location: Any) -> dict[str, Any]:
    if not path.is_file():
        raise RalisError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        zipfile.BadZipFile,
        OSError,
        UnicodeDecodeError,
    ) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RalisError(
            f"cannot read checkpoint {path}: corrupt, truncated or not a torch file ({reason})"
        ) from None
    if not isinstance(payload, dict) or any(k not in payload for k in _KEYS):
        raise RalisError(
            f"{path} is not a ralis model checkpoint (expected keys: {', '.join(_KEYS)})"
        )
    return payload


def load_model(
    path: str | os.PathLike[str], map_location: Any = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network saved by :func:`save_model` and load its weights.

    Returns ``(model, meta)`` with ``meta = {"name", "num_classes", "kwargs", "extra", "path"}``;
    the model is in eval mode. A missing, corrupt or mismatched file raises :class:`RalisError`
    (an unknown model name or option: :class:`ConfigError`).
    """
    from ralis.models import create_model  # late import: ralis.models imports this module

    path = Path(path)
    payload = _read(path, map_location)
    name, num_classes = payload["name"], payload["num_classes"]
    kwargs = dict(payload["kwargs"] or {})
    try:
        model = create_model(name, num_classes, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"checkpoint {path}: {exc}") from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RalisError(
            f"checkpoint {path} does not match model {name!r} built from its own settings: {first}"
        ) from None
    model.eval()
    if (
        map_location is not None
        and not callable(map_location)
        and not isinstance(map_location, dict)
    ):
        model.to(torch.device(map_location))
    meta = {
        "name": name,
        "num_classes": num_classes,
        "kwargs": kwargs,
        "extra": payload["extra"],
        "path": str(path),
    }
    return model, meta


def check_num_classes(meta: dict[str, Any], num_classes: int) -> None:
    """Raise :class:`ConfigError` when the checkpoint described by ``meta`` (from
    :func:`load_model`) predicts a different number of classes than ``num_classes``."""
    saved = meta.get("num_classes")
    if saved != num_classes:
        where = meta.get("path", "the checkpoint")
        raise ConfigError(
            f"checkpoint {where} ({meta.get('name', '?')}) predicts {saved} classes but "
            f"{num_classes} are expected; use a checkpoint trained for this dataset"
        )
