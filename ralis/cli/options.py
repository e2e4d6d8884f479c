"""What every ``ralis`` command shares: its options, and a command line turned into a config.

Options default to None so that a command knows what the user said: on --resume only what was
said is compared with the stored run, and everything else comes from the run itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer

from ralis.config import PRESETS, RunConfig, apply_overrides, get_preset, validate
from ralis.errors import RalisError
from ralis.progress import console_for

console = console_for()

DEFAULT_PRESET = "synthetic-tiny"
Preset = Annotated[str | None, typer.Option(
    help=f"Starting config: {', '.join(PRESETS.names())} (default: {DEFAULT_PRESET}).")]
Dataset = Annotated[str | None, typer.Option(
    help="Dataset: camvid, cityscapes, folder, synthetic (default: the preset's).")]
DataRoot = Annotated[Path | None, typer.Option(
    "--data-root", help="Dataset folder (or the description file for `folder`).")]
Seed = Annotated[int | None, typer.Option(
    help="Seed of the run: pools, training order, dropout (default: 0).")]
Out = Annotated[Path | None, typer.Option(help="Run directory (default: see above).")]
Device = Annotated[str | None, typer.Option(
    help="Torch device: cpu, cuda, cuda:1 (default: the preset's).")]
Resolution = Annotated[str | None, typer.Option(
    help="Working resolution HxW, e.g. 180x240 (default: the dataset description's, else the "
         "preset's).")]
RegionSize = Annotated[str | None, typer.Option(
    "--region-size", help="Region size HxW in pixels at the working resolution, e.g. 45x40 "
    "(default: the preset's).")]
RegionKind = Annotated[str | None, typer.Option(
    "--regions", help="Region kind: rect (a grid of --region-size boxes; default) or slic "
    "(SLIC superpixels, --set data.superpixels=N per image; a budget of B is the pixels of B "
    "grid rectangles for either kind).")]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", help="Override any config field: --set train.lr=0.01 (repeatable).")]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Continue the interrupted run in --out; options given must match the stored run.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]


@dataclass(frozen=True)
class Request:
    """A command line turned into a config, plus what the user said explicitly."""

    cfg: RunConfig
    given: list[str]  # field=value assignments from options the user gave
    preset: str | None  # --preset, when given


def description_resolution(cfg: RunConfig) -> tuple[int, int] | None:
    """A folder dataset's own ``resolution`` (it wins over the preset's, not over --resolution)."""
    if cfg.data.dataset != "folder" or cfg.data.root is None:
        return None
    from ralis.data.folder import find_description, parse_description

    return parse_description(find_description(cfg.data.root)).resolution


def with_kind(sets: list[str] | None, regions: str | None) -> list[str]:
    """``--set`` assignments plus ``--regions`` (as ``data.regions=...``)."""
    return [*(sets or []), *([f"data.regions={regions}"] if regions else [])]


def resolve_options(
    preset: str | None, dataset: str | None = None, data_root: Path | None = None,
    seed: int | None = None, device: str | None = None, resolution: str | None = None,
    region_size: str | None = None, sets: list[str] | None = None,
    extra: list[str] | None = None, resume: bool = False,
) -> Request:
    """Preset + explicit options + ``--set`` -> a validated config (and the explicit part).

    With ``resume`` the explicit part is checked against the stored run when it is opened,
    so the config built here from the preset is not validated (it is not the run's).
    """
    given = list(extra or [])
    if seed is not None:
        given.append(f"seed={seed}")
    if dataset:
        given.append(f"data.dataset={dataset}")
    if data_root:
        given.append(f"data.root={Path(data_root).resolve()}")
    if device:
        given.append(f"device={device}")
    if resolution:
        given.append(f"data.resolution={resolution}")
    if region_size:
        given.append(f"data.region_size={region_size}")
    given += list(sets or [])
    cfg = apply_overrides(get_preset(preset or DEFAULT_PRESET), given)
    if resume:
        return Request(cfg, given, preset)
    said_resolution = any(a.split("=", 1)[0].strip() == "data.resolution" for a in given)
    own = None if said_resolution else description_resolution(cfg)
    if own is not None:
        cfg = replace(cfg, data=replace(cfg.data, resolution=own))
    if cfg.device != "cpu":
        from ralis.run.session import check_device

        check_device(cfg.device)
    return Request(validate(cfg), given, preset)


def build_config(
    preset: str | None, dataset: str | None = None, data_root: Path | None = None,
    seed: int | None = None, device: str | None = None, resolution: str | None = None,
    region_size: str | None = None, sets: list[str] | None = None,
    extra: list[str] | None = None,
) -> RunConfig:
    return resolve_options(preset, dataset, data_root, seed, device, resolution, region_size,
                           sets, extra).cfg


def default_out(command: str, cfg: RunConfig, out: Path | None, suffix: str = "") -> Path:
    """``runs/<command>-<preset>[-<strategy>]-s<seed>`` unless --out is given."""
    return out or Path("runs") / f"{command}-{cfg.preset}{suffix}-s{cfg.seed}"


def int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RalisError(f"{flag} expects comma-separated integers, got {text!r}") from None
