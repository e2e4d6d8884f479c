"""The paper's FPN semantic-segmentation network over a 4-stage backbone.

Architecture (reference section 2.1), with ``D = fpn_dim`` (256) and ``E = head_dim`` (128):

* backbone: ``images [N, 3, H, W]`` -> ``c2..c5`` at strides 4, 8, 16, 32;
* top-down: ``p5 = lat5(c5)``, ``p_k = up(p_{k+1}) + lat_k(c_k)`` with 1x1 laterals to ``D``
  channels and bilinear upsampling (``align_corners=True``) to the lateral's exact size, so any
  ``H, W`` works, not only multiples of 32;
* per level, a separate head ``conv3x3 D->D, ReLU, conv3x3 D->E, ReLU``;
* the p5/p4/p3 head outputs are upsampled (bilinear) to p2's size and each followed by a
  ``conv3x3 E->E`` (no activation); p2's head output is used as is;
* features = concatenation ``[N, 4E, ~H/4, ~W/4]`` (:meth:`FPNSegNet.forward_features`);
* ``classifier`` = ``conv3x3 4E -> C`` at 1/4 resolution; the base's ``forward_head`` applies MC
  dropout (BALD only), the classifier and bilinear upsampling to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ralis.errors import ConfigError
from ralis.models.base import SegmentationNet
from ralis.models.resnet import resnet18, resnet34, resnet50


def _up(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``x [N, C, h, w]`` to ``[N, C, *size]`` (no-op when equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _check_common(num_classes: int, dropout_p: float, fpn_dim: int, head_dim: int) -> None:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not 0.0 <= float(dropout_p) < 1.0:
        raise ConfigError(f"dropout_p must be in [0, 1), got {dropout_p!r}")
    for key, val in (("fpn_dim", fpn_dim), ("head_dim", head_dim)):
        if not isinstance(val, int) or val < 1:
            raise ConfigError(f"{key} must be a positive integer, got {val!r}")


class FPNSegNet(SegmentationNet):
    """FPN semantic head over ``backbone``.

    ``backbone(images [N, 3, H, W])`` must return four maps ``(c2, c3, c4, c5)`` at strides
    4/8/16/32 and expose their channel counts as ``backbone.out_channels``. With ``tap_norm``
    each map passes a BatchNorm (``tap_norms``) before its lateral.

    Features: ``[N, 4 * head_dim, h, w]`` with ``(h, w)`` = c2's size (``ceil(H/4), ceil(W/4)``
    for the backbones here). Logits from :meth:`forward`: ``[N, num_classes, H, W]``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        fpn_dim: int = 256,
        head_dim: int = 128,
        dropout_p: float = 0.5,
        tap_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_common(num_classes, dropout_p, fpn_dim, head_dim)
        channels = tuple(backbone.out_channels)
        if len(channels) != 4:
            raise ValueError(f"backbone must expose 4 stage channel counts, got {channels}")
        self.num_classes = num_classes
        self.dropout_p = float(dropout_p)
        self.fpn_dim = fpn_dim
        self.head_dim = head_dim
        self.backbone = backbone
        # a pretrained encoder's maps differ in scale from stage to stage (EfficientNet-Lite0's
        # by 3-9x against the small net's): BN on each tapped map before its lateral
        self.tap_norms = nn.ModuleList(nn.BatchNorm2d(c) for c in channels) if tap_norm else None
        # laterals[i] maps c_{i+2} -> fpn_dim (index 3 is the top layer on c5).
        self.laterals = nn.ModuleList(nn.Conv2d(c, fpn_dim, kernel_size=1) for c in channels)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(fpn_dim, fpn_dim, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(fpn_dim, head_dim, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
            )
            for _ in range(4)
        )
        # post-upsampling convs for p3, p4, p5 (p2 needs none).
        self.post_up = nn.ModuleList(
            nn.Conv2d(head_dim, head_dim, kernel_size=3, padding=1) for _ in range(3)
        )
        self.classifier = nn.Conv2d(4 * head_dim, num_classes, kernel_size=3, padding=1)
        self._init_head()

    def _init_head(self) -> None:
        head_modules = [self.laterals, self.heads, self.post_up, self.classifier]
        for part in head_modules:
            for m in part.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        # A small classifier init keeps the initial logits near uniform.
        nn.init.normal_(self.classifier.weight, std=0.01)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """``images [N, 3, H, W]`` -> features ``[N, 4 * head_dim, h2, w2]`` (c2's size)."""
        c2, c3, c4, c5 = self.backbone(images)
        if self.tap_norms is not None:
            c2, c3, c4, c5 = (n(c) for n, c in zip(self.tap_norms, (c2, c3, c4, c5), strict=True))
        p5 = self.laterals[3](c5)
        p4 = _up(p5, c4.shape[-2:]) + self.laterals[2](c4)
        p3 = _up(p4, c3.shape[-2:]) + self.laterals[1](c3)
        p2 = self.laterals[0](c2) + _up(p3, c2.shape[-2:])
        size = p2.shape[-2:]
        h2 = self.heads[0](p2)
        h3 = self.post_up[0](_up(self.heads[1](p3), size))
        h4 = self.post_up[1](_up(self.heads[2](p4), size))
        h5 = self.post_up[2](_up(self.heads[3](p5), size))
        return torch.cat([h2, h3, h4, h5], dim=1)


def _fpn_resnet(
    trunk: nn.Module,
    num_classes: int,
    dropout_p: float,
    fpn_dim: int,
    head_dim: int,
) -> FPNSegNet:
    return FPNSegNet(trunk, num_classes, fpn_dim=fpn_dim, head_dim=head_dim, dropout_p=dropout_p)


def fpn_resnet18(
    num_classes: int, dropout_p: float = 0.5, fpn_dim: int = 256, head_dim: int = 128
) -> FPNSegNet:
    """FPN over a randomly initialised ResNet-18."""
    return _fpn_resnet(resnet18(), num_classes, dropout_p, fpn_dim, head_dim)


def fpn_resnet34(
    num_classes: int, dropout_p: float = 0.5, fpn_dim: int = 256, head_dim: int = 128
) -> FPNSegNet:
    """FPN over a randomly initialised ResNet-34."""
    return _fpn_resnet(resnet34(), num_classes, dropout_p, fpn_dim, head_dim)


def fpn_resnet50(
    num_classes: int, dropout_p: float = 0.5, fpn_dim: int = 256, head_dim: int = 128
) -> FPNSegNet:
    """The paper's network: FPN over a randomly initialised ResNet-50."""
    return _fpn_resnet(resnet50(), num_classes, dropout_p, fpn_dim, head_dim)
