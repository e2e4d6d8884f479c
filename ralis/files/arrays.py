"""Arrays on disk read on demand, and the cache folder they live in.

:class:`LazyTensor` reads fixed-size records of a file on demand with ``os.pread`` (no memory
map: resident memory does not grow with the rows touched). It indexes like the tensor it stands
for (an int, a slice, a 1-D index tensor or list, optionally followed by more indices) and
returns torch tensors. :meth:`LazyTensor.take` makes a view on some rows (no copy), and
:class:`Concat` puts views end to end. :func:`iter_chunks` streams the rows of a tensor or a lazy
one in chunks of about :data:`CHUNK_BYTES` (hashes, statistics); :func:`default_cache_root` is the
folder every cache of ralis lives under (decoded datasets, superpixels, converted weights).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ralis.errors import DataError

CHUNK_BYTES = 32 << 20  # streaming reads (hashes, statistics): chunks of about this size as read


def default_cache_root(configured: str | None = None) -> Path:
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("RALIS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ralis"


def split_index(key: object, length: int) -> tuple[int | np.ndarray, tuple]:
    """A tensor-style index of a ``[length, ...]`` tensor -> (one row as an int, or the rows as
    an int64 array; the indices that follow). Rows: an int, a slice, a 1-D index tensor / list /
    array, or a bool mask."""
    rest: tuple = ()
    if isinstance(key, tuple):
        key, rest = key[0], key[1:]
    if isinstance(key, int | np.integer) or (torch.is_tensor(key) and key.dim() == 0):
        i = int(key)
        if not -length <= i < length:
            raise IndexError(f"index {i} out of range for {length} rows")
        return i % length, rest
    if isinstance(key, slice):
        return np.arange(length)[key], rest
    if torch.is_tensor(key) and key.dtype == torch.bool:
        return key.nonzero().squeeze(1).numpy(), rest
    return np.asarray(key.tolist() if torch.is_tensor(key) else key, np.int64).reshape(-1), rest


def index_rows(key: object, length: int, row: Callable[[int], torch.Tensor],
               rows: Callable[[np.ndarray], torch.Tensor]) -> torch.Tensor:
    """Index like a tensor, given how to read one row (``row(i)``) and many (``rows(idx)``)."""
    pick, rest = split_index(key, length)
    if isinstance(pick, int):
        out = row(pick)
        return out[rest] if rest else out
    out = rows(pick)
    return out[(slice(None), *rest)] if rest else out


def stack_rows(row: Callable[[int], torch.Tensor], idx: np.ndarray, shape: tuple,
               dtype: torch.dtype) -> torch.Tensor:
    """``torch.stack`` of ``row(i)`` for ``i`` in ``idx`` (an empty ``[0, *shape]`` for none)."""
    items = [row(int(i)) for i in idx]
    return torch.stack(items) if items else torch.zeros((0, *shape), dtype=dtype)


class LazyTensor:
    """A ``[N, *record]`` tensor whose rows live in a file of fixed-size records.

    ``rows``: which file records the rows are (a view after :meth:`take`); ``out``: the torch
    dtype returned (masks are stored as uint8/uint16 and read as ``int64``)."""

    def __init__(self, path: Path, record: tuple[int, ...], stored: np.dtype, count: int,
                 out: torch.dtype, rows: np.ndarray | None = None) -> None:
        self.path = Path(path)
        self.record = tuple(int(v) for v in record)
        self.stored = np.dtype(stored)
        self.count = int(count)
        self.out = out
        self.rows = np.arange(count, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        self.nbytes_record = int(np.prod(self.record)) * self.stored.itemsize

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.record))

    @property
    def dtype(self) -> torch.dtype:
        return self.out

    def __len__(self) -> int:
        return len(self.rows)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def take(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> LazyTensor:
        """A view on rows ``indices`` (nothing is read)."""
        idx = np.asarray(indices.tolist() if torch.is_tensor(indices) else indices, np.int64)
        return LazyTensor(self.path, self.record, self.stored, self.count, self.out,
                          self.rows[idx])

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``indices`` as stored: ``[n, *record]`` numpy (consecutive records in one read)."""
        recs = self.rows[np.asarray(indices, np.int64)]
        out = np.empty((len(recs), *self.record), dtype=self.stored)
        flat = out.reshape(len(recs), -1).view(np.uint8)
        size = self.nbytes_record
        with open(self.path, "rb") as f:
            fd = f.fileno()
            k = 0
            while k < len(recs):
                run = 1
                while k + run < len(recs) and recs[k + run] == recs[k] + run:
                    run += 1
                data = os.pread(fd, size * run, int(recs[k]) * size)
                if len(data) != size * run:
                    raise DataError(f"{self.path} is truncated; delete the folder "
                                    f"{self.path.parent} and run again to rebuild the cache")
                flat[k:k + run] = np.frombuffer(data, np.uint8).reshape(run, size)
                k += run
        return out

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(array)
        return t.to(self.out) if t.dtype != self.out else t

    def __getitem__(self, key: object) -> torch.Tensor:
        return index_rows(key, len(self), lambda i: self._tensor(self.read([i]))[0],
                          lambda idx: self._tensor(self.read(idx)))

    def chunks(self, rows: int | None = None):
        """Yield ``(start, tensor)`` over all rows in chunks of about :data:`CHUNK_BYTES` (as
        returned, e.g. int64 masks)."""
        out_row = int(np.prod(self.record)) * torch.empty((), dtype=self.out).element_size()
        step = rows or max(1, CHUNK_BYTES // max(1, out_row))
        for start in range(0, len(self), step):
            yield start, self[start:start + step]


class Concat:
    """Row-wise concatenation of tensors and :class:`LazyTensor` views, indexed like one."""

    def __init__(self, parts: Sequence) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    @property
    def shape(self) -> torch.Size:
        return torch.Size((int(self.offsets[-1]), *tuple(self.parts[0].shape[1:])))

    @property
    def dtype(self) -> torch.dtype:
        return self.parts[0].dtype

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _row(self, i: int) -> torch.Tensor:
        part = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return self.parts[part][i - int(self.offsets[part])]

    def __getitem__(self, key: object) -> torch.Tensor:
        return index_rows(key, len(self), self._row,
                          lambda idx: stack_rows(self._row, idx, self.shape[1:], self.dtype))


def is_lazy(x: object) -> bool:
    """Anything that indexes like a tensor without being one (read on demand)."""
    return not torch.is_tensor(x)


def take_rows(x, indices):
    """Rows ``indices`` of a tensor (a copy) or of a lazy tensor (a view)."""
    if isinstance(x, LazyTensor):
        return x.take(indices)
    idx = torch.as_tensor(list(indices) if not torch.is_tensor(indices) else indices,
                          dtype=torch.long)
    return x[idx]


def concat_rows(parts: Sequence):
    """``torch.cat`` for tensors; a :class:`Concat` view when any part is lazy (a
    :class:`LazyTensor`, the oracle's sparse masks, ...)."""
    if any(is_lazy(p) for p in parts):
        return Concat(parts)
    return torch.cat(list(parts))


def iter_chunks(x, rows: int | None = None):
    """Yield ``(start, tensor)`` chunks of rows of a tensor or lazy tensor."""
    if isinstance(x, LazyTensor):
        yield from x.chunks(rows)
        return
    if isinstance(x, Concat):
        for part, offset in zip(x.parts, x.offsets, strict=False):
            for start, chunk in iter_chunks(part, rows):
                yield int(offset) + start, chunk
        return
    n = len(x)
    if n == 0:
        return
    per_row = max(1, int(np.prod(tuple(x.shape[1:]))) * x.element_size()) if torch.is_tensor(
        x) else 1
    step = rows or max(1, CHUNK_BYTES // per_row)
    for start in range(0, n, step):
        yield start, x[start:start + step]
