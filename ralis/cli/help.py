"""How every command's ``--help`` reads: like git's, pip's or ruff's.

Typer's own help shows Python types as metavars (``<int>``, ``<list[Path]>``), ranges
(``[x>=1]``), arguments in braces and a default beside a help text that already states one.
:func:`tidy` rewrites the usage line and the option list of every command of the built click
command instead: upper-case metavars that say what the value is (``HxW``, ``N,N,...``, ``DIR``),
arguments in upper case, each default stated once (in the help text when it says
``default:``, else ``[default: X]``), none for flags, and a description column at least 40
characters wide at 80 columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

METAVARS = {
    "--strategy": "NAME", "--strategies": "NAME,...", "--preset": "NAME", "--dataset": "NAME",
    "--mode": "NAME", "--executor": "NAME", "--model": "NAME|FILE", "--regions": "KIND",
    "--budgets": "N,N,...", "--seeds": "N,N,...", "--agent-seeds": "N,N,...",
    "--resolution": "HxW", "--region-size": "HxW", "--set": "FIELD=VALUE",
    "--data-root": "PATH", "--out": "DIR", "--report": "DIR", "--runs": "DIR",
    "--images": "DIR", "--start-labels": "DIR", "--classes": "FILE", "--policy": "FILE",
    "--pretrained": "FILE", "--device": "DEVICE", "--format": "FORMAT",
    "--address": "ADDRESS", "--image-root-url": "URL", "--gpus-per-job": "X",
}
"""Metavars by option name; any other option's comes from its type (:data:`BY_TYPE`)."""

BY_TYPE = {"int": "N", "float": "X", "Path": "PATH"}
DESCRIPTION_COLUMN = 30  # at most this wide a first column: 80 - 2 - 30 - 2 = 46 for the text


def metavar(param: Any) -> str:
    """The metavar of one option (upper case, no Python type)."""
    bare = param.bare_type() if hasattr(param, "bare_type") else ""
    if bare in ("int", "float"):  # a number is N or X whatever the option (label next --regions)
        return BY_TYPE[bare]
    return METAVARS.get(param.opts[0], BY_TYPE.get(bare, "TEXT"))


def default_text(param: Any) -> str | None:
    """``[default: X]`` for an option whose help does not state its default, else None."""
    if getattr(param, "is_flag", False) or param.required or param.default is None:
        return None
    if "default" in (param.help or "").lower() or param.show_default is False:
        return None
    value = param.default
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return f"[default: {value if not isinstance(value, Path) else str(value)}]"


def usage_pieces(command: Any) -> str:
    pieces = ["[OPTIONS]"]
    for p in command.params:
        if p.param_type_name != "argument":
            continue
        name = p.name.upper() + ("..." if p.nargs != 1 else "")
        pieces.append(name if p.required else f"[{name}]")
    if hasattr(command, "commands"):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def records(command: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(arguments, options)`` as (name column, help column) rows."""
    args, opts = [], []
    for p in command.params:
        if getattr(p, "hidden", False):
            continue
        if p.param_type_name == "argument":
            args.append((p.name.upper(), p.help or ""))
            continue
        names = ", ".join(p.opts)
        if p.secondary_opts:
            names += " / " + ", ".join(p.secondary_opts)
        if not getattr(p, "is_flag", False):
            names += f" {metavar(p)}"
        extra = [t for t in (default_text(p), "[required]" if p.required else None) if t]
        opts.append((names, "  ".join([p.help or "", *extra]).strip()))
    return args, opts


def tidy(command: Any) -> Any:
    """Give ``command`` and all its subcommands the help layout above; returns it."""

    def format_usage(ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, usage_pieces(command))

    def format_options(ctx: Any, formatter: Any) -> None:
        args, opts = records(command)
        help_option = command.get_help_option(ctx)
        if help_option is not None:
            opts.append((", ".join(help_option.opts), "Show this message and exit."))
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows, col_max=DESCRIPTION_COLUMN)
        if hasattr(command, "format_commands"):
            command.format_commands(ctx, formatter)

    for p in command.params:
        if p.param_type_name == "argument":
            p.metavar = p.name.upper()  # errors say "Missing argument 'PROJECT'"
    command.format_usage = format_usage
    command.format_options = format_options
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command
