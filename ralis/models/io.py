"""Self-describing model files (``model.safetensors``).

A model file is a ralis safetensors file (:mod:`ralis.files.safe`) of kind ``model``: the
network's weights, and a record saying how to rebuild it (registry name, class count, factory
options) and what it is (class names, dataset, resolution, training data hash, metrics).
:func:`load_model` rebuilds the network from the model registry: nothing in the file runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ralis.errors import ConfigError
from ralis.files.safe import (
    FileFormatError,
    base_record,
    enc_plain,
    load_file,
    save_file,
    weights_for,
)
from ralis.models.factory import create_model

MAX_CLASSES = 10_000


def save_model(
    path: str | os.PathLike[str],
    model: nn.Module,
    name: str,
    num_classes: int,
    kwargs: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and how to rebuild it (``create_model(name, num_classes,
    **kwargs)``) to ``path`` atomically (temporary file, fsync, rename). ``extra`` is the rest
    of the record (classes, dataset, metrics, ...), returned by :func:`load_model` as
    ``meta["extra"]``; plain values only. Returns the path written."""
    try:
        record = {**enc_plain(dict(extra or {})), **base_record(),
                  "model": {"name": str(name), "num_classes": int(num_classes),
                            "kwargs": enc_plain(dict(kwargs))}}
    except TypeError as exc:
        raise TypeError(f"cannot store the model's extra record: {exc}") from None
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_file(Path(path), {"state_dict": state}, "model", record)


MAX_OPTION = 4096  # model options in a file are bounded: a record cannot ask for a huge net


def _plain_option(v: Any) -> bool:
    """A model option a file may carry: a bounded number, a string, or a short list of them."""
    if isinstance(v, list):
        return len(v) <= 16 and all(_plain_option(x) and not isinstance(x, list) for x in v)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v is None or not isinstance(v, str) or len(v) <= 256
    if isinstance(v, int | float):
        return math.isfinite(v) and abs(v) <= MAX_OPTION
    return False


def _model_section(record: dict[str, Any], path: Path) -> tuple[str, int, dict[str, Any]]:
    section = record.get("model")
    if not isinstance(section, dict):
        raise FileFormatError(f"{path}: its record does not say which network it holds")
    name, num_classes, kwargs = section.get("name"), section.get("num_classes"), section.get(
        "kwargs") or {}
    ok = (isinstance(name, str) and isinstance(num_classes, int)
          and not isinstance(num_classes, bool) and 1 <= num_classes <= MAX_CLASSES
          and isinstance(kwargs, dict)
          and all(_plain_option(v) for v in kwargs.values()))
    if not ok:
        raise FileFormatError(f"{path}: its record holds an invalid network description "
                              f"({section!r:.120})")
    return name, num_classes, kwargs


def load_model(
    path: str | os.PathLike[str], map_location: Any = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network saved by :func:`save_model` and load its weights.

    Returns ``(model, meta)`` with ``meta = {"name", "num_classes", "kwargs", "extra", "path"}``
    (``extra``: the record without its ``model`` section); the model is in eval mode. A
    missing, corrupt, crafted or mismatched file raises a one-line :class:`RalisError`.
    """
    path = Path(path)
    tree, record = load_file(path, "model")
    name, num_classes, kwargs = _model_section(record, path)
    try:
        with torch.device("meta"):  # shapes first, without allocating what a record claims
            skeleton = create_model(name, num_classes, encoder_weights="none", **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"model file {path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: its network options are invalid ({exc})") from None
    state = weights_for(tree, skeleton, path, f"network {name!r}")
    model = create_model(name, num_classes, encoder_weights="none", **kwargs)  # from the file
    model.load_state_dict(state, strict=True)
    model.eval()
    if (map_location is not None and not callable(map_location)
            and not isinstance(map_location, dict)):
        model.to(torch.device(map_location))
    extra = {k: v for k, v in record.items() if k != "model"}
    meta = {"name": name, "num_classes": num_classes, "kwargs": kwargs, "extra": extra,
            "path": str(path)}
    return model, meta


def check_num_classes(meta: dict[str, Any], num_classes: int) -> None:
    """Raise :class:`ConfigError` when the checkpoint described by ``meta`` (from
    :func:`load_model`) predicts a different number of classes than ``num_classes``."""
    saved = meta.get("num_classes")
    if saved != num_classes:
        where = meta.get("path", "the checkpoint")
        raise ConfigError(
            f"model file {where} ({meta.get('name', '?')}) predicts {saved} classes but "
            f"{num_classes} are expected; use a model trained for this dataset"
        )


def check_classes(meta: dict[str, Any], names: list[str] | tuple[str, ...]) -> None:
    """Class count, then class names (when the file records them), must match the run's."""
    check_num_classes(meta, len(names))
    saved = (meta.get("extra") or {}).get("classes")
    if saved is not None and not (isinstance(saved, list)
                                  and all(isinstance(c, str) for c in saved)):
        raise ConfigError(f"model file {meta.get('path', '?')}: its record's class list is "
                          "malformed; the file is damaged or crafted")
    if saved and list(saved) != list(names):
        where = meta.get("path", "the model file")
        pairs = list(zip(saved, names, strict=False))
        first = next((i for i, (a, b) in enumerate(pairs) if a != b), len(pairs))
        there = saved[first] if first < len(saved) else "nothing"
        here = names[first] if first < len(names) else "nothing"
        raise ConfigError(
            f"model file {where} was trained on other classes: class {first} is {there!r} "
            f"there and {here!r} here; use a model trained on this dataset's classes")
