"""``ralis data``: inspect a dataset before a run."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ralis.cli.options import DataRoot, Dataset, Preset, Quiet, Resolution, Sets, build_config

data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect a dataset before a run.")


@data_app.command(name="check")
def data_check_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    preset: Preset = None, dataset: Dataset = None, data_root: DataRoot = None,
    resolution: Resolution = None, set_: Sets = None, quiet: Quiet = False,
) -> None:
    """Per split: images, sizes, class pixel shares, void, unknown colours, problems (exit 1 if any
    would stop a run). No training."""
    from ralis.data.check import check_data, format_report

    cfg = build_config(preset, dataset, data_root, resolution=resolution, sets=set_)
    result = check_data(cfg.data, progress=not quiet)
    typer.echo(json.dumps(result, indent=2) if as_json else format_report(result))
    if result["errors"]:
        raise typer.Exit(1)
