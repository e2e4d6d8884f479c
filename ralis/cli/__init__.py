"""The ``ralis`` command line. User mistakes print one line and exit 2, never a traceback.

One module per command group: :mod:`~ralis.cli.runs` (demo, pretrain, simulate, upper-bound,
train-agent, benchmark), :mod:`~ralis.cli.report`, :mod:`~ralis.cli.data`,
:mod:`~ralis.cli.label` and :mod:`~ralis.cli.files` (inspect, convert); the options they share
and the config a command line resolves to are :mod:`~ralis.cli.options`. Commands import what
they run when they run, so ``ralis --help`` stays fast.
"""

from __future__ import annotations

import sqlite3
import sys

import typer
import typer.main

from ralis.cli import data, files, label, report, runs
from ralis.cli.help import tidy
from ralis.errors import RalisError, as_user_error

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Region-based active learning for semantic segmentation (RALIS and baselines).",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help, laid out by ralis.cli.help.tidy
)
# the one-line summaries of `ralis --help` (at most 60 characters: never cut off)
app.command(name="demo", short_help="θ0 and three strategies on synthetic scenes, one table")(
    runs.demo)
app.command(name="pretrain", short_help="Train the start model θ0 on D_T")(runs.pretrain_cmd)
app.command(name="simulate", short_help="One active-learning run of one strategy")(
    runs.simulate)
app.command(name="upper-bound", short_help="Full supervision with the same recipe")(
    runs.upper_bound_cmd)
app.command(name="train-agent", short_help="Train the RALIS query agent (a policy file)")(
    runs.train_agent_cmd)
app.command(name="benchmark", short_help="The grid strategies x seeds x budgets, one CSV")(
    runs.benchmark)
app.command(name="report", short_help="A Markdown report with figures from results")(
    report.report)
app.add_typer(data.data_app, name="data")
app.add_typer(label.label_app, name="label")
app.command(name="inspect", short_help="What a model, policy or checkpoint file is")(
    files.inspect_cmd)
app.command(name="convert", short_help="Turn a ralis 0.1 pickle into a .safetensors file")(
    files.convert_cmd)


def command() -> typer.main.TyperGroup:
    """The click command ``ralis`` runs, with the help layout of :mod:`ralis.cli.help`."""
    return tidy(typer.main.get_command(app))


def main() -> None:
    try:
        command()()  # click handles usage errors itself (usage line, exit 2)
    except (RalisError, OSError, sqlite3.Error) as exc:
        user = as_user_error(exc)  # a full disk is one line too
        if user is None:
            raise
        print(f"error: {user}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C into exit 130
            _interrupted()
        raise


def _interrupted() -> None:
    print("\ninterrupted: everything labelled so far is saved; continue with the same command "
          "and --resume", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
    main()
