"""Write ``tests/labelling/data/labelstudio_golden.json``: brush RLEs made by Label Studio's SDK.

Run with the interpreter of the separate Label Studio venv (the SDK would downgrade numpy in
ralis's own venv, so ralis does not depend on it)::

    python3 -m venv .venv-ls && .venv-ls/bin/pip install label-studio-sdk==2.1.2
    .venv-ls/bin/python benchmarks/make_ls_golden.py

Cases:

* ``sdk.mask2rle``: masks (non-square, empty, full, random blobs, a run over 65536 values, one
  whose bits end on a byte) encoded by ``label_studio_sdk.converter.brush.mask2rle(mask * 255)``;
  ralis's encoder must give the same bytes and its decoder the same mask;
* ``literal-stream``: an RGBA stream as Label Studio's editor paints it (label colour in R, G, B,
  anti-aliased alpha, literal chunks, other run-length field sizes), packed by a small port of the
  bitstream written here, and decoded by the SDK's ``decode_rle``: the expected mask is what the
  SDK decodes (alpha > 128), so ralis's decoder is checked against the SDK's on chunks that
  ``mask2rle`` never writes.

Masks are stored as pixel run lengths (row-major, starting with a run of False) to keep the file
small.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from label_studio_sdk.converter.brush import decode_rle, mask2rle

OUT = Path(__file__).resolve().parents[1] / "tests/labelling/data/labelstudio_golden.json"


def runs_of(mask: np.ndarray) -> list[int]:
    """Row-major run lengths of a boolean mask, the first one a run of False (maybe 0)."""
    flat = mask.ravel().astype(bool)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    return [0, *runs] if flat[0] else runs


def blobs(h: int, w: int, n: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(n):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, min(h, w) / 3)
        mask |= (yy - cy) ** 2 + ((xx - cx) * rng.uniform(0.5, 1.5)) ** 2 < r * r
    return mask


def byte_aligned(rng: np.random.Generator) -> np.ndarray:
    """A small random mask whose mask2rle bits end on a byte (the SDK then pads a zero byte)."""
    while True:
        mask = rng.random((3, 5)) < 0.4
        runs = np.array([r for r in runs_of(mask) if r]) * 4
        bits = 53 + sum(14 if r <= 8 else 15 if r <= 16 else 19 for r in runs)
        if bits % 8 == 0:
            return mask


def pack_stream(values: np.ndarray, sizes: tuple[int, int, int, int]) -> list[int]:
    """rle-pack style: repeat chunks for runs of 3+ equal values, literal chunks otherwise."""
    bits: list[str] = [f"{len(values):032b}", f"{8 - 1:05b}"]
    bits += [f"{s - 1:04b}" for s in sizes]

    def chunk(repeat: bool, words: list[int], n: int) -> None:
        k = next(k for k, s in enumerate(sizes) if n <= 1 << s)
        bits.append(("1" if repeat else "0") + f"{k:02b}" + format(n - 1, f"0{sizes[k]}b"))
        bits.extend(f"{v:08b}" for v in words)

    cap = 1 << max(sizes)
    literal: list[int] = []
    i = 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i] and j - i < cap:
            j += 1
        if j - i >= 3:
            if literal:
                chunk(False, literal, len(literal))
                literal = []
            chunk(True, [int(values[i])], j - i)
        else:
            literal += [int(v) for v in values[i:j]]
            if len(literal) >= cap:
                chunk(False, literal[:cap], cap)
                literal = literal[cap:]
        i = j
    if literal:
        chunk(False, literal, len(literal))
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return [int(text[k: k + 8], 2) for k in range(0, len(text), 8)]


def editor_rgba(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An editor-like RGBA canvas: label colour (250, 80, 10) where painted, alpha 255 inside,
    random anti-aliased alpha (1..254) on a few pixels, zeros elsewhere -> [H * W * 4] uint8."""
    h, w = mask.shape
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[mask] = (250, 80, 10, 255)
    edge = rng.random((h, w)) < 0.15
    rgba[edge, :3] = (250, 80, 10)
    rgba[edge, 3] = rng.integers(1, 255, size=int(edge.sum()))
    return rgba.ravel()


def main() -> None:
    rng = np.random.default_rng(7)
    masks = {
        "random-7x11": rng.random((7, 11)) < 0.5,
        "empty-5x3": np.zeros((5, 3), bool),
        "full-4x6": np.ones((4, 6), bool),
        "blobs-37x61": blobs(37, 61, 4, rng),
        "blobs-61x37": blobs(61, 37, 3, rng),
        "long-run-131x257": np.pad(np.ones((120, 250), bool), ((5, 6), (3, 4))),
        "full-140x130": np.ones((140, 130), bool),  # 72800 values: a run split at 65536
        "one-pixel-9x2": np.eye(9, 2, -8, dtype=bool),
    }
    masks["byte-aligned"] = byte_aligned(rng)
    cases = []
    for name, mask in masks.items():
        rle = mask2rle(mask.astype(np.uint8) * 255)
        h, w = mask.shape
        back = decode_rle(rle).reshape(h, w, 4)[:, :, 3] > 128
        assert (back == mask).all(), name
        cases.append({"name": name, "encoder": "sdk.mask2rle", "height": h, "width": w,
                      "mask_runs": runs_of(mask), "rle": [int(v) for v in rle]})
    for name, (mask, sizes) in {
        "editor-13x17": (blobs(13, 17, 2, rng), (3, 4, 8, 16)),
        "editor-sizes-29x23": (blobs(29, 23, 3, rng), (2, 5, 9, 12)),
    }.items():
        rle = pack_stream(editor_rgba(mask, rng), sizes)
        h, w = mask.shape
        decoded = decode_rle(rle).reshape(h, w, 4)[:, :, 3] > 128  # the SDK's answer
        cases.append({"name": name, "encoder": "literal-stream", "height": h, "width": w,
                      "mask_runs": runs_of(decoded), "rle": rle})
    doc = {"generator": "benchmarks/make_ls_golden.py",
           "label_studio_sdk": version("label-studio-sdk"), "cases": cases}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
