"""Segmentation networks: a registry of FPN models and checkpoint I/O.

``create_model(name, num_classes, **kwargs)`` builds one of :data:`MODELS`
(``fpn_resnet18``, ``fpn_resnet34``, ``fpn_resnet50``, ``fpn_small``, ``fpn_effl0``) and loads
its encoder's start weights (``fpn_effl0``: ImageNet, from a pinned package; see
:mod:`ralis.models.pretrained`); ``save_model`` / ``load_model`` write and read self-describing
model files (safetensors, no code).
"""

from ralis.models.base import SegmentationNet
from ralis.models.factory import MODELS, create_model, model_from_config, supports_shared_features
from ralis.models.fpn import FPNSegNet
from ralis.models.io import check_classes, check_num_classes, load_model, save_model

__all__ = [
    "MODELS",
    "FPNSegNet",
    "SegmentationNet",
    "check_classes",
    "check_num_classes",
    "create_model",
    "load_model",
    "model_from_config",
    "save_model",
    "supports_shared_features",
]
