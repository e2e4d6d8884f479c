"""Label Studio's brush RLE (``value.rle`` of a ``brushlabels`` result), without its SDK.

Label Studio stores a brush mask as an **RGBA** image of ``H x W x 4`` values (row-major, the
mask is the alpha channel, so every pixel is 4 consecutive values) packed with thi.ng's
``rle-pack`` bitstream, written most significant bit first and returned as a list of bytes:

* a header: the value count ``num`` (32 bits, must be ``4 * H * W``), the word size minus one
  (5 bits; Label Studio uses 8) and four run-length field sizes minus one (4 bits each; Label
  Studio uses 3, 4, 8, 16);
* then chunks until ``num`` values are out: one flag bit (1 = repeat, 0 = literal), a 2-bit index
  into the four sizes, a length field of that size holding ``length - 1``, then one word (repeat:
  ``length`` copies of it) or ``length`` words (literal);
* zero bits up to a whole byte.

Decoders binarise the alpha channel at ``> 128``. :func:`encode` writes exactly what
``label_studio_sdk.converter.brush.mask2rle`` writes for a 0/255 mask (every channel = 255 on
painted pixels, runs of 4 x pixels as repeat chunks, runs over 65536 values split, 1 to 8 zero bits
of padding); :func:`decode` reads any valid stream (also the literal chunks and other field sizes
of Label Studio's editor). Both loop over runs / chunks, never over pixels.
"""

from __future__ import annotations

import numpy as np

from ralis.labelling.formats.base import LabelFileError

HEADER_BITS = 32 + 5 + 4 * 4
WORD = 8  # bits per value written by encode()
SIZES = (3, 4, 8, 16)  # run-length field sizes written by encode()
_MAX16 = 1 << 16


def _fail(where: str, what: str) -> LabelFileError:
    return LabelFileError(f"{where}: bad brush RLE ({what}); export the annotation again from "
                          "Label Studio or delete this result")


def _as_bytes(rle: object, where: str) -> np.ndarray:
    """``rle`` (a list of ints 0..255) as a uint8 array, else a one-line LabelFileError."""
    if not isinstance(rle, list) or not rle:
        raise _fail(where, f"expected a non-empty list of bytes, got {type(rle).__name__}")
    try:
        arr = np.asarray(rle)
    except (ValueError, TypeError, OverflowError):  # ragged nesting, odd objects
        arr = None
    if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise _fail(where, "not a list of integers")
    if arr.min() < 0 or arr.max() > 255:
        raise _fail(where, "values outside 0..255")
    return arr.astype(np.uint8)


def decode(rle: object, height: int, width: int, where: str = "rle") -> np.ndarray:
    """Label Studio RLE -> boolean mask ``[height, width]`` (alpha channel ``> 128``).

    The stream's value count must be ``4 * height * width``; a truncated stream, a run past the
    end or a value that is not a byte raises a one-line :class:`LabelFileError` naming ``where``.
    Trailing padding after the last value is ignored (as Label Studio's decoders do)."""
    data = _as_bytes(rle, where)
    bits = np.unpackbits(data)  # [8 * len(rle)] uint8, MSB first
    text = (bits + ord("0")).tobytes().decode("ascii")  # the same bits as "0"/"1" (fast int(., 2))
    total = len(text)
    if total < HEADER_BITS:
        raise _fail(where, f"truncated: {len(data)} bytes, shorter than the header")
    num = int(text[0:32], 2)
    if num != 4 * height * width:
        raise _fail(where, f"it holds {num} values, a {height}x{width} (HxW) RGBA mask has "
                           f"{4 * height * width}; original_width/original_height disagree")
    word = int(text[32:37], 2) + 1
    sizes = [int(text[37 + 4 * k: 41 + 4 * k], 2) + 1 for k in range(4)]
    heads = {f"{f}{b:02b}": (f == 1, sizes[b]) for f in (0, 1) for b in range(4)}
    vals: list[int] = []  # one value per chunk (0 for literal chunks, filled in below)
    lens: list[int] = []
    literals: list[tuple[int, int, int]] = []  # (first value index, count, bit position)
    pos, i = HEADER_BITS, 0
    while i < num:
        head = heads.get(text[pos: pos + 3])
        size = head[1] if head else 0
        if head is None or pos + 3 + size > total:
            raise _fail(where, f"truncated after {i} of {num} values")
        n = 1 + int(text[pos + 3: pos + 3 + size], 2)
        pos += 3 + size
        if i + n > num:
            raise _fail(where, f"a run ends at value {i + n}, past the {num} values")
        need = word if head[0] else word * n
        if pos + need > total:
            raise _fail(where, f"truncated after {i} of {num} values")
        if head[0]:
            vals.append(int(text[pos: pos + word], 2))
        else:
            vals.append(0)
            literals.append((i, n, pos))
        lens.append(n)
        pos += need
        i += n
    dtype = np.uint8 if word <= 8 else np.uint64
    out = np.repeat(np.asarray(vals, dtype=dtype), lens)  # [num]
    weights = np.uint64(1) << np.arange(word - 1, -1, -1, dtype=np.uint64)  # [word]
    for i, n, p in literals:  # literal words, read together
        out[i: i + n] = bits[p: p + word * n].reshape(n, word).astype(np.uint64) @ weights
    return (out[3::4] > 128).reshape(height, width)


