"""Expected values of the EfficientNet-Lite0 known-answer test, computed independently.

Runs the packaged ImageNet weights through an independent implementation (the package
``efficientnet-lite-pytorch==0.1.0``, EfficientNet-PyTorch with the Lite variants; not a ralis
dependency) on the fixed synthetic image of ``tests/models/test_effl0.py`` and prints the
values that test stores: the top-5 ImageNet logits and the mean / std of the encoder's four
taps (blocks 2, 4, 10, 15). Rerun after changing the test image:

    pip download --no-deps efficientnet-lite-pytorch==0.1.0 -d /tmp/ref
    (cd /tmp/ref && unzip -o efficientnet_lite_pytorch-0.1.0-py3-none-any.whl)
    PYTHONPATH=/tmp/ref .venv/bin/python benchmarks/effl0_reference.py
"""

from __future__ import annotations

import json

import torch
from efficientnet_lite_pytorch import EfficientNet  # the independent implementation

from ralis.models.efficientnet_lite import TAPS
from ralis.models.pretrained import EFFICIENTNET_LITE0, _installed_file


def synthetic_image(h: int = 224, w: int = 224) -> torch.Tensor:
    """The test's fixed uint8 image ``[3, h, w]`` (three integer ramps)."""
    i, j = torch.arange(h).view(h, 1), torch.arange(w).view(1, w)
    return torch.stack([(i * 3 + j * 5) % 256, (i * j // 7 + 40) % 256,
                        (255 - 2 * i + j) % 256]).to(torch.uint8)


def main() -> None:
    torch.set_num_threads(1)
    state = torch.load(_installed_file(EFFICIENTNET_LITE0), map_location="cpu",
                       weights_only=True)
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(state, strict=True)
    net.eval()
    taps: dict[int, torch.Tensor] = {}
    for i in TAPS:
        net._blocks[i].register_forward_hook(lambda m, a, out, i=i: taps.__setitem__(i, out))
    x = (synthetic_image()[None].float() - 127.0) / 128.0  # the original's input scaling
    with torch.no_grad():
        logits = net(x)[0]
    top = logits.topk(5)
    print(json.dumps({
        "top5_classes": top.indices.tolist(),
        "top5_logits": [round(v, 5) for v in top.values.tolist()],
        "tap_mean_std": [[round(taps[i].mean().item(), 5), round(taps[i].std().item(), 5)]
                         for i in TAPS],
    }))


if __name__ == "__main__":
    main()
