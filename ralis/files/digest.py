"""The SHA-256 of a file's bytes (any file: images, exports, third-party weights), read in
blocks; a ralis file's own identity is :func:`ralis.files.safe.file_digest`."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256"]


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
