"""Network inference for acquisition: one forward per image gives probabilities, entropy and
predicted classes together; BALD re-runs only the dropout + classifier head T times."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ralis.data.base import normalize
from ralis.models import supports_shared_features
from ralis.precision import autocast
from ralis.uncertainty import entropy_from_logits, pixel_entropy


@dataclass
class Prediction:
    """Per-pixel outputs of one forward pass over ``n`` images."""

    pred_ids: torch.Tensor  # [n, H, W] long, argmax class
    entropy: torch.Tensor  # [n, H, W] float, Shannon entropy of the softmax (nats)


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


@torch.no_grad()
def predict(
    model: nn.Module, images_u8: torch.Tensor, batch_size: int = 16, device: str = "cpu",
    amp: bool = False,
) -> Prediction:
    """``images_u8 [n, 3, H, W]`` -> :class:`Prediction` (eval mode, no grad, one forward each;
    ``amp``: the network in bf16, softmax and entropy in float32)."""
    model.eval()
    preds, ents = [], []
    for sl in _batches(images_u8.shape[0], batch_size):
        with autocast(device, amp):
            logits = model(normalize(images_u8[sl]).to(device, non_blocking=True))
        probs, ent = entropy_from_logits(logits.float())
        preds.append(probs.max(1).indices.cpu())  # max: argmax over dim 1 is slow on CPU
        ents.append(ent.cpu())
    return Prediction(torch.cat(preds), torch.cat(ents))


def dropout_masks(shape: torch.Size, p: float, samples: int, device: str = "cpu"):
    """Yield ``samples`` independent Bernoulli(1 - p) keep-masks of ``shape`` (bool).

    For the paper's p = 0.5 each random 31-bit integer supplies one bit to 31 masks, so drawing
    20 masks costs one draw instead of 20 (the random numbers, not the network, dominate MC
    dropout on a CPU). Other p draw one uniform tensor per mask.
    """
    if p == 0.5:
        bits = None
        for t in range(samples):
            if t % 31 == 0:
                bits = torch.randint(0, 2**31 - 1, shape, dtype=torch.int32, device=device)
            yield ((bits >> (t % 31)) & 1).bool()
    else:
        for _ in range(samples):
            yield torch.rand(shape, device=device) >= p


def has_dropout(model: nn.Module) -> bool:
    """True when MC dropout can sample: a head with ``dropout_p > 0`` or any dropout layer."""
    if supports_shared_features(model) and float(getattr(model, "dropout_p", 0.0)) > 0:
        return True
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def _set_dropout(model: nn.Module, active: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train(active)


@torch.no_grad()
def bald_map(
    model: nn.Module,
    images_u8: torch.Tensor,
    samples: int = 20,
    batch_size: int = 16,
    device: str = "cpu",
    full_resolution: bool = False,
    amp: bool = False,
) -> torch.Tensor:
    """BALD per pixel from ``samples`` MC-dropout passes: ``[n, 3, H, W]`` -> ``[n, H, W]``.

    Networks with ``forward_features``/``forward_head`` compute the features once and run only
    dropout + classifier T times; other modules run T full forwards with their dropout layers on.
    Means are accumulated on the fly, so memory does not grow with T.

    With shared features and ``full_resolution=False`` the T samples stay at the classifier's
    resolution (1/4 for the FPNs) and the BALD map is upsampled once, instead of upsampling
    C-channel logits T times (the authors' way, ``full_resolution=True``); region means barely
    change and the MC part costs ~16x less.
    """
    model.eval()
    shared = supports_shared_features(model)
    out = []
    for sl in _batches(images_u8.shape[0], batch_size):
        x = normalize(images_u8[sl]).to(device, non_blocking=True)
        size = tuple(x.shape[-2:])
        with autocast(device, amp):
            feats = model.forward_features(x) if shared else None
        head_size = size if (full_resolution or not shared) else tuple(feats.shape[-2:])
        if not shared:
            _set_dropout(model, True)
        mean_probs = mean_entropy = None
        masks = (dropout_masks(feats.shape, float(getattr(model, "dropout_p", 0.5)), samples,
                               feats.device) if shared else None)
        for _ in range(samples):
            with autocast(device, amp):
                if shared:
                    logits = model.forward_head(feats, head_size, mc_dropout=True,
                                                keep_mask=next(masks))
                else:
                    logits = model(x)
            probs, ent = entropy_from_logits(logits.float())
            mean_probs = probs if mean_probs is None else mean_probs.add_(probs)
            mean_entropy = ent if mean_entropy is None else mean_entropy.add_(ent)
        if not shared:
            _set_dropout(model, False)
        mean_probs /= samples
        mean_entropy /= samples
        mi = (pixel_entropy(mean_probs) - mean_entropy).clamp_min(0)
        if tuple(mi.shape[-2:]) != size:
            mi = nn.functional.interpolate(mi.unsqueeze(1), size=size, mode="bilinear",
                                           align_corners=False).squeeze(1)
        out.append(mi.cpu())
    return torch.cat(out)
