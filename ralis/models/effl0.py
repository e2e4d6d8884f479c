"""``fpn_effl0``: the small FPN's decoder over an ImageNet-pretrained EfficientNet-Lite0.

The encoder (:class:`ralis.models.efficientnet_lite.EfficientNetLite0Encoder`, 2.96 M
parameters) gives maps of 24 / 40 / 112 / 320 channels at strides 4 / 8 / 16 / 32; a BatchNorm
on each (``tap_norms``) brings them to one scale before the FPN's 1x1 laterals, which otherwise
start the training at a loss of ~15 instead of ~log(C). The decoder is ``fpn_small``'s (FPN
width 64, level heads 32, 3x3 classifier at 1/4 resolution), so ``forward_features`` /
``forward_head`` are the same interface: features ``[N, 4 * head_dim, H/4, W/4]``.

The factory builds a randomly initialised network; :func:`ralis.models.create_model` then loads
the packaged ImageNet weights into ``model.backbone`` (:mod:`ralis.models.pretrained`).
"""

from __future__ import annotations

from ralis.models.efficientnet_lite import EfficientNetLite0Encoder
from ralis.models.fpn import FPNSegNet


def fpn_effl0(
    num_classes: int, dropout_p: float = 0.5, fpn_dim: int = 64, head_dim: int = 32
) -> FPNSegNet:
    """FPN (``fpn_small``'s widths) over EfficientNet-Lite0 with a BatchNorm on each tap
    (3.25 M parameters with the defaults)."""
    return FPNSegNet(EfficientNetLite0Encoder(), num_classes, fpn_dim=fpn_dim, head_dim=head_dim,
                     dropout_p=dropout_p, tap_norm=True)
