"""Every command's --help reads like a well-kept CLI's, and small output rules of the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ralis.cli import command
from ralis.cli.help import records
from ralis.progress import console_for


def all_commands(cmd=None, path=("ralis",)):
    cmd = cmd or command()
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from all_commands(sub, (*path, name))


COMMANDS = [" ".join(p[1:]) for p, _ in all_commands()]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_reads_well_at_80_columns(name):
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    res = subprocess.run([sys.executable, "-m", "ralis", *name.split(), "--help"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert not re.search(r"<(bool|int|str|path|float|list)", text, re.I)  # no Python types
    assert "{" not in text.split("\n", 1)[0]  # arguments are not in braces
    assert "[x>=" not in text and "--no-quiet" not in text and "--no-resume" not in text
    for line in text.splitlines():  # description column starts by column 34: >= 40 wide
        found = re.match(r"^  (-\S.*?|[A-Z]+)  +\S", line)
        if found:
            assert found.end() - 1 <= 80 - 40, line


def test_metavars_are_upper_case_and_defaults_said_once():
    for path, cmd in all_commands():
        _, opts = records(cmd)
        for names, help_text in opts:
            for word in names.split()[1:]:
                if not word.startswith("-") and word != "/":
                    assert word.upper() == word.replace("x", "X"), (path, names)
            assert help_text.lower().count("default") <= 1, (path, names, help_text)


def test_commands_list_is_not_cut_off():
    res = subprocess.run([sys.executable, "-m", "ralis", "--help"], capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": "80"})
    assert "..." not in res.stdout.split("Commands:")[1]


def test_output_into_a_pipe_is_never_wrapped(capsys):
    from rich.table import Table

    con = console_for()  # pytest captures stdout: not a terminal
    command_line = "ralis report " + "runs/" + "x" * 120 + "/results.csv"
    con.print(f"plot: demo.png; table: results.csv (`{command_line}` for the full report)")
    table = Table(title="test mIoU (%) on 20 test scenes (every model also trains on D_T), seed 0")
    table.add_column("model")
    table.add_row("θ0")
    con.print(table)
    out = capsys.readouterr().out
    assert command_line in out
    assert "test mIoU (%) on 20 test scenes (every model also trains on D_T), seed 0" in out


def test_a_size_that_is_not_hxw_says_so(monkeypatch, capsys, tmp_path):
    from tests.cli_helpers import run_cli

    code, _, err = run_cli(monkeypatch, capsys, "simulate", "--resolution", "60*80", "--out",
                           str(tmp_path / "r"))
    assert code == 2 and "HxW" in err and "60*80" in err and not (tmp_path / "r").exists()


def test_a_budget_over_the_pool_creates_nothing(monkeypatch, capsys, tmp_path):
    from tests.cli_helpers import run_cli

    out = tmp_path / "r"
    code, _, err = run_cli(monkeypatch, capsys, "simulate", "--budgets", "100000", "--quiet",
                           "--out", str(out))
    assert code == 2 and "larger than the pool" in err
    assert not out.exists()  # so the corrected command is not refused as "already holds a run"


def test_report_goes_beside_its_input_by_default(tmp_path):
    from ralis.cli.report import default_report_dir

    grid = tmp_path / "runs" / "grid"
    grid.mkdir(parents=True)
    assert default_report_dir(grid / "results.csv") == grid / "report"  # beside the file
    assert default_report_dir(grid) == grid / "report"  # inside a run or grid folder
