"""``ralis inspect FILE`` and ``ralis convert OLD``: the commands about ralis files (registered on
the command line's app by :mod:`ralis.cli`; the converter itself is :mod:`ralis.cli.convert`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ralis.cli.options import console

__all__ = ["inspect_cmd", "convert_cmd"]


def inspect_cmd(
    path: Annotated[Path, typer.Argument(
        help="A ralis file: model, policy or checkpoint (.safetensors).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Print what a model, policy or checkpoint file says it is (read from its header only).

    Classes, dataset, region grid, feature layout, training-data hash, ralis version, run id
    and step. Nothing in the file is executed or even loaded.
    """
    import json

    from ralis.files.inspect import format_inspection, inspect_file

    info = inspect_file(path)
    typer.echo(json.dumps(info, indent=2) if as_json else format_inspection(info))


def convert_cmd(
    old: Annotated[Path, typer.Argument(help="A model.pt or policy.pt written by ralis 0.1.")],
    new: Annotated[Path | None, typer.Argument(
        help="Output file (default: OLD with the suffix .safetensors).")] = None,
) -> None:
    """Convert a ralis 0.1 model or policy (a pickle) into a safe .safetensors file.

    The old file is read with torch.load(weights_only=True), which rebuilds only tensors and
    plain values and refuses anything else, so nothing in it can run.
    """
    from ralis.cli.convert import convert_file

    path, kind = convert_file(old, new)
    console.print(f"{kind} written to {path}; check it with `ralis inspect {path}`")
