"""EfficientNet-Lite0 in plain PyTorch (no torchvision, no timm, no downloads).

The network of Tan & Le's EfficientNet with the "Lite" changes (no squeeze-and-excitation, ReLU6,
stem and head not scaled), laid out as the TensorFlow original so that its ImageNet weights give
the same outputs:

* convolutions pad as TensorFlow's ``"SAME"`` (:func:`same_padding`: a stride-2 convolution on an
  even side pads one pixel less before than after), without biases; BatchNorm with
  ``eps = 1e-3`` and momentum 0.01 (TensorFlow's decay 0.99);
* the network reads ``(x - 127) / 128`` of 0..255 pixels. ralis feeds every network ImageNet-
  normalised images (:func:`ralis.data.base.normalize`), so :class:`EfficientNetLite0Encoder`
  turns those back into the network's own scale with a fixed per-channel affine map;
* stem ``conv3x3/2 3->32``, then 16 inverted-residual (MBConv) blocks in 7 stages
  (:data:`LITE0_STAGES`: kernel, stride, expansion, channels, repeats), then (classifier only) a
  ``conv1x1 320->1280``, global average pooling and a 1000-way linear layer.

Parameter names are those of the EfficientNet-PyTorch family (``_conv_stem``, ``_bn0``,
``_blocks.i._expand_conv`` / ``_bn0`` / ``_depthwise_conv`` / ``_bn1`` / ``_project_conv`` /
``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``), so a state dict of that family loads with
``strict=True``: the encoder takes every entry but the classifier head's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ralis.data.base import IMAGENET_MEAN, IMAGENET_STD

BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon for EfficientNet
BN_MOMENTUM = 0.01  # PyTorch convention for TensorFlow's decay 0.99
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # the network reads (x - 127) / 128 of 0..255 pixels

# (kernel, stride, expansion, out channels, repeats) per stage; the stem has 32 channels
LITE0_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
                (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
TAPS = (2, 4, 10, 15)  # blocks whose outputs are c2..c5 (strides 4, 8, 16, 32)
TAP_CHANNELS = (24, 40, 112, 320)
HEAD_KEYS = ("_conv_head.", "_bn1.", "_fc.")  # the classifier's own entries (not the encoder's)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``"SAME"`` padding of one side of length ``size``: ``(before, after)``.

    The output has ``ceil(size / stride)`` samples; the total padding that needs is split with
    the extra pixel after, e.g. ``(0, 1)`` for a 3x3 stride-2 convolution on an even side.
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (no bias) with TensorFlow's ``"SAME"`` padding for any input size.

    ``[N, in, H, W] -> [N, out, ceil(H / stride), ceil(W / stride)]``. A stride-1 convolution of
    odd kernel pads symmetrically (``kernel // 2``, done by the convolution itself); a strided
    one pads as :func:`same_padding` says, computed from the input's size on each call.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1,
                 groups: int = 1) -> None:
        symmetric = stride == 1 and kernel % 2 == 1
        super().__init__(in_ch, out_ch, kernel, stride, padding=kernel // 2 if symmetric else 0,
                         groups=groups, bias=False)
        self.dynamic = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            (k_h, k_w), (s_h, s_w) = self.kernel_size, self.stride
            top, bottom = same_padding(x.shape[-2], k_h, s_h)
            left, right = same_padding(x.shape[-1], k_w, s_w)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-and-excitation.

    ``[N, in, H, W] -> [N, out, ceil(H / s), ceil(W / s)]``: ``conv1x1`` expansion to
    ``in * expansion`` channels (skipped when ``expansion == 1``), depthwise ``k x k`` conv of
    stride ``s``, ``conv1x1`` projection (linear); BN after each conv, ReLU6 after the first two;
    the input is added back when ``s == 1`` and ``in == out``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = in_ch * expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.expands = expansion != 1
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0Encoder(nn.Module):
    """Stem and the 16 MBConv blocks; returns the feature maps at strides 4, 8, 16, 32.

    ``images [N, 3, H, W]`` (ImageNet-normalised, as ralis feeds every network) ->
    ``(c2 [N, 24, H/4, W/4], c3 [N, 40, H/8, W/8], c4 [N, 112, H/16, W/16],
    c5 [N, 320, H/32, W/32])`` (sizes rounded up). ``out_channels`` = ``(24, 40, 112, 320)``.
    Randomly initialised (He, fan-out); load weights to make it useful.
    """

    def __init__(self) -> None:
        super().__init__()
        # ralis input (x/255 - mean) / std  ->  the network's (255 x - 127) / 128, per channel
        scale = IMAGENET_STD.reshape(1, 3, 1, 1) * 255.0 / INPUT_STD
        shift = (IMAGENET_MEAN.reshape(1, 3, 1, 1) * 255.0 - INPUT_MEAN) / INPUT_STD
        self.register_buffer("input_scale", scale.float(), persistent=False)
        self.register_buffer("input_shift", shift.float(), persistent=False)
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, in_ch = [], STEM_CHANNELS
        for kernel, stride, expansion, out_ch, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(in_ch, out_ch, kernel, stride if i == 0 else 1, expansion))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)
        self.out_channels: tuple[int, ...] = TAP_CHANNELS
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def stem(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised ``images`` -> the stem's output ``[N, 32, H/2, W/2]``."""
        x = images * self.input_scale + self.input_shift
        return F.relu6(self._bn0(self._conv_stem(x)))

    def forward(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x, taps = self.stem(images), []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        c2, c3, c4, c5 = taps
        return c2, c3, c4, c5


class EfficientNetLite0(EfficientNetLite0Encoder):
    """The ImageNet classifier: the encoder, ``conv1x1 320->1280`` + BN + ReLU6, global average
    pooling, dropout 0.2 and a linear layer. ``images [N, 3, H, W] -> logits [N, classes]``.

    Used to check the packaged weights (they must classify an image as the original does); the
    segmentation networks use only :class:`EfficientNetLite0Encoder`.
    """

    def __init__(self, num_classes: int = 1000, dropout_p: float = 0.2) -> None:
        super().__init__()
        self._conv_head = SameConv2d(TAP_CHANNELS[-1], HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout_p)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = self.stem(images)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(x.mean(dim=(-2, -1))))
