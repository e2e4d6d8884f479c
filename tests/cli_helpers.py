"""Calling the ``ralis`` command line in-process, as a user would from a shell."""

from __future__ import annotations

import sys

import pytest

from ralis.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``ralis ARGS...`` -> ``(exit code, stdout, stderr)``."""
    monkeypatch.setattr(sys, "argv", ["ralis", *args])
    with pytest.raises(SystemExit) as exc:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err
