"""Where an agent's game starts: the images that train its start model, the images it labels,
and the start model itself (trained once per agent run, resumable)."""

from __future__ import annotations

import torch

from ralis.config import RunConfig
from ralis.data.protocol import ImageSet, Protocol
from ralis.errors import ConfigError
from ralis.models import load_model
from ralis.run.names import START_MODEL
from ralis.run.rundir import Run
from ralis.training.supervised import finished_model, record_model, save_trained, train_supervised

__all__ = ["game_split", "start_model"]



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
