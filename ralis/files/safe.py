"""ralis files: safetensors with a JSON record. Data, never code.

Every file ralis writes that holds tensors (models, policies, run checkpoints, agent state) is
one `safetensors <https://github.com/huggingface/safetensors>`_ file. Its header's metadata
holds four strings:

``format``
    ``ralis-safetensors-1``.
``kind``
    what the file is (:data:`KINDS`): ``model``, ``policy``, ``checkpoint`` (an AL run),
    ``agent-checkpoint`` (agent training, with its replay buffer), ``train-checkpoint``
    (θ0 pretraining / upper bound / agent start model, per epoch), ``weights`` (an encoder's
    pretrained weights with their provenance).
``record``
    JSON: what the file is about (ralis version, classes, regions, features, training data and
    its content hash, run id and step, ...). ``ralis inspect FILE`` prints it.
``tree``
    JSON: the nested structure (dicts, lists, tuples, numbers, strings) with every tensor
    replaced by ``{"__tensor__": name}``.
``tensors_sha256``
    a SHA-256 over every tensor's name, dtype, shape and bytes;
``sha256``
    a SHA-256 over the kind, the record, the tree and ``tensors_sha256``: the file's identity.
    Both are checked on every load: a file whose tensors or header were changed or damaged is
    refused. Run directories record ``sha256`` of the files they use (θ0, policy, checkpoints).

Loading parses JSON and raw tensor bytes only: nothing in a file can run code. Files from
ralis 0.1 (pickled ``torch.save`` files) are refused with a pointer to ``ralis convert``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ralis import provenance
from ralis.errors import first_line
from ralis.files.atomic import atomic_write_bytes
from ralis.files.header import (
    FORMAT,
    MAX_HEADER_BYTES,
    FileFormatError,
    LegacyFileError,
    parse_header,
    parse_json,
    read_file,
    read_header,
    read_header_bytes,
)

__all__ = [
    "FORMAT", "KINDS", "FileFormatError", "LegacyFileError", "save_file", "load_file",
    "read_header", "file_digest", "tensors_digest", "base_record", "weights_for",
    "MAX_HEADER_BYTES",
]

KINDS = ("model", "policy", "checkpoint", "agent-checkpoint", "train-checkpoint", "weights")
_MARK = "__"


def base_record() -> dict[str, Any]:
    """The part of every record that says who wrote the file and when."""
    return {
        "ralis_version": provenance.__version__,
        "git_revision": provenance.git_revision(),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# ---------------------------------------------------------------------------- tree encoding
def _storage_key(t: torch.Tensor) -> tuple:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(),
            t.dtype)


class _Encoder:
    """Nested Python structure -> (JSON-able skeleton, {name: tensor}); shared tensors once."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._names: dict[tuple, str] = {}
        self._storages: set[int] = set()  # storages already written by some tensor

    def tensor(self, t: torch.Tensor, where: str) -> dict:
        t = t.detach()
        key = _storage_key(t) if t.device.type != "meta" else (id(t),)
        if key not in self._names:
            name, i = where or "tensor", 1
            while name in self.tensors:
                i += 1
                name = f"{where}~{i}"
            stored = t.cpu().contiguous()
            ptr = stored.untyped_storage().data_ptr()
            if stored.untyped_storage().nbytes() != stored.nbytes or ptr in self._storages:
                stored = stored.clone()  # own storage: safetensors refuses shared memory
            self._storages.add(stored.untyped_storage().data_ptr())
            self.tensors[name] = stored
            self._names[key] = name
        return {f"{_MARK}tensor{_MARK}": self._names[key]}

    def encode(self, obj: Any, where: str = "") -> Any:
        if obj is None or isinstance(obj, bool | str) or type(obj) is int:
            return obj
        if isinstance(obj, int):  # e.g. numpy ints reach here only as Python ints
            return int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {f"{_MARK}float{_MARK}": repr(float(obj))}
        if isinstance(obj, torch.Tensor):
            return self.tensor(obj, where)
        if isinstance(obj, tuple):
            return {f"{_MARK}tuple{_MARK}": [self.encode(v, f"{where}/{i}")
                                              for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, f"{where}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith(_MARK) for k in obj):
                return {k: self.encode(v, f"{where}/{k}" if where else k) for k, v in obj.items()}
            return {f"{_MARK}map{_MARK}": [[self.encode(k, where), self.encode(v, f"{where}/{k}")]
                                           for k, v in obj.items()]}
        if hasattr(obj, "item") and callable(obj.item) and not hasattr(obj, "shape"):
            return self.encode(obj.item(), where)
        raise TypeError(f"cannot store {where or 'value'} of type {type(obj).__name__} in a "
                        "ralis file (use None, bool, int, float, str, tensors, lists, tuples, dicts)")


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


def _decode(node: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors, path) for v in node]
    if not isinstance(node, dict):
        raise FileFormatError(f"{path}: malformed structure in its header; the file is damaged")
    if len(node) == 1:
        (key, value), = node.items()
        if key == f"{_MARK}tensor{_MARK}":
            if not isinstance(value, str) or value not in tensors:
                raise FileFormatError(f"{path}: its header names a tensor {value!r} that the file "
                                      "does not hold; the file is damaged or crafted")
            return tensors[value]
        if key == f"{_MARK}tuple{_MARK}" and isinstance(value, list):
            return tuple(_decode(v, tensors, path) for v in value)
        if key == f"{_MARK}float{_MARK}" and value in ("nan", "inf", "-inf"):
            return float(value)
        if key == f"{_MARK}map{_MARK}" and isinstance(value, list):
            out = {}
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise FileFormatError(f"{path}: malformed mapping in its header")
                k = _decode(pair[0], tensors, path)
                if isinstance(k, torch.Tensor):
                    raise FileFormatError(f"{path}: malformed mapping key in its header")
                out[_hashable(k)] = _decode(pair[1], tensors, path)
            return out
    if any(k.startswith(_MARK) for k in node):
        raise FileFormatError(f"{path}: unknown entry {sorted(node)[0]!r} in its header; written "
                              "by a newer ralis, or crafted")
    return {k: _decode(v, tensors, path) for k, v in node.items()}


# ------------------------------------------------------------------------------- checksums
def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and raw bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\0{str(t.dtype)}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def _whole_digest(meta: dict[str, str]) -> str:
    """SHA-256 over everything a file says: kind, record, tree and the tensors' digest."""
    h = hashlib.sha256()
    for key in ("format", "kind", "record", "tree", "tensors_sha256"):
        h.update(meta[key].encode())
        h.update(b"\0")
    return h.hexdigest()


# -------------------------------------------------------------------------------- save/load
def save_file(path: Path, tree: Any, kind: str, record: dict[str, Any]) -> Path:
    """Write ``tree`` (nested dicts/lists/tuples of plain values and tensors) atomically."""
    if kind not in KINDS:
        raise ValueError(f"unknown file kind {kind!r}")
    enc = _Encoder()
    skeleton = enc.encode(tree)
    metadata = {
        "format": FORMAT,
        "kind": kind,
        "record": json.dumps({k: v for k, v in enc_plain(record).items() if k != "sha256"},
                             sort_keys=True),
        "tree": json.dumps(skeleton),
        "tensors_sha256": tensors_digest(enc.tensors),
    }
    metadata["sha256"] = _whole_digest(metadata)
    return atomic_write_bytes(st_save(enc.tensors, metadata=metadata), Path(path))


def enc_plain(obj: Any) -> Any:
    """A record as plain JSON values (tuples -> lists, non-finite floats -> strings)."""
    if isinstance(obj, dict):
        return {str(k): enc_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [enc_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if type(obj).__module__.startswith("numpy") and callable(getattr(obj, "tolist", None)):
        return enc_plain(obj.tolist())  # numpy scalars and arrays
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a file record")


def file_digest(path: Path, what: str = "sha256") -> str:
    """A ralis file's identity (``sha256``: kind, record, tree and tensors) or, with
    ``what="tensors_sha256"``, its tensors' checksum alone; read from the header only."""
    return parse_header(read_header_bytes(Path(path)), Path(path))[what]


def load_file(path: Path, kinds: str | tuple[str, ...], *, check_finite: bool = True
              ) -> tuple[Any, dict[str, Any]]:
    """Read a ralis file of one of ``kinds``; returns ``(tree, record)``.

    Refused with a one-line :class:`FileFormatError`: a missing, truncated or foreign file, a
    pickle (:class:`LegacyFileError`), another kind, a header over :data:`MAX_HEADER_BYTES`,
    tensors that do not match the checksum, and (``check_finite``) NaN or infinite values.
    """
    path = Path(path)
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    data, meta = read_file(path)  # header, dtypes and length checked before any tensor
    if meta["kind"] not in kinds:
        raise FileFormatError(f"{path} is a ralis {meta['kind']} file, not a "
                              f"{' or '.join(kinds)}")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
        first = first_line(exc)
        raise FileFormatError(f"{path} is damaged ({first})") from None
    if (tensors_digest(tensors) != meta["tensors_sha256"]
            or _whole_digest(meta) != meta["sha256"]):
        raise FileFormatError(f"{path} is damaged: its content does not match the checksum in "
                              "its header (the file was changed after ralis wrote it)")
    if check_finite:
        for name, t in tensors.items():
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
                raise FileFormatError(
                    f"{path} holds NaN or infinite values (tensor {name!r}); a file with "
                    "non-finite weights cannot be used (training diverged or it was damaged)")
    try:
        tree = _decode(parse_json(meta["tree"], path, "tree"), tensors, path)
    except (RecursionError, TypeError):
        raise FileFormatError(f"{path}: malformed structure in its header; the file is damaged "
                              "or crafted") from None
    record = parse_json(meta["record"], path, "record")
    if not isinstance(record, dict):
        raise FileFormatError(f"{path}: its record is not a mapping; the file is damaged")
    return tree, {**record, "sha256": meta["sha256"]}


def weights_for(tree: Any, skeleton: torch.nn.Module, path: Path, what: str) -> dict:
    """The ``state_dict`` of a loaded tree, checked against ``skeleton`` (a network built on
    the ``meta`` device from the file's own record, so nothing is allocated before the shapes
    agree): same names, same shapes, or a one-line :class:`FileFormatError`."""
    state = tree.get("state_dict") if isinstance(tree, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FileFormatError(f"{path}: holds no state_dict of tensors")
    expected = {k: (tuple(v.shape), v.dtype) for k, v in skeleton.state_dict().items()}
    found = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    if expected != found:
        diff = sorted(set(expected) ^ set(found)) or sorted(
            k for k in expected if expected[k] != found[k])
        k = diff[0]

        def show(entry: tuple | None) -> str:
            return "missing" if entry is None else f"{list(entry[0])} {entry[1]}"

        raise FileFormatError(
            f"{path} does not match {what} built from its own record: {k} is "
            f"{show(found.get(k))} in the file, {show(expected.get(k))} in the network")
    return state
