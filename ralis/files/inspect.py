"""``ralis inspect FILE``: what a ralis file says it is, read from its header only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ralis.files.header import DTYPES, read_header  # the header only: no torch

__all__ = ["inspect_file", "format_inspection"]

def inspect_file(path: Path) -> dict[str, Any]:
    """``{"path", "kind", "record", "tensors": {"count", "values", "bytes", "dtypes"}}``.

    Reads the header only (no tensor is loaded, nothing is executed); a file that is not a
    ralis file is a one-line error (a 0.1 pickle: with the ``ralis convert`` hint).
    """
    kind, record, shapes = read_header(Path(path))
    values = 0
    nbytes = 0
    dtypes: dict[str, int] = {}
    for info in shapes.values():
        n = math.prod(info["shape"])
        values += n
        nbytes += n * DTYPES[info["dtype"]]
        dtypes[str(info.get("dtype"))] = dtypes.get(str(info.get("dtype")), 0) + 1
    return {"path": str(path), "kind": kind, "record": record,
            "tensors": {"count": len(shapes), "values": values, "bytes": nbytes,
                        "dtypes": dtypes}}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 12:
        return ", ".join(map(str, value[:12])) + f", ... ({len(value)} in all)"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def format_inspection(info: dict[str, Any]) -> str:
    """A readable multi-line summary of :func:`inspect_file`'s result."""
    rec = dict(info["record"])
    t = info["tensors"]
    lines = [f"{info['path']}: ralis {info['kind']} file",
             f"  tensors: {t['count']} ({t['values']:,} values, {t['bytes'] / 2**20:.2f} MiB)"]
    order = ["ralis_version", "git_revision", "created", "role", "model", "classes",
             "num_classes", "ignore_index", "dataset", "dataset_name", "preset", "region",
             "resolution", "features", "training_images", "data_hash", "metrics", "mode",
             "episodes", "seed", "run_id", "command", "step", "epoch", "episode", "labelled"]
    keys = [k for k in order if k in rec] + sorted(k for k in rec if k not in order)
    for key in keys:
        value = rec[key]
        if isinstance(value, dict):
            lines.append(f"  {key}:")
            lines += [f"    {k}: {_fmt(v)}" for k, v in value.items()]
        else:
            lines.append(f"  {key}: {_fmt(value)}")
    return "\n".join(lines)
