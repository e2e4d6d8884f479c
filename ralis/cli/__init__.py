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

from ralis.cli import data, files, label, report, runs
from ralis.errors import RalisError, as_user_error

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Region-based active learning for semantic segmentation (RALIS and baselines).",
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help paragraphs reflow to the terminal's width
)
app.command(name="demo")(runs.demo)
app.command(name="pretrain")(runs.pretrain_cmd)
app.command(name="simulate")(runs.simulate)
app.command(name="upper-bound")(runs.upper_bound_cmd)
app.command(name="train-agent")(runs.train_agent_cmd)
app.command(name="benchmark")(runs.benchmark)
app.command(name="report")(report.report)
app.add_typer(data.data_app, name="data")
app.add_typer(label.label_app, name="label")
app.command(name="inspect")(files.inspect_cmd)
app.command(name="convert")(files.convert_cmd)


def main() -> None:
    try:
        app()  # click handles usage errors itself (usage line, exit 2)
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
