"""``agent.mode=search``: an entropy-started linear scorer improved by episode-level search.

The scorer is ``z(entropy) + z(descriptor) @ w`` (:class:`~ralis.rl.scorers.EntropyResidual`
with a linear residual), and ``w`` starts at 0: entropy itself. Each generation (one "episode"
of the run's log) draws ``agent.search_population`` weight vectors around the current mean
(the mean first, :mod:`ralis.rl.search`) and plays each greedily on the same
``agent.search_seeds`` fresh training episodes, where entropy was played too: a member's
fitness is its mean final D_R mIoU minus entropy's on those episodes (x100), paired seed by
seed, so the pools' luck cancels. The Gaussian moves toward the best quarter. After every
generation the mean is judged on the held-out selection episodes; the handed-out policy is
the best judged mean, or entropy itself (generation 0) when none beats it there.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch

from ralis.agents.base import Selection, Trainer
from ralis.agents.persist import Persistent
from ralis.game.heldout import check_training_episodes, fixed_pick, greedy_pick, play
from ralis.game.scoring import policy_scores
from ralis.metrics import distribution_entropy
from ralis.rl.scorers import EntropyResidual, descriptor_dim
from ralis.rl.search import cem_population, cem_update
from ralis.run.session import step_seed

__all__ = ["SearchTrainer"]


class SearchTrainer(Persistent, Trainer):
    def __init__(self, cfg, run, proto, progress: bool = True):
        Trainer.__init__(self, cfg, run, proto, progress)
        a = cfg.agent
        check_training_episodes(a.episodes * a.search_seeds)
        d = descriptor_dim(proto.num_classes)
        self.mean = torch.zeros(d)
        self.std = torch.full((d,), a.search_sigma)
        self.episode = 0  # generations done
        self.best = {"episode": 0, "selection_miou": None, "w": self.mean.clone()}
        self.selection = Selection(self.game, self.store, a.heldout_seeds)

    def scorer(self, w: torch.Tensor) -> EntropyResidual:
        return EntropyResidual(self.proto.num_classes, 0).set_weights(w)

    # --- persistence ------------------------------------------------------------------------
    def state_tree(self) -> dict:
        return {"episode": self.episode, "mean": self.mean, "std": self.std, "best": self.best}

    def load_tree(self, ck: dict) -> None:
        self.mean, self.std = ck["mean"].clone(), ck["std"].clone()
        if self.mean.shape != self.std.shape or self.mean.numel() != self.best["w"].numel():
            raise ValueError("search state of another descriptor size")
        self.best = dict(ck["best"])
        self.episode = int(ck["episode"])

    def handed_out(self) -> tuple[torch.nn.Module, dict]:
        return self.scorer(self.best["w"]), {
            "selection": "best held-out selection mIoU", "selected_episode": self.best["episode"],
            "selection_miou": self.best["selection_miou"]}

    # --- one generation -----------------------------------------------------------------------
    def final(self, pick, episode: int) -> float:
        play(self.game, pick, episode)
        return self.game.score("reward")

    def play_episode(self) -> dict:
        a, game = self.cfg.agent, self.game
        self.episode += 1
        gen, start = self.episode, time.perf_counter()
        seeds = [(gen - 1) * a.search_seeds + i + 1 for i in range(a.search_seeds)]
        base = [self.final(fixed_pick("entropy", s), s) for s in seeds]
        g = torch.Generator().manual_seed(step_seed(self.cfg.seed, gen, "search"))
        population = cem_population(self.mean, self.std, a.search_population, g)
        fitness, finals = [], []
        for w in population:
            scorer = self.scorer(w)
            pick = greedy_pick(lambda o, s=scorer: policy_scores(s, o, self.spec))
            got = [self.final(pick, s) for s in seeds]
            finals.append(statistics.fmean(got))
            fitness.append(100.0 * statistics.fmean(x - b for x, b in zip(got, base,
                                                                            strict=True)))
            if len(finals) == 1:
                labelled = game.labelled_count()
                class_entropy = distribution_entropy(game.labelled_distribution())
        fit = torch.tensor(fitness)
        self.mean, self.std = cem_update(population, fit, self.mean, self.std,
                                         a.search_elite, a.search_smoothing)
        return {"episode": gen, "return": fitness[0], "final_miou": finals[0],
                "start_miou": self.start_miou, "epsilon": None, "loss": None, "dqn_lr": None,
                "labelled": labelled, "class_entropy": class_entropy,
                "wall": time.perf_counter() - start, "best_fitness": float(fit.max()),
                "search_std": float(self.std.mean())}

    def after_episode(self, row: dict) -> None:
        if self.best["selection_miou"] is None:  # generation 0: entropy itself
            self.selection.baselines()
            self.best["selection_miou"] = self.selection.baseline_mean("entropy")
        scorer = self.scorer(self.mean.clone())
        won = self.selection.improves(self.best["selection_miou"], self.episode, greedy_pick(
            lambda o: policy_scores(scorer, o, self.spec)))
        if won is not None:
            self.best = {"episode": self.episode, "selection_miou": won,
                         "w": copy.deepcopy(self.mean)}
