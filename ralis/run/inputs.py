"""The files a run reads besides its data (θ0 and the policy), recorded in its ``run.sqlite``
by content: a resumed run reuses them, and is refused another content under the same name."""

from __future__ import annotations

from pathlib import Path

from ralis.errors import ConfigError
from ralis.run.rundir import Run

__all__ = ["input_paths", "same_input"]


def input_paths(run: Run, pretrained: Path | None, policy: Path | None
                 ) -> tuple[Path | None, Path | None]:
    """The θ0 and policy files to use: the ones given, else the ones the run recorded."""
    saved = run.store.get_meta("inputs") or {}
    paths = {}
    for key, value in (("pretrained", pretrained), ("policy", policy)):
        there = saved.get(key)
        paths[key] = Path(value) if value is not None else (
            run.root / there["path"] if there else None)  # relative paths: inside the run
    return paths["pretrained"], paths["policy"]


def same_input(run: Run, key: str, path: Path, digest: str) -> None:
    """Record the file a run uses (by its ``sha256``, taken from the bytes that were loaded), or
    check that a resumed run is given the same content. Moved or copied files are fine (run
    directories travel); another content would continue the run with different numbers."""
    inputs = dict(run.store.get_meta("inputs") or {})
    there = inputs.get(key)
    if there is not None and there["digest"] != digest:
        raise ConfigError(
            f"{run.root} was run with another --{key} file (its checksum is recorded in "
            f"run.sqlite) than {path}; resume with the same file, or start over in a new --out")
    path = Path(path).resolve()
    root = run.root.resolve()
    # a file inside the run directory (its own θ0) is recorded relative to it, so a moved
    # run directory still finds it; others by absolute path
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    inputs[key] = {"path": str(shown), "digest": digest}
    if run.store.get_meta("inputs") != inputs:
        run.store.set_meta("inputs", inputs)
    run.write_json("inputs.json", inputs)
