"""Reading a ralis file's bytes and its safetensors header, before anything else is trusted.

A ralis file (:mod:`ralis.files.safe`) is a regular file: an 8-byte little-endian length ``n``,
``n`` bytes of JSON (the header: ``__metadata__`` and, per tensor, its ``dtype``, ``shape`` and
``data_offsets``), then the tensors' bytes. Everything here is checked from the header alone,
before a tensor is decoded or a checksum computed:

* the path is a regular file (a FIFO, a device such as ``/dev/zero`` or a folder is refused
  without reading it), and only what the header announces is read: a file longer or shorter than
  its header says is refused;
* ``n`` is at most :data:`MAX_HEADER_BYTES`, and the JSON starts right after it (``{``); a file
  that does not look so is "not a ralis safetensors file" (a CSV, a PNG), a pickle gets the
  ``ralis convert`` hint;
* every tensor's ``dtype`` is one ralis writes (:data:`DTYPES`; ``F8_*``, ``F4``, ``F6_*``,
  unsigned wider than 8 bits are refused), its ``shape`` non-negative integers and its
  ``data_offsets`` exactly its size.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from ralis.errors import RalisError

__all__ = ["FORMAT", "MAX_HEADER_BYTES", "DTYPES", "FileFormatError", "LegacyFileError",
           "read_file", "read_header_bytes", "parse_header", "parse_json", "tensor_entries"]

FORMAT = "ralis-safetensors-1"
MAX_HEADER_BYTES = 64 * 2**20  # a header (JSON) larger than this is refused before parsing
DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
          "U8": 1, "BOOL": 1}
"""The tensor dtypes ralis writes, with their sizes in bytes: the only ones it reads."""


class FileFormatError(RalisError):
    """A file is not a usable ralis file: wrong kind, corrupt, truncated, crafted, non-finite."""


class LegacyFileError(FileFormatError):
    """A pickled ``torch.save`` file from ralis 0.1: refused; ``ralis convert`` turns it into data."""


def _legacy_hint(path: Path) -> str:
    return (f"{path} is a pickled torch file (ralis 0.1 or another program); ralis only loads "
            f"safetensors files, which cannot run code. If it came from ralis 0.1, convert it "
            f"once with `ralis convert {path}` (it reads the pickle with "
            f"torch.load(weights_only=True), which refuses code)")


def _open_regular(path: Path) -> tuple[int, int]:
    """``(fd, size)`` of ``path`` opened for reading; anything but a regular file is refused
    (``O_NONBLOCK``: opening a FIFO does not wait for a writer)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileFormatError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path} is a folder, not a ralis file") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {path} ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise FileFormatError(f"{path} is a folder, not a ralis file")
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileFormatError(f"{path} is not a regular file (a FIFO, a device?); ralis reads "
                              "its files from regular files only")
    return fd, info.st_size


def _read(fd: int, count: int, path: Path) -> bytes:
    chunks, left = [], count
    try:
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise FileFormatError(f"cannot read {path} ({exc.strerror or exc})") from None
    return b"".join(chunks)


def _head(fd: int, size: int, path: Path) -> bytes:
    """The 8-byte length and the header it announces (checked with :func:`_check_start`)."""
    data = _read(fd, min(size, 9), path)
    _check_start(data, path)
    n = int.from_bytes(data[:8], "little")
    if 8 + n > size:
        raise FileFormatError(f"{path} is truncated: its header needs {n} bytes, the file has "
                              f"{size - 8}")
    return data + _read(fd, 8 + n - len(data), path)


def _check_start(data: bytes, path: Path) -> None:
    looks_safetensors = len(data) > 8 and data[8:9] == b"{"
    if not looks_safetensors and (data[:4] == b"PK\x03\x04" or data[:1] == b"\x80"):
        raise LegacyFileError(_legacy_hint(path))  # a zip (torch.save) or a raw pickle
    if len(data) < 9:
        raise FileFormatError(f"{path} is empty or truncated ({len(data)} bytes); it is not a "
                              "usable ralis file")
    if not looks_safetensors:
        raise FileFormatError(f"{path} is not a ralis safetensors file (no safetensors header); "
                              "pass a model, policy or checkpoint file written by ralis")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise FileFormatError(f"{path}: header of {n} bytes is larger than the "
                              f"{MAX_HEADER_BYTES} allowed; the file is damaged or crafted")


