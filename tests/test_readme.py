"""The README is true: short, every command it shows exists with the flags it shows, no example
writes into docs/, every link points at a file, and its own-model snippet runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ralis.cli import command

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def shell_lines() -> list[str]:
    """Every command line of the README's bash blocks, continuation lines joined."""
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def ralis_commands() -> list[list[str]]:
    return [shlex.split(line) for line in shell_lines() if line.startswith("ralis ")]


def resolve(words: list[str]):
    """``(click command, its path, the remaining words)`` of ``ralis WORDS...``."""
    cmd, path = command(), ["ralis"]
    rest = list(words[1:])
    while rest and hasattr(cmd, "commands") and rest[0] in cmd.commands:
        cmd = cmd.commands[rest[0]]
        path.append(rest.pop(0))
    return cmd, " ".join(path), rest


def test_readme_is_a_short_guide():
    assert len(README.splitlines()) <= 200


def test_the_readme_shows_commands():
    names = {resolve(words)[1] for words in ralis_commands()}
    assert {"ralis simulate", "ralis label init", "ralis data check", "ralis report",
            "ralis inspect"} <= names


@pytest.mark.parametrize("words", ralis_commands(), ids=lambda w: " ".join(w[:3]))
def test_each_readme_command_exists_with_its_flags(words):
    cmd, path, rest = resolve(words)
    assert not hasattr(cmd, "commands"), f"`{path}` needs a subcommand"
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"`{path}` has no option {word}"
    assert not any(w.startswith(("docs/", "./docs/")) for w in rest), "an example writes docs/"


def test_make_targets_the_readme_names_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make ([a-z-]+)`", README)) | {
            w.split()[1] for w in shell_lines() if w.startswith("make ")}:
        assert re.search(rf"^{target}:", makefile, re.M), target


def test_links_point_at_files():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_own_model_snippet_runs(tmp_path, monkeypatch):
    """The README's "Your own model" code, as printed, on synthetic-tiny (about 15 s)."""
    (snippet,) = blocks("python")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    budgets = scope["results"]["budgets"]
    assert [b["regions"] for b in budgets] == [8, 16]
    assert all(0.0 <= b["miou"] <= 1.0 for b in budgets)
    assert (tmp_path / "runs" / "mine" / "results.json").exists()


def test_the_shared_flags_the_readme_lists_are_shared():
    cmd = command()
    shared = ["--preset", "--dataset", "--data-root", "--out", "--device", "--resolution",
              "--region-size", "--regions", "--set", "--quiet"]
    for flag in shared:
        assert f"`{flag}" in README, flag
    for name in ("pretrain", "simulate", "upper-bound", "train-agent", "benchmark"):
        opts = {o for p in cmd.commands[name].params for o in p.opts}
        extra = ["--seeds"] if name == "benchmark" else ["--seed", "--resume"]
        assert set(shared + extra) <= opts, (name, set(shared + extra) - opts)
