"""Non-finite is an error: a NaN or infinite loss, weight or output stops the run.

Every training loop (θ0 pretraining, the upper bound, AL steps, final training, the agent's
game and its DQN updates) checks its losses and weights; evaluation checks the network's
outputs. The error names the setting that most likely caused the divergence, so the user can
lower it, instead of a run that ends with exit 0 and a meaningless mIoU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

from ralis.data.base import normalize
from ralis.errors import RalisError

__all__ = ["DivergenceError", "blame", "check_loss", "check_weights", "check_outputs",
           "check_model_file"]

_BLAMED: ContextVar[str | None] = ContextVar("ralis_divergence_hint", default=None)


@contextmanager
def blame(hint: str) -> Iterator[None]:
    """Name the setting to blame (``"train.lr=0.01"``) for any divergence detected inside."""
    token = _BLAMED.set(hint)
    try:
        yield
    finally:
        _BLAMED.reset(token)


class DivergenceError(RalisError):
    """Training produced a non-finite loss or weights."""


def _advice(hint: str | None) -> str:
    hint = hint or _BLAMED.get()
    if not hint:
        return "lower the learning rate"
    return f"{hint} is likely too high; lower it with --set {hint.split('=')[0]}=..."


def check_loss(loss: float, where: str, hint: str | None = None) -> None:
    """Raise when ``loss`` is NaN or infinite. ``hint``: ``"train.lr=1e+06"``."""
    if not math.isfinite(loss):
        raise DivergenceError(f"training diverged: the loss is {loss} {where}; {_advice(hint)}")


def check_weights(model: nn.Module, where: str, hint: str | None = None) -> None:
    """Raise when any floating parameter or buffer of ``model`` is NaN or infinite."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise DivergenceError(f"training diverged: weights {name!r} became NaN or infinite "
                                  f"{where}; {_advice(hint)}")


def check_outputs(logits: torch.Tensor, where: str) -> None:
    """Raise when a network's outputs are not finite (a model that cannot be evaluated)."""
    if not bool(torch.isfinite(logits).all()):
        if _BLAMED.get():
            raise DivergenceError(f"training diverged: the network outputs NaN or infinite "
                                  f"values {where}; {_advice(None)}")
        raise DivergenceError(f"the network outputs NaN or infinite values {where}; its weights "
                              "are not usable (training diverged or the model file is damaged)")


@torch.no_grad()
def check_model_file(model: nn.Module, images_u8: torch.Tensor, path: object,
                     device: str = "cpu") -> None:
    """Refuse a model file whose outputs on ``images_u8 [n, 3, H, W]`` (a few images) are not
    finite: its weights pass every load check (finite, right shapes) but are too large to
    compute with, and no training setting is to blame. The network is left in eval mode."""
    model.eval()
    logits = model(normalize(images_u8).to(device))
    if not bool(torch.isfinite(logits).all()):
        raise DivergenceError(
            f"model file {path} outputs NaN or infinite values on the first images before any "
            "training: its weights are finite but too large (the file is damaged or crafted, "
            "or its training diverged); use another model file")