def read_header_bytes(path: Path) -> bytes:
    """The length and the header of the ralis file ``path``, read from a regular file only."""
    path = Path(path)
    fd, size = _open_regular(path)
    try:
        return _head(fd, size, path)
    finally:
        os.close(fd)


def read_file(path: Path) -> tuple[bytes, dict[str, str]]:
    """``(the file's bytes, its metadata)``: the header is parsed and checked first
    (:func:`parse_header`, :func:`tensor_entries`), then exactly the tensor bytes it announces
    are read; a file of another length is refused."""
    path = Path(path)
    fd, size = _open_regular(path)
    try:
        head = _head(fd, size, path)
        meta = parse_header(head, path)
        end = max((e["data_offsets"][1] for e in tensor_entries(head, path).values()), default=0)
        if len(head) + end != size:
            what = "truncated" if len(head) + end > size else "damaged"
            raise FileFormatError(f"{path} is {what}: its header announces {len(head) + end} "
                                  f"bytes, the file has {size}")
        return head + _read(fd, end, path), meta
    finally:
        os.close(fd)


def parse_json(text: str | bytes, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, absurd nesting
        raise FileFormatError(f"{path}: its {what} is not valid JSON; the file is damaged or "
                              "crafted") from None


def parse_header(data: bytes, path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a ralis file from its first bytes (at least its header)."""
    _check_start(data[:9], path)
    n = int.from_bytes(data[:8], "little")
    if 8 + n > len(data):
        raise FileFormatError(f"{path} is truncated: its header needs {n} bytes, the file has "
                              f"{len(data) - 8}")
    try:
        header = json.loads(data[8 : 8 + n])
    except (ValueError, RecursionError):
        raise FileFormatError(f"{path} is not a ralis file (no readable safetensors header)"
                              ) from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FileFormatError(f"{path} is a safetensors file but not one written by ralis "
                              f"(no '{FORMAT}' record)")
    for key in ("kind", "record", "tree", "tensors_sha256", "sha256"):
        if not isinstance(meta.get(key), str):
            raise FileFormatError(f"{path}: its header lacks '{key}'; the file is damaged")
    return meta


def tensor_entries(data: bytes, path: Path) -> dict[str, dict]:
    """``{name: {"dtype", "shape", "data_offsets"}}`` of the header, each checked: a dtype of
    :data:`DTYPES`, a shape of non-negative integers, offsets spanning exactly its bytes."""
    n = int.from_bytes(data[:8], "little")
    header = parse_json(data[8 : 8 + n], path, "header")
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise FileFormatError(f"{path}: tensor {name[:80]!r} has no valid entry in the header")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPES:
            raise FileFormatError(
                f"{path}: tensor {name[:80]!r} has dtype {str(dtype)[:20]}, which ralis never "
                f"writes ({', '.join(DTYPES)}); the file is damaged or crafted")
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool)
                                                and d >= 0 for d in shape)):
            raise FileFormatError(f"{path}: tensor {name[:80]!r} has no valid shape in the header")
        size = math.prod(shape) * DTYPES[dtype]
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in offsets)
                and offsets[1] - offsets[0] == size):
            raise FileFormatError(f"{path}: tensor {name[:80]!r} has data offsets {offsets!r:.60} "
                                  f"that do not span its {size} bytes; the file is damaged")
        out[name] = {"dtype": dtype, "shape": shape, "data_offsets": offsets}
    return out


def read_header(path: Path) -> tuple[str, dict[str, Any], dict[str, dict]]:
    """``(kind, record, {tensor name: {"dtype", "shape"}})`` from the header only."""
    path = Path(path)
    data = read_header_bytes(path)
    meta = parse_header(data, path)
    shapes = {k: {"dtype": v["dtype"], "shape": v["shape"]}
              for k, v in tensor_entries(data, path).items()}
    record = parse_json(meta["record"], path, "record")
    if not isinstance(record, dict):
        raise FileFormatError(f"{path}: its record is not a mapping; the file is damaged")
    return meta["kind"], {**record, "sha256": meta["sha256"]}, shapes
