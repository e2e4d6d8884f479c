"""The registry of segmentation networks (:data:`MODELS`) and :func:`create_model`, which builds
one and loads its encoder's start weights."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from ralis.errors import ConfigError
from ralis.models.effl0 import fpn_effl0
from ralis.models.fpn import fpn_resnet18, fpn_resnet34, fpn_resnet50
from ralis.models.pretrained import load_encoder_weights
from ralis.models.small import fpn_small
from ralis.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
MODELS.register("fpn_resnet18")(fpn_resnet18)
MODELS.register("fpn_resnet34")(fpn_resnet34)
MODELS.register("fpn_resnet50")(fpn_resnet50)
MODELS.register("fpn_small")(fpn_small)
MODELS.register("fpn_effl0")(fpn_effl0)


def create_model(name: str, num_classes: int, encoder_weights: str | None = None,
                 **kwargs: object) -> nn.Module:
    """Build the registered model ``name`` for ``num_classes`` classes.

    ``kwargs`` (e.g. ``dropout_p``, ``fpn_dim``, ``head_dim``) go to the model's factory. An
    unknown name or keyword raises :class:`ConfigError` listing the valid ones.
    ``encoder_weights`` (``model.encoder_weights``): ``None`` the model's default start
    (``fpn_effl0``: ImageNet), ``"none"`` random, ``"imagenet"``, or a weights file; their
    provenance is kept as ``model.encoder_record`` (``None``: random start).
    """
    factory = MODELS.get(name)
    params = inspect.signature(factory).parameters
    unknown = sorted(k for k in kwargs if k not in params or k == "num_classes")
    if unknown:
        valid = ", ".join(k for k in params if k != "num_classes")
        raise ConfigError(
            f"model {name!r} got unknown option(s) {', '.join(unknown)}; valid options: {valid}"
        )
    model = factory(num_classes=num_classes, **kwargs)
    on_meta = any(p.is_meta for p in model.parameters())  # a skeleton: shapes, no weights
    model.encoder_record = None if on_meta else load_encoder_weights(model, name, encoder_weights)
    return model


def model_from_config(model_cfg, num_classes: int) -> nn.Module:
    """The network a :class:`ralis.config.ModelConfig` describes."""
    return create_model(model_cfg.name, num_classes, encoder_weights=model_cfg.encoder_weights,
                        dropout_p=model_cfg.dropout_p)


def supports_shared_features(model: nn.Module) -> bool:
    """True when ``model`` splits into ``forward_features`` + ``forward_head`` (like a
    :class:`SegmentationNet`; any module with both methods qualifies), so BALD can run only the head T times on shared features;
    otherwise BALD needs T full forward passes with dropout on."""
    return callable(getattr(model, "forward_features", None)) and callable(
        getattr(model, "forward_head", None)
    )
