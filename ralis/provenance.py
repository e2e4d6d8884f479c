"""Who computed a file: the ralis version and the git revision of the source tree.

Every record ralis writes (model and policy files, run directories, results) names both, read
from here. Nothing in this module imports torch or any other part of ralis.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__version__ = "0.4.0"


@functools.cache
def git_revision() -> str:
    """Short git revision of the ralis source tree, with ``-dirty`` when it has local changes.

    Read once per process, so every file a long run writes names the code it started with.
    """
    src = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
