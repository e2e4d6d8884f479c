"""``ralis label``: the labelling loop on your own images (init, next, import, train, status)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ralis.cli.options import console, resolve_options

label_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None,
    help=(
        "Label your own images, a few regions at a time.\n\n"
        "The loop: `ralis label init P --images DIR --classes classes.yaml` creates project P; "
        "`ralis label next P --regions 48` picks the regions worth labelling and exports them "
        "for your tool (Label Studio, CVAT, COCO or PNG masks) into P/rounds/N/; people label "
        "them; `ralis label import P EXPORT` reads the tool's export back; `ralis label train "
        "P` trains the next model version on every label; repeat from `next`. `ralis label "
        "status P` shows where the project stands. Every command is one transaction on "
        "P/project.sqlite: rerun an interrupted command to finish it; no label is ever lost."
    ),
)

Project = Annotated[Path, typer.Argument(help="The project folder.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False)


@label_app.command(name="init")
def init_cmd(
    project: Project,
    images: Annotated[Path, typer.Option(help="Folder of images to label (read only; "
                                               "sub-folders included).")],
    classes: Annotated[Path, typer.Option(help="YAML or JSON file: classes: [{name, id, "
                                                "color}] and ignore_index.")],
    model: Annotated[str | None, typer.Option(
        help="A model name (a fresh network: fpn_small, fpn_resnet18, ...) or a "
             "model.safetensors to start from, e.g. from `ralis pretrain` (default: the "
             "preset's network, untrained).")] = None,
    resolution: Annotated[str | None, typer.Option(
        help="Working resolution HxW; needed when the images differ in size (default: their "
             "size).")] = None,
    region_size: Annotated[str | None, typer.Option(
        "--region-size", help="Region size HxW in pixels at the working resolution (default: "
                              "the preset's).")] = None,
    start_labels: Annotated[Path | None, typer.Option(
        "--start-labels", help="Folder of full <image stem>.png masks for some images: they "
                               "start fully labelled.")] = None,
    preset: Annotated[str | None, typer.Option(
        help="Training and acquisition settings to start from (default: camvid-cpu).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the project (default: 0).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config field, e.g. --set train.lr=0.01 (repeatable).")] = None,
    quiet: Quiet = False,
) -> None:
    """Create a labelling project from a folder of images and a classes file.

    The images are read once into a cache at the working resolution (a progress bar shows it);
    rerun the same command to finish an interrupted init.
    """
    from dataclasses import replace

    from ralis.labelling.create import init_project

    sets = ["al.train_on_new_only=false", *(set_ or [])]
    req = resolve_options(preset or "camvid-cpu", seed=seed, resolution=resolution,
                          region_size=region_size, sets=sets)
    cfg, layout = req.cfg, None
    if resolution is None:  # the images' own size
        cfg = replace(cfg, data=replace(cfg.data, resolution=None))
    if region_size is None:  # the preset's regions per image, at the project's size
        layout = req.cfg.data.resolution
    status = init_project(project, images, classes, cfg, model, start_labels, not quiet, _say,
                          region_layout=layout)
    _say(f"project {project}: {status['images']} images at {status['resolution'][0]}x"
         f"{status['resolution'][1]} (HxW), {status['regions']} regions of "
         f"{status['region_size'][0]}x{status['region_size'][1]}; {status['labelled']} labelled. "
         f"Next: ralis label next {project} --regions N")


@label_app.command(name="next")
def next_cmd(
    project: Project,
    regions: Annotated[int, typer.Option(help="How many regions to request this round.")],
    strategy: Annotated[str, typer.Option(
        help="random, entropy, bald or ralis (with --policy).")] = "entropy",
    format_: Annotated[str, typer.Option(
        "--format", help="labelstudio, cvat, coco or png.")] = "png",
    policy: Annotated[Path | None, typer.Option(
        help="policy.safetensors from `ralis train-agent` (--strategy ralis).")] = None,
    candidates: Annotated[int | None, typer.Option(
        min=1, help="Score this many random unlabelled regions instead of all of them.")] = None,
    include_pending: Annotated[bool, typer.Option(
        "--include-pending", help="Regions requested before and not labelled yet may be "
                                  "requested again.")] = False,
    image_root_url: Annotated[str | None, typer.Option(
        "--image-root-url", help="Label Studio: URL under which your images folder is "
                                 "served.")] = None,
    quiet: Quiet = False,
) -> None:
    """Choose the next regions to label with the current model and export them.

    Writes P/rounds/N/requests.csv (native pixels), preview.png (the regions drawn on the
    images) and the format's files (Label Studio tasks + labelling config, CVAT XML, COCO JSON).
    """
    from ralis.labelling.project import open_project
    from ralis.labelling.rounds import next_round

    with open_project(project, "label next") as p:
        next_round(p, regions, strategy, format_, policy, candidates, include_pending,
                   image_root_url, not quiet, _say)


@label_app.command(name="import")
def import_cmd(
    project: Project,
    export: Annotated[Path, typer.Argument(
        help="The tool's export: Label Studio JSON, CVAT for images 1.1 XML, COCO JSON, or a "
             "folder of PNG masks.")],
    format_: Annotated[str | None, typer.Option(
        "--format", help="labelstudio, cvat, coco or png (default: from the file).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace labels of regions labelled before (the old ones stay in the "
                          "ledger).")] = False,
) -> None:
    """Import labels from a labelling tool's export. Importing the same file again does
    nothing; only requested regions are kept (the rest is counted and dropped)."""
    from ralis.labelling.importing import import_file
    from ralis.labelling.project import open_project

    with open_project(project, "label import") as p:
        import_file(p, export, format_, replace, _say)


@label_app.command(name="train")
def train_cmd(
    project: Project,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the labels.")] = 1,
    quiet: Quiet = False,
) -> None:
    """Train the next model version on the labels so far (continuing the current one).

    Writes P/models/vNNNN.safetensors, a model file any ralis command can load. First the
    latest version is compared with the start model on the labels neither has seen (the
    regions labelled since), with a warning if it is worse by more than the noise."""
    from ralis.labelling.checks import check_latest
    from ralis.labelling.project import open_project
    from ralis.labelling.training import train_version

    with open_project(project, "label train") as p:
        check_latest(p, _say)
        train_version(p, epochs, not quiet, _say)


@label_app.command(name="status")
def status_cmd(
    project: Project,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Rounds, requested / labelled / pending regions, labelled pixels per class, models."""
    from ralis.labelling.record import open_record  # the ledger only: no torch, answers at once
    from ralis.labelling.status import project_status

    with open_record(project, "label status") as p:
        s = project_status(p)
    if as_json:
        print(json.dumps(s, indent=2))
        return
    table = Table(title=f"project {s['project']}: {s['images']} images, {s['regions']} regions")
    for col in ("round", "strategy", "format", "requested", "labelled", "pending"):
        table.add_column(col, justify="right")
    for r in s["rounds"]:
        table.add_row(str(r["round"]), r["strategy"] or "", r["format"] or "",
                      str(r["requested"]), str(r["labelled"]), str(r["pending"]))
    console.print(table)
    total = sum(s["pixels_per_class"].values()) or 1
    _say("labelled pixels: " + ", ".join(f"{k} {100 * v / total:.1f}%"
                                         for k, v in s["pixels_per_class"].items()))
    _say(f"requested {s['requested']}, labelled {s['labelled']}, pending {s['pending']}; "
         f"models: " + ", ".join(f"v{m['version']} ({m['labelled']} regions)"
                                 for m in s["models"]))
