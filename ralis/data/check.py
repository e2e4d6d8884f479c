"""``ralis data check``: what a dataset holds and what would go wrong, before any training.

:func:`check_data` reads every split once (masks at the working resolution, image sizes from the
file headers) and returns a plain dict: per split the image and sample counts, native sizes,
class pixel shares, the void fraction, unknown mask colours and its problems; plus the problems
of the run as a whole. ``errors`` are what would stop a run (the same checks as
:func:`ralis.data.protocol.load_protocol`), ``warnings`` what is allowed but suspicious.
:func:`format_report` renders it as text.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ralis.config import DataConfig
from ralis.data import dataset_classes
from ralis.data.base import ClassInfo, SegmentationDataset, image_size
from ralis.data.description import find_description, parse_description
from ralis.data.orphans import orphan_warning
from ralis.data.palettes import PaletteColors
from ralis.data.protocol import dataset_for
from ralis.data.sanity import (
    LabelStats,
    label_stats,
    missing_problem,
    overlap_problems,
    void_problem,
)
from ralis.errors import DataError, RalisError
from ralis.progress import progress_bar

BUILTIN_SPLITS = ("train", "val", "test")
ASPECT_TOLERANCE = 0.02  # relative aspect-ratio difference that counts as distortion


def _roles(cfg: DataConfig) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for split, role in ((cfg.train_split, "train: D_S, D_T, D_V"), (cfg.reward_split, "D_R"),
                        (cfg.test_split, "test")):
        roles.setdefault(split, []).append(role)
    return roles


def _split_names(cfg: DataConfig, roles: dict[str, list[str]]) -> list[str]:
    names = list(BUILTIN_SPLITS)
    if cfg.dataset == "folder":
        names = list(parse_description(find_description(cfg.root)).splits)
    return names + [s for s in roles if s not in names]


def _relative(path: str, base: Path) -> str:
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return path


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _native_sizes(ds: SegmentationDataset) -> Counter:
    pairs = getattr(ds, "pairs", None)
    if pairs is None:  # generated data: the working size is the native size
        return Counter()
    return Counter(_size_text(image_size(image)) for image, _ in pairs)


def _distorted(sizes: Counter, resolution: tuple[int, int]) -> int:
    target = resolution[1] / resolution[0]
    count = 0
    for text, n in sizes.items():
        h, w = (int(v) for v in text.split("x"))
        if abs((w / h) / target - 1) > ASPECT_TOLERANCE:
            count += n
    return count


def check_split(
    cfg: DataConfig, split: str, classes: ClassInfo, roles: list[str], progress: bool = True,
    palettes: PaletteColors | None = None,
) -> tuple[dict[str, Any], LabelStats | None, list[str]]:
    """Report of one split, its label statistics (None if unreadable) and its sample keys.
    ``palettes``: palette colours shared with the splits checked before (folder datasets)."""
    entry: dict[str, Any] = {"roles": roles, "errors": [], "warnings": []}
    where = f"{cfg.dataset}/{split}"
    options: dict[str, Any] = {"cache": False}
    if cfg.dataset == "folder":
        options["strict_colors"] = False  # tally unknown colours instead of stopping at them
        options["palettes"] = palettes
    try:
        ds = dataset_for(cfg, split, **options)
    except RalisError as exc:
        entry["errors"].append(str(exc))
        return entry, None, []
    pairs = getattr(ds, "pairs", None)
    entry["images"] = len(pairs) if pairs is not None else len(ds)
    entry["samples"] = len(ds)
    spec = getattr(ds, "spec", None)
    orphans = orphan_warning(spec, split, where) if spec is not None else None
    if orphans:
        entry["warnings"].append(orphans)
    if spec is not None and spec.splits[split].carved:
        rule = spec.splits[split]
        entry["carved"] = {"from": rule.source, "fraction": rule.fraction,
                           "seed": rule.seed if rule.fraction is not None else None,
                           "images": rule.images}
    stats = LabelStats((0,) * classes.num_classes, 0)
    working: Counter = Counter()
    try:
        native = _native_sizes(ds)
        for i in progress_bar(range(len(ds)), desc=f"checking {where}", leave=False,
                              disable=not progress):
            _, mask = ds.load_u8(i)
            stats = stats + label_stats(mask, classes.num_classes)
            working[_size_text(tuple(mask.shape))] += 1
    except DataError as exc:
        entry["errors"].append(str(exc))
        return entry, None, []
    entry["sizes"] = dict((native or working).most_common())
    entry["working_sizes"] = dict(working.most_common())
    if len(working) > 1:
        entry["errors"].append(
            f"{where}: images have {len(working)} different sizes; set a working resolution "
            "(--resolution HxW, or resolution: [H, W] in a description)"
        )
    _describe_stats(entry, stats, classes)
    unknown = getattr(ds, "unknown_colors", None)
    if unknown:
        entry["unknown_colors"] = [
            {**item, "first_files": [_relative(f, spec.base) for f in item["first_files"]]}
            for item in unknown.items(limit=20)
        ]
        message = unknown.message(f"{where}", len(pairs or ()), getattr(spec, "base", None))
        if spec is not None and spec.strict_colors:
            entry["errors"].append(message)
        else:
            entry["warnings"].append(f"{where}: strict_colors is false, so these colours became "
                                     f"void: {unknown.summary(relative_to=spec.base)}")
    if spec is not None and spec.resize == "stretch" and ds.resolution and native:
        distorted = _distorted(native, ds.resolution)
        if distorted:
            entry["warnings"].append(
                f"{where}: {distorted} of {entry['images']} images have another aspect ratio than "
                f"the working size {_size_text(ds.resolution)}; resize: stretch distorts them "
                "(resize: crop or tile keep their shapes)"
            )
    _role_checks(cfg, entry, where, stats, classes, roles)
    return entry, stats, [ds.sample_key(i) for i in range(len(ds))]


def _describe_stats(entry: dict[str, Any], stats: LabelStats, classes: ClassInfo) -> None:
    entry["pixels"] = stats.total
    entry["void_fraction"] = stats.void_fraction
    entry["class_pixels"] = dict(zip(classes.names, stats.counts, strict=True))
    entry["class_shares"] = dict(zip(classes.names, stats.shares(), strict=True))
    entry["missing_classes"] = [classes.names[i] for i in stats.missing()]


def _role_checks(cfg: DataConfig, entry: dict[str, Any], where: str, stats: LabelStats,
                 classes: ClassInfo, roles: list[str]) -> None:
    """The checks a run makes, as errors for the splits it uses and warnings for the others."""
    used = bool(roles)
    problem = void_problem(where, stats, classes, cfg.max_void_fraction)
    if problem:
        entry["errors" if used else "warnings"].append(problem)
    evaluated = any(r in ("D_R", "test") for r in roles)
    problem = missing_problem(where, stats, classes)
    if problem and evaluated:
        entry["warnings" if cfg.allow_missing_classes else "errors"].append(problem)
    elif stats.missing() and used:
        names = ", ".join(entry["missing_classes"])
        entry["warnings"].append(
            f"{where}: class(es) {names} never occur in the training split; the model cannot "
            "learn them"
        )


def check_data(cfg: DataConfig, progress: bool = True) -> dict[str, Any]:
    """Check every split of ``cfg``'s dataset; see the module docs for the report's fields."""
    classes = dataset_classes(cfg.dataset, root=cfg.root)
    roles = _roles(cfg)
    report: dict[str, Any] = {
        "dataset": cfg.dataset,
        "root": cfg.root,
        "classes": list(classes.names),
        "ignore_index": classes.ignore_index,
        "resolution": list(cfg.resolution) if cfg.resolution else None,
        "roles": {"train": cfg.train_split, "reward": cfg.reward_split, "test": cfg.test_split},
        "max_void_fraction": cfg.max_void_fraction,
        "splits": {},
        "errors": [],
        "warnings": [],
    }
    _describe_folder(cfg, report)
    keys: dict[str, list[str]] = {}
    palettes = PaletteColors()  # one index, one colour, across every split
    for split in _split_names(cfg, roles):
        entry, stats, keys[split] = check_split(cfg, split, classes, roles.get(split, []), progress,
                                                palettes)
        report["splits"][split] = entry
        report["errors"] += entry["errors"]
        report["warnings"] += entry["warnings"]
    by_role = {"train": keys.get(cfg.train_split), "reward": keys.get(cfg.reward_split),
               "test": keys.get(cfg.test_split)}
    for problem, accepted in overlap_problems(cfg, {k: v for k, v in by_role.items() if v}):
        report["warnings" if accepted else "errors"].append(problem)
    return report


def _describe_folder(cfg: DataConfig, report: dict[str, Any]) -> None:
    report["name"] = cfg.dataset
    report["resize"] = "stretch"
    if cfg.dataset != "folder":
        return
    spec = parse_description(find_description(cfg.root))
    report.update(name=spec.name, description=str(spec.path), resize=spec.resize,
                  mask_format=spec.mask_format, strict_colors=spec.strict_colors,
                  void_colors=[list(c) for c in spec.masks.void_colors])
    if spec.resolution and cfg.resolution and tuple(spec.resolution) != tuple(cfg.resolution):
        report["warnings"].append(
            f"the description's resolution {_size_text(spec.resolution)} is overridden by the "
            f"config's data.resolution {_size_text(cfg.resolution)}; pass --resolution "
            f"{_size_text(spec.resolution)} to use the description's"
        )


def _percent(x: float) -> str:
    if x == 0:
        return "0%"
    return "<0.01%" if x < 0.0001 else f"{100 * x:.2f}%"


def format_report(report: dict[str, Any]) -> str:
    """The report as readable text (one block per split, then a summary line)."""
    lines = [f"dataset {report['dataset']} '{report['name']}'"
             + (f" ({report['description']})" if report.get("description") else ""),
             f"classes ({len(report['classes'])}): {', '.join(report['classes'])}; "
             f"ignore index {report['ignore_index']}"]
    res = report["resolution"]
    lines.append(f"working resolution {'native' if res is None else _size_text(tuple(res))}, "
                 f"resize {report['resize']}; train split {report['roles']['train']}, "
                 f"D_R {report['roles']['reward']}, test {report['roles']['test']}")
    for split, entry in report["splits"].items():
        role = f" [{'; '.join(entry['roles'])}]" if entry["roles"] else ""
        lines.append("")
        if "images" not in entry:
            lines.append(f"split {split}{role}: unreadable")
        else:
            samples = (f", {entry['samples']} samples" if entry["samples"] != entry["images"]
                       else "")
            carved = entry.get("carved")
            origin = ""
            if carved:
                how = (f"{carved['fraction']:g} with seed {carved['seed']}"
                       if carved["fraction"] is not None else f"images {carved['images']}")
                origin = f" (carved from {carved['from']}: {how})"
            lines.append(f"split {split}{role}: {entry['images']} images{samples}{origin}")
        if "sizes" in entry:
            sizes = ", ".join(f"{s} x{n}" for s, n in list(entry["sizes"].items())[:6])
            more = len(entry["sizes"]) - 6
            lines.append(f"  sizes (HxW): {sizes}" + (f", and {more} more" if more > 0 else ""))
        if "void_fraction" in entry:
            lines.append(f"  void: {_percent(entry['void_fraction'])} of "
                         f"{entry['pixels']} pixels")
            shares = ", ".join(f"{n} {_percent(v)}" for n, v in entry["class_shares"].items())
            lines.append(f"  classes: {shares}")
        for item in entry.get("unknown_colors", [])[:5]:
            lines.append(f"  unknown colour {tuple(item['color'])}: {item['pixels']} px in "
                         f"{item['files']} file(s), first {item['first_files'][0]}")
        lines += [f"  warning: {w}" for w in entry["warnings"]]
        lines += [f"  error: {e}" for e in entry["errors"]]
    split_messages = {m for e in report["splits"].values() for m in e["errors"] + e["warnings"]}
    general = [("warning", w) for w in report["warnings"] if w not in split_messages]
    general += [("error", e) for e in report["errors"] if e not in split_messages]
    if general:
        lines.append("")
        lines += [f"{kind}: {text}" for kind, text in general]
    lines.append("")
    n_err, n_warn = len(report["errors"]), len(report["warnings"])
    verdict = "a run would stop on these errors" if n_err else "ready for a run"
    lines.append(f"{n_err} error(s), {n_warn} warning(s): {verdict}")
    return "\n".join(lines)
