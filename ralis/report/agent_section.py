"""The agents' section: their training game per episode (:mod:`ralis.report.agents`), first vs
last episodes, the DQN's loss, and the held-out selection episodes (:mod:`ralis.report.heldout`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ralis.errors import RalisError
from ralis.report import figures
from ralis.report.agents import agent_labels, read_episodes, summarize
from ralis.report.heldout import heldout_section
from ralis.report.text import md_table, signed


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies inside it (a report names no
    machine's absolute paths where it need not), else as it is."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


def agent_section(agent_dirs: Sequence[Path], out_dir: Path, window: int = 10) -> list[str]:
    """The agents' training game (``agent-*/run.sqlite``): a figure, first vs last episodes."""
    if not agent_dirs:
        return []
    labels = agent_labels(agent_dirs)
    curves: dict[str, list[dict[str, Any]]] = {}
    unread: dict[str, str] = {}
    for d in agent_dirs:
        try:
            curves[labels[d]] = read_episodes(d)
        except RalisError as exc:
            unread[labels[d]] = str(exc).splitlines()[0]
    where = ", ".join(f"{labels[d]} = `{_shown(d)}`" for d in agent_dirs)
    lines = ["## Agent learning curve", ""]
    summaries = {name: summarize(eps, window) for name, eps in curves.items()}
    if any(sm.episodes for sm in summaries.values()):
        figures.agent_learning_curve(curves, out_dir / "agent_learning_curve.png", window)
        lines += [
            "![agent learning curve](agent_learning_curve.png)",
            "",
            "The RALIS agents' training game on D_T, per episode: the D_R mIoU (%) at the "
            "episode's end (left axis; light: every episode, bold: the moving average over "
            f"{window} episodes), the entropy (nats) of the labelled pixels' class distribution "
            "(right axis, dashed) and the exploration rate ε (faint, dotted, 0 to 1). Agents: "
            f"{where}.",
            "",
        ]
    else:
        lines += [f"No agent has finished an episode yet ({where}).", ""]
    body, verdicts, losses = [], [], []
    for name, sm in summaries.items():
        if not sm.episodes:
            body.append([name, "0", "–", "–", "–", "–", "–"])
            continue
        spread = "–" if sm.spread is None else f"{sm.spread:.2f}"
        start = "–" if sm.start is None else f"{sm.start:.2f}"
        body.append([name, str(sm.episodes), f"{sm.first:.2f}", f"{sm.last:.2f}",
                     signed(sm.difference), spread, start])
        if sm.loss_max is not None:
            losses.append([name, f"{sm.loss_first:.3g}", f"{sm.loss_last:.3g}",
                           f"{sm.loss_max:.3g}"])
        if sm.learned is None:
            verdicts.append(f"{name} cannot tell (fewer than 2 episodes in a window)")
        else:
            sign = ">" if sm.learned else "≤"
            verdicts.append(f"{name} {'yes' if sm.learned else 'no'} "
                            f"({signed(sm.difference)} {sign} {sm.spread:.2f} points)")
    if body:
        short = [sm for sm in summaries.values() if sm.episodes and sm.overlap]
        lines += [
            f"Mean final D_R mIoU (%) of the first and the last {window} episodes of each agent; "
            "spread = the pooled sample standard deviation of the episodes within those two "
            "windows, sqrt((s_first² + s_last²) / 2)"
            + (f"; with fewer than {2 * window} episodes the two windows overlap" if short
               else "") + "; start = the D_R mIoU of the game's start model, where every "
            "episode begins (an episode that ends below it lost D_R mIoU by labelling).",
            "",
            md_table(["agent", "episodes", f"first {window}", f"last {window}", "last − first",
                    "spread", "start"], body),
            "",
        ]
    if verdicts:
        lines += [f"Last-{window} mean above the first-{window} mean by more than the spread of "
                  "the episodes: " + "; ".join(verdicts) + ".", ""]
    if losses:
        lines += [
            "The query network's regression: the DQN's Huber loss per episode (the mean over "
            f"its steps' minibatches), median over the first and the last {window} episodes, "
            "and the largest. Returns are mIoU points; a loss far above their scale means the "
            "Q-values have drifted away from the returns they should predict.",
            "",
            md_table(["agent", f"median loss, first {window}", f"median loss, last {window}",
                    "largest loss"], losses),
            "",
        ]
    if unread:
        lines += ["Not read: " + "; ".join(f"{n} ({e})" for n, e in unread.items()) + ".", ""]
    return lines + heldout_section(agent_dirs, labels, out_dir)
