"""Segmentation networks: a registry of FPN models and checkpoint I/O.

``create_model(name, num_classes, **kwargs)`` builds one of :data:`MODELS`
(``fpn_resnet18``, ``fpn_resnet34``, ``fpn_resnet50``, ``fpn_small``); ``save_model`` /
``load_model`` write and read self-describing model files (safetensors, no code).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from ralis.errors import ConfigError
from ralis.models.base import SegmentationNet
from ralis.models.fpn import FPNSegNet, fpn_resnet18, fpn_resnet34, fpn_resnet50
from ralis.models.io import check_classes, check_num_classes, load_model, save_model
from ralis.models.small import fpn_small
from ralis.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
MODELS.register("fpn_resnet18")(fpn_resnet18)
MODELS.register("fpn_resnet34")(fpn_resnet34)
MODELS.register("fpn_resnet50")(fpn_resnet50)
MODELS.register("fpn_small")(fpn_small)


def create_model(name: str, num_classes: int, **kwargs: object) -> nn.Module:
    """Build the registered model ``name`` for ``num_classes`` classes.

    ``kwargs`` (e.g. ``dropout_p``, ``fpn_dim``, ``head_dim``) go to the model's factory. An
    unknown name or keyword raises :class:`ConfigError` listing the valid ones.
    """
    factory = MODELS.get(name)
    params = inspect.signature(factory).parameters
    unknown = sorted(k for k in kwargs if k not in params or k == "num_classes")
    if unknown:
        valid = ", ".join(k for k in params if k != "num_classes")
        raise ConfigError(
            f"model {name!r} got unknown option(s) {', '.join(unknown)}; valid options: {valid}"
        )
    return factory(num_classes=num_classes, **kwargs)


def supports_shared_features(model: nn.Module) -> bool:
    """True when ``model`` splits into ``forward_features`` + ``forward_head`` (like a
    :class:`SegmentationNet`; any module with both methods qualifies), so BALD can run only the head T times on shared features;
    otherwise BALD needs T full forward passes with dropout on."""
    return callable(getattr(model, "forward_features", None)) and callable(
        getattr(model, "forward_head", None)
    )


__all__ = [
    "MODELS",
    "FPNSegNet",
    "SegmentationNet",
    "check_classes",
    "check_num_classes",
    "create_model",
    "load_model",
    "save_model",
    "supports_shared_features",
]
