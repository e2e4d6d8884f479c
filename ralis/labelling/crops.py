"""Label crops as the ledger stores them: a region's native-pixel class ids, compressed."""

from __future__ import annotations

import zlib

import numpy as np

from ralis.labelling.ledger import Ledger


def pack_label(array: np.ndarray) -> tuple[str, bytes]:
    """A label crop as (dtype, compressed bytes): small ids in uint8, else uint16."""
    dtype = np.uint8 if int(array.max(initial=0)) < 256 else np.uint16
    return np.dtype(dtype).str, zlib.compress(np.ascontiguousarray(array, dtype=dtype).tobytes(), 6)


def unpack_label(height: int, width: int, dtype: str, data: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data), dtype=np.dtype(dtype)).reshape(height, width)


def active_labels(ledger: Ledger, region_ids: list[int] | None = None) -> dict[int, np.ndarray]:
    """``{region id: native label crop}`` of the active labels (of ``region_ids`` only, if
    given)."""
    wanted = None if region_ids is None else set(region_ids)
    return {rid: unpack_label(h, w, dt, data) for rid, h, w, dt, data in ledger.active_label_rows()
            if wanted is None or rid in wanted}