def encode(mask: np.ndarray) -> list[int]:
    """Boolean mask ``[H, W]`` -> Label Studio RLE (a list of ints 0..255).

    Byte for byte what ``label_studio_sdk.converter.brush.mask2rle(mask * 255)`` returns."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode() needs a 2-D mask, got shape {mask.shape}")
    flat = mask.astype(bool).ravel()
    num = 4 * flat.size
    if flat.size == 0 or num >= 1 << 32:
        raise ValueError(f"a {mask.shape} mask cannot be stored in Label Studio's RLE")
    # Pixel runs; as RGBA every run is 4x as long (each pixel repeats its value 4 times).
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1])
    lengths = np.diff(np.concatenate([starts, [flat.size]])).astype(np.int64) * 4
    values = np.where(flat[starts], 255, 0).astype(np.int64)
    # Runs over 65536 values are split into pieces of 65536 and a remainder (all 16-bit fields).
    pieces = (lengths - 1) // _MAX16 + 1  # [R]
    run_of = np.repeat(np.arange(len(lengths)), pieces)  # [P] run of each piece
    first = np.concatenate([[0], np.cumsum(pieces)[:-1]])
    k = np.arange(len(run_of)) - np.repeat(first, pieces)  # index of a piece within its run
    last = k == pieces[run_of] - 1
    plen = np.where(last, lengths[run_of] - k * _MAX16, _MAX16)
    split = pieces[run_of] > 1
    idx = np.select([split, plen <= 8, plen <= 16, plen <= 256], [3, 0, 1, 2], 3)
    size = np.asarray(SIZES, dtype=np.int64)[idx]
    # One code per chunk: flag 1, index (2 bits), length - 1 (size bits), value (8 bits).
    codes = ((1 << (size + 10)) | (idx << (size + 8)) | ((plen - 1) << 8) | values[run_of])
    widths = size + 11
    tail = ((WORD - 1) << 16) | sum((s - 1) << (12 - 4 * n) for n, s in enumerate(SIZES))
    codes = np.concatenate([[num, tail], codes]).astype(np.uint64)  # header: 32 + 21 bits
    widths = np.concatenate([[32, HEADER_BITS - 32], widths])
    return _pack(codes, widths).tolist()


def _pack(codes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Concatenate ``codes[i]`` written in ``widths[i] <= 32`` bits (MSB first) -> bytes, padded
    with 1..8 zero bits like Label Studio's SDK (a whole zero byte when the bits end on a byte).

    Each code lands in one or two big-endian 32-bit words; the codes' bits are disjoint, so a
    float64 ``bincount`` (exact below 2**53) sums them into the words."""
    codes = codes.astype(np.uint64)
    widths = widths.astype(np.int64)
    total = int(widths.sum())
    offset = np.cumsum(widths) - widths  # first bit of each code
    word, r = offset // 32, offset % 32
    spill = r + widths - 32  # > 0: bits that run into the next word
    first = np.where(spill > 0, codes >> np.maximum(spill, 0).astype(np.uint64),
                     codes << np.maximum(-spill, 0).astype(np.uint64))
    second = (codes << (64 - np.maximum(spill, 1)).astype(np.uint64)) >> np.uint64(32)
    n_words = (total + 8 - total % 8 + 31) // 32
    words = np.bincount(word, weights=first.astype(np.float64), minlength=n_words)
    more = spill > 0
    words += np.bincount(word[more] + 1, weights=second[more].astype(np.float64),
                         minlength=n_words)
    out = np.frombuffer(words.astype(">u4").tobytes(), dtype=np.uint8)
    return out[: (total + 8 - total % 8) // 8]
