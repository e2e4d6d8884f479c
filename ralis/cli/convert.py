"""``ralis convert OLD``: a model or policy from ralis 0.1 (a pickled ``torch.save`` file) into
the safe format. The converted file is read back through the model and policy loaders, which is
why the converter lives at the command layer, above :mod:`ralis.models` and :mod:`ralis.rl`.

The old file is read with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler:
it only rebuilds tensors and plain Python values and refuses any other object, so a crafted
file cannot run code here either. Run checkpoints of 0.1 are not converted: a 0.1 run cannot
be resumed by 0.2 (its results stay readable by ``ralis report``).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ralis.errors import RalisError, first_line
from ralis.files.safe import base_record, enc_plain, save_file
from ralis.models import load_model
from ralis.rl.policy import load_policy

__all__ = ["convert_file"]


def _why(exc: BaseException) -> str:
    """What the restricted unpickler refused, without torch's advice to load the file with
    ``weights_only=False`` (which would run whatever the file holds)."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it refers to {found.group(1)}, which is neither a tensor nor a plain value"
    if "weights_only" in text or "Weights only" in text:
        return "it holds objects other than tensors and plain values"
    return first_line(exc)[:200]


def _read_legacy(path: Path) -> Any:
    if not path.is_file():
        raise RalisError(f"file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile,
            OSError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise RalisError(f"cannot convert {path}: it is not a plain ralis 0.1 file ({_why(exc)});"
                         " ralis 0.1 wrote only tensors and plain values, and nothing in this "
                         "file was run") from None


def convert_file(old: Path, new: Path | None = None) -> tuple[Path, str]:
    """Convert a 0.1 model or policy file; returns ``(new path, kind)``.

    ``new`` defaults to ``old`` with the suffix ``.safetensors``.
    """
    try:
        return _convert(Path(old), new)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RalisError(f"cannot convert {old}: it does not have the layout of a ralis 0.1 "
                         f"model or policy ({type(exc).__name__}: {str(exc)[:120]})") from None


def _convert(old: Path, new: Path | None) -> tuple[Path, str]:
    old = Path(old)
    new = Path(new) if new is not None else old.with_suffix(".safetensors")
    if new.resolve() == old.resolve():
        raise RalisError(f"the converted file would overwrite {old}; pass another output path")
    payload = _read_legacy(old)
    if not isinstance(payload, dict):
        raise RalisError(f"cannot convert {old}: it is not a ralis 0.1 model or policy")
    converted = {"converted_from": str(old), "converted_by": "ralis convert"}
    if payload.get("format") == "ralis-policy-1":
        meta = dict(payload.get("meta") or {})
        record = {**enc_plain(meta), **base_record(), **converted,
                  "features": enc_plain(dict(payload["spec"])), "qnet": dict(payload["qnet"])}
        state = dict(payload["state_dict"])
        kind = "policy"
    elif {"name", "num_classes", "kwargs", "state_dict"} <= set(payload):
        extra = dict(payload.get("extra") or {})
        record = {**enc_plain(extra), **base_record(), **converted,
                  "model": {"name": str(payload["name"]),
                            "num_classes": int(payload["num_classes"]),
                            "kwargs": enc_plain(dict(payload["kwargs"] or {}))}}
        state = dict(payload["state_dict"])
        kind = "model"
    elif {"step", "model", "optimizer"} <= set(payload) or {"episode", "policy"} <= set(payload):
        raise RalisError(f"{old} is a run checkpoint of ralis 0.1; runs of 0.1 cannot be resumed "
                         "by 0.2 (their results.json stay readable): start the run over")
    else:
        raise RalisError(f"cannot convert {old}: it is not a ralis 0.1 model or policy")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RalisError(f"cannot convert {old}: its state_dict holds non-tensor values")
    save_file(new, {"state_dict": state}, kind, record)
    # read it back through the safe loaders: a file that would be refused is not left behind
    try:
        if kind == "policy":
            load_policy(new)
        else:
            load_model(new)
    except RalisError:
        new.unlink(missing_ok=True)
        raise
    return new, kind
