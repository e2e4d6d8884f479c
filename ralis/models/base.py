"""The segmentation-network contract.

Any ``nn.Module`` whose ``forward(images [N, 3, H, W])`` returns logits ``[N, C, H, W]`` works in the
active-learning loop. Networks that also split into a *feature* part and a *head* (dropout +
classifier + upsampling) let BALD run only the head T times on shared features; for other
modules BALD falls back to T full forward passes with their dropout layers switched on.
"""

from __future__ import annotations

import torch
from torch import nn


class SegmentationNet(nn.Module):
    """Base for ralis' own networks: ``forward = head(features(x))``.

    Subclasses implement :meth:`forward_features` and set ``self.classifier`` (a module mapping
    features to logits at feature resolution) and ``self.dropout_p``.
    """

    num_classes: int
    dropout_p: float = 0.5

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """``images [N, 3, H, W]`` -> features ``[N, F, h, w]`` fed to the classifier."""
        raise NotImplementedError

    def forward_head(
        self,
        features: torch.Tensor,
        out_size: tuple[int, int],
        mc_dropout: bool = False,
        keep_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Features -> logits ``[N, C, H, W]`` at ``out_size``.

        With ``mc_dropout=True`` dropout (p = ``dropout_p``) is applied to the features first,
        whatever the module's train/eval mode (Monte-Carlo dropout, used by BALD only; the paper
        never trains with it). ``keep_mask`` (bool, features' shape) supplies the dropout mask
        instead of drawing one (see :func:`ralis.models.inference.dropout_masks`).
        """
        if mc_dropout and self.dropout_p > 0:
            if keep_mask is None:
                features = nn.functional.dropout(features, self.dropout_p, training=True)
            else:
                features = features * keep_mask / (1.0 - self.dropout_p)
        logits = self.classifier(features)
        if tuple(logits.shape[-2:]) != tuple(out_size):
            logits = nn.functional.interpolate(
                logits, size=out_size, mode="bilinear", align_corners=False
            )
        return logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images), tuple(images.shape[-2:]))
