"""Resumable agent training: a checkpoint after every episode, the policy file beside it, and
the episode loop that ties them to the run store.

A learner mixes :class:`Persistent` into a :class:`~ralis.agents.base.Trainer` and supplies
``episode`` (episodes done), ``state_tree()`` / ``load_tree(tree)`` (everything its next episode
depends on) , ``handed_out()`` (the policy module to write and what chose it) and
``play_episode()`` (one episode's row for the store).
"""

from __future__ import annotations

import torch

from ralis.errors import RalisError, first_line
from ralis.progress import progress_bar
from ralis.rl.policy import load_policy, save_policy
from ralis.run.names import AGENT_CHECKPOINT, POLICY
from ralis.run.rundir import RunDirError

__all__ = ["Persistent"]


class Persistent:
    episode: int

    # supplied by the learner ---------------------------------------------------------------
    def state_tree(self) -> dict:
        raise NotImplementedError

    def load_tree(self, tree: dict) -> None:
        raise NotImplementedError

    def handed_out(self) -> tuple[torch.nn.Module, dict]:
        raise NotImplementedError

    def play_episode(self) -> dict:
        raise NotImplementedError

    def after_episode(self, row: dict) -> None:
        """Hook after an episode is stored (held-out selection)."""

    # shared ----------------------------------------------------------------------------------
    def save(self) -> None:
        self.run_dir.save_checkpoint(AGENT_CHECKPOINT, "agent-checkpoint", self.state_tree(),
                                     {"episode": self.episode})
        self.write_policy()

    def write_policy(self) -> None:
        net, how = self.handed_out()
        save_policy(self.out / POLICY, net, self.spec,
                    {**self.policy_meta(), **how, "episodes": self.episode})

    def policy_is_current(self) -> bool:
        """Whether ``policy.safetensors`` holds exactly what the checkpoint says it should (a
        crash between the checkpoint and the policy, or a file copied in, leaves it behind)."""
        try:
            net, _, record = load_policy(self.out / POLICY)
        except RalisError:
            return False
        want = self.handed_out()[0].state_dict()
        have = net.state_dict()
        return (record.get("episodes") == self.episode
                and record.get("run_id") == self.run_dir.run_id
                and want.keys() == have.keys()
                and all(torch.equal(want[k].cpu(), have[k]) for k in want))

    def restore(self) -> None:
        found = self.run_dir.load_checkpoint(AGENT_CHECKPOINT, "agent-checkpoint", "episode")
        logged = [e["episode"] for e in self.store.episodes()]
        if found is None:
            if max(logged, default=0) > 1:
                raise RunDirError(f"{self.out / AGENT_CHECKPOINT} is missing but run.sqlite logs "
                                  f"{max(logged)} episodes; start over in a new --out")
            return
        ck, _ = found
        done = int(ck["episode"])
        if logged[:done] != list(range(1, done + 1)) or max(logged, default=0) > done + 1:
            raise RunDirError(f"{self.out / AGENT_CHECKPOINT} is at episode {done} but run.sqlite logs "
                              f"episodes {logged[:3]}...{logged[-2:]}: the files of {self.out} "
                              "do not agree; start over in a new --out")
        try:
            self.load_tree(ck)
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise RunDirError(f"{self.out / AGENT_CHECKPOINT} does not fit this agent "
                              f"({first_line(exc)}); start over in a new --out") from None

    def run(self) -> dict:
        self.restore()
        a = self.cfg.agent
        bar = progress_bar(total=a.episodes, initial=self.episode, desc="agent episodes",
                           disable=not self.progress)
        while self.episode < a.episodes:
            row = self.play_episode()
            self.store.add_episode(row)
            self.after_episode(row)
            self.save()
            bar.update(1)
            bar.set_postfix(ret=f"{row['return']:.2f}", miou=f"{100 * row['final_miou']:.1f}%",
                            eps=f"{row['epsilon'] if row['epsilon'] is not None else 0:.2f}")
        bar.close()
        if self.episode == 0:
            self.save()
        elif not self.policy_is_current():
            self.write_policy()
        a = self.cfg.agent
        return {
            "mode": a.mode, "game": a.game, "episodes": self.episode, "seed": self.cfg.seed,
            "dataset": self.cfg.data.dataset, "preset": self.cfg.preset,
            "start_miou": self.start_miou, **self.handed_out()[1],
            "git_revision": self.store.computed_by(), "run_id": self.run_dir.run_id,
            "episodes_log": self.store.episodes(), "heldout": self.store.heldout(),
            "policy": str(self.out / POLICY),
        }
