"""``ralis label init``: create a labelling project from a folder of images and a classes file.

The project (:class:`ralis.labelling.project.Project`) is state; creating one reads the images
once into the cache at the working resolution, writes version 0 of the model
(:func:`ralis.labelling.training.start_model`) and imports the start labels, if any
(:func:`ralis.labelling.importing.import_start_labels`). An interrupted ``init`` is finished by
the same command.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

from ralis.config import RunConfig, validate
from ralis.data.base import ClassInfo, image_size
from ralis.data.description import load_description, parse_classes
from ralis.errors import ConfigError, DataError
from ralis.files.digest import file_sha256
from ralis.files.folders import lock_dir, unlock_dir
from ralis.labelling.images import ImageCache, cache_path
from ralis.labelling.importing import import_start_labels
from ralis.labelling.ledger import LEDGER_NAME, Ledger
from ralis.labelling.project import PROJECT, Project, ProjectSettings, now
from ralis.labelling.status import project_status
from ralis.labelling.training import start_model
from ralis.progress import progress_bar
from ralis.regions import RegionGrid, scaled_region_size
from ralis.run.rundir import prepare_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def read_classes(path: Path) -> ClassInfo:
    """A classes file (YAML or JSON): ``classes: [{name, id, color?}]`` and ``ignore_index``,
    as in a folder dataset's description."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"classes file {path} not found; pass a YAML or JSON file with "
                          "classes: [{name, id, color}] and ignore_index")
    data = load_description(path)
    if "classes" not in data:
        raise ConfigError(f"{path}: no 'classes' list; expected classes: [{{name, id, color}}] "
                          "and ignore_index")
    return parse_classes(data["classes"], data.get("ignore_index", 255), False, str(path))


def list_images(folder: Path) -> list[tuple[str, Path]]:
    """``[(name, path)]`` of the image files under ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"images folder {folder} not found; pass --images FOLDER with your images")
    found = []
    for p in folder.rglob("*"):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(folder).parts):
            found.append((p.relative_to(folder).as_posix(), p))
    if not found:
        raise DataError(f"images folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                        "pass the folder with your images")
    return sorted(found)


def _working_size(files: list[tuple[str, Path, tuple[int, int]]],
                  resolution: tuple[int, int] | None) -> tuple[int, int]:
    if resolution is not None:
        return (int(resolution[0]), int(resolution[1]))
    sizes = {size for _, _, size in files}
    if len(sizes) > 1:
        shown = ", ".join(f"{n} is {s[0]}x{s[1]}" for n, _, s in files[:1]) + ", " + next(
            f"{n} is {s[0]}x{s[1]}" for n, _, s in files if s != files[0][2])
        raise DataError(f"the images have different sizes ({shown}, HxW); pass --resolution HxW "
                        "to work on all of them at one size")
    return next(iter(sizes))


def init_project(root: Path, images_dir: Path, classes_file: Path, cfg: RunConfig,
                 model: str | None = None, start_labels: Path | None = None,
                 progress: bool = True, say=print,
                 region_layout: tuple[int, int] | None = None) -> dict:
    """Create the project in ``root`` (or finish an interrupted ``init`` with the same
    arguments). ``model``: a model registry name (a fresh network) or a model file (θ0).
    ``region_layout``: the resolution ``cfg.data.region_size`` was meant for; the region size is
    scaled from it to the working size (same regions per image). Returns the project's
    status."""
    root = Path(root)
    classes = read_classes(Path(classes_file))
    files = [(n, p, image_size(p)) for n, p in list_images(Path(images_dir))]
    working = _working_size(files, cfg.data.resolution)
    if cfg.data.regions != "rect":
        raise ConfigError(f"labelling projects request rectangle regions; data.regions="
                          f"{cfg.data.regions} works in `ralis simulate` and `ralis benchmark` "
                          "only. Leave --regions out (or use --regions rect)")
    region = tuple(cfg.data.region_size)
    if region_layout is not None:
        region = scaled_region_size(region, tuple(region_layout), working)
    cfg = validate(replace(cfg, data=replace(cfg.data, resolution=working, region_size=region)))
    RegionGrid(working, tuple(cfg.data.region_size))  # region size fits the working size
    settings = ProjectSettings(root.resolve().name, str(Path(images_dir).resolve()), classes.names,
                               classes.ignore_index, classes.colors, working, cfg)
    if root.exists() and any(root.iterdir()) and not (root / LEDGER_NAME).is_file():
        raise ConfigError(f"{root} exists and is not a labelling project; choose a new folder")
    prepare_dir(root)
    lock_dir(root, "label init", PROJECT, None)
    try:
        ledger = Ledger(root, create=True)
        try:
            with ledger.transaction() as db:
                stored = ledger.get_meta("settings")
                if stored is None:
                    db.executemany("INSERT INTO images (idx, name, height, width) VALUES "
                                   "(?, ?, ?, ?)", [(i, n, h, w) for i, (n, _, (h, w))
                                                    in enumerate(files)])
                    ledger.set_meta(db, "settings", settings.to_json())
                    ledger.set_meta(db, "created", now())
                    ledger.set_meta(db, "project_id", uuid.uuid4().hex)
                elif stored != json.loads(json.dumps(settings.to_json())):
                    raise ConfigError(f"{root} is already a project with other settings; use the "
                                      "other `ralis label` commands on it, or choose a new folder")
            if [r["name"] for r in ledger.images()] != [n for n, _, _ in files]:
                raise ConfigError(f"the images in {images_dir} changed since {root} was created; "
                                  "a project's images are fixed: create a new project")
            todo = [(r["idx"], Path(images_dir) / r["name"]) for r in ledger.images()
                    if not r["cached"]]
            if todo:
                def mark(indices: list[int]) -> None:
                    sums = [(file_sha256(Path(images_dir) / files[i][0]), i) for i in indices]
                    with ledger.transaction() as db:
                        db.executemany("UPDATE images SET cached = 1, sha256 = ? WHERE idx = ?",
                                       sums)

                cache = ImageCache(cache_path(root, working), len(files), working)
                cache.build(todo, mark, lambda it: progress_bar(
                    it, total=len(todo), desc="caching images", unit="image",
                    disable=not progress))
        finally:
            ledger.close()
        with Project(root, "label init", ready=False) as project:
            project.write_view()
            start_model(project, model, say)
            if start_labels is not None:
                import_start_labels(project, Path(start_labels), say)
            with project.ledger.transaction() as db:
                project.ledger.set_meta(db, "ready", True)
            return project_status(project)
    finally:
        unlock_dir(root)
