"""``ralis train-agent``: train (or resume) a query agent in its labelling game.

The game (``agent.game``, :mod:`ralis.game`) and the learner (``agent.mode``,
:mod:`ralis.agents`) are chosen by the config; every learner checkpoints after each episode
and writes ``policy.safetensors`` and ``agent.json``.
"""

from __future__ import annotations

from pathlib import Path

from ralis.agents import TRAINERS
from ralis.config import RunConfig
from ralis.data.protocol import Protocol, load_protocol
from ralis.run.rundir import has_run, open_run
from ralis.run.session import set_threads

AGENT_DATA = ("D_S", "D_T", "D_V", "D_R", "selection")
"""The sets an agent training hashes into its record: never the test split."""


def train_agent(cfg: RunConfig, out: Path, resume: bool = False, progress: bool = True,
                proto: Protocol | None = None, given: list[str] | None = None,
                given_preset: str | None = None, ignore: tuple[str, ...] = ()) -> dict:
    """Train (or resume) a query agent; writes ``policy.safetensors`` and ``agent.json``."""
    if proto is None and not has_run(Path(out)):  # bad data fails before anything is written
        proto = load_protocol(cfg.data, progress)
    with open_run(Path(out), cfg, "train-agent", resume, given, given_preset, ignore) as run:
        cfg = run.cfg
        set_threads(cfg)
        proto = proto or load_protocol(cfg.data, progress)
        run.same_data(proto, AGENT_DATA)
        trainer = TRAINERS.get(cfg.agent.mode)(cfg, run, proto, progress)
        summary = trainer.run()
        run.write_json("agent.json", summary)
        return summary


__all__ = ["train_agent"]
