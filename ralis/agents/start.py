"""Where an agent's game starts: the images that train its start model, the images it labels,
and the start model itself (trained once per agent run, resumable); an agent run's game
rebuilt from its folder."""

from __future__ import annotations

from pathlib import Path

import torch

from ralis.config import RunConfig, load_config
from ralis.data.protocol import ImageSet, Protocol, load_protocol
from ralis.errors import ConfigError
from ralis.game import GAMES
from ralis.models import load_model
from ralis.rl.observe import FeatureSpec
from ralis.run.names import START_MODEL
from ralis.run.rundir import Run
from ralis.training.supervised import finished_model, record_model, save_trained, train_supervised

__all__ = ["game_split", "start_model", "saved_game"]


def game_split(cfg: RunConfig, proto: Protocol) -> tuple[ImageSet, ImageSet]:
    """(images that train the start model, images the game labels).

    ``agent.start_from="state"``: the first ``agent.start_images`` of D_S, and all of D_T.
    ``"dt-half"``: the first half of D_T, and the second half, so the start model is close to
    θ0's quality and has still never seen the labels the game hands out.
    """
    if cfg.agent.start_from == "dt-half":
        n = len(proto.dqn_train)
        if n < 2:
            raise ConfigError("agent.start_from=dt-half needs at least 2 D_T images")
        half = n // 2
        return (proto.dqn_train.subset(list(range(half))),
                proto.dqn_train.subset(list(range(half, n))))
    start = proto.state.subset(list(range(min(cfg.agent.start_images, len(proto.state)))))
    return start, proto.dqn_train


def start_model(cfg: RunConfig, proto: Protocol, run: Run, progress: bool) -> torch.nn.Module:
    """The episodes' start weights: a net that has never seen the game's labels.

    The paper uses a GTA-V-pretrained net; nothing can be downloaded here, so a net trained on
    the (labelled) state set D_S, or on half of D_T, stands in for it (:func:`game_split`). Its
    early stopping reads the selection split when there is one (so the reward split plays no
    part in it), D_R otherwise; it is never tested. Saved once as ``start_model.safetensors``
    (its training checkpoints every epoch).
    """
    path = finished_model(run, START_MODEL)
    if path is None:
        images, _ = game_split(cfg, proto)
        where = "half of D_T" if cfg.agent.start_from == "dt-half" else "D_S"
        model, metrics = train_supervised(cfg, proto, images, f"agent start model on {where}",
                                          progress, seed_offset=7919, run=run,
                                          val_set=proto.selection, test=False)
        path = save_trained(run.root / START_MODEL, cfg, proto, model, images, metrics,
                            "agent start model")
        record_model(run, path)
    model, _ = load_model(path)
    return model.to(cfg.device)


def saved_game(run_dir: Path, proto: Protocol | None = None):
    """``(cfg, proto, spec, game)`` of the agent run in ``run_dir``: its saved config and start
    model, the game it was trained in (``proto``: the loaded protocol, to share it)."""
    cfg = load_config(run_dir / "config.json")
    proto = proto or load_protocol(cfg.data, progress=False)
    model, _ = load_model(run_dir / START_MODEL)
    start_images, game_images = game_split(cfg, proto)
    spec = FeatureSpec.from_config(cfg.agent, proto.num_classes, proto.regions_of(proto.state),
                                   len(proto.state))
    game = GAMES.get(cfg.agent.game)(cfg, proto, model, start_images, game_images, spec,
                                     cfg.seed)
    return cfg, proto, spec, game
