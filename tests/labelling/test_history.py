"""``label next --include-pending`` asks for pending regions again without rewriting history:
earlier rounds keep the regions they requested."""

from __future__ import annotations

from tests.cli_helpers import run_cli
from tests.labelling.test_label_cli import status


def test_include_pending_keeps_earlier_rounds(monkeypatch, capsys, project):
    before = status(monkeypatch, capsys, project)["rounds"]
    assert [(r["round"], r["requested"], r["pending"]) for r in before] == [(1, 6, 6)]
    code, _, err = run_cli(monkeypatch, capsys, "label", "next", str(project), "--regions",
                           "144", "--include-pending", "--strategy", "random", "--quiet")
    assert code == 0, err
    s = status(monkeypatch, capsys, project)
    assert [(r["round"], r["requested"]) for r in s["rounds"]] == [(1, 6), (2, 144)]
    assert (s["requested"], s["pending"], s["unrequested"]) == (144, 144, 0)
    rows = (project / "rounds" / "2" / "requests.csv").read_text().splitlines()
    assert len(rows) == 145  # the round's export lists the pending regions asked again


