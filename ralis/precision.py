"""Mixed precision: bf16 autocast for training and inference (``--set train.amp=true``)."""

from __future__ import annotations

import torch


def autocast(device: str, enabled: bool):
    """``torch.autocast`` in bfloat16 on ``device``'s type when ``enabled`` (a no-op context
    otherwise). bf16 keeps float32's range, so no loss scaling is needed; losses, softmax and
    entropies are computed in float32 (autocast's float32 list, or explicit ``.float()``)."""
    kind = str(device).split(":")[0]
    if kind not in ("cuda", "cpu", "mps", "xpu"):
        kind = "cpu"
    return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=bool(enabled))
