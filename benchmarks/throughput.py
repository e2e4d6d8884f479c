"""Images per second of the segmentation network on the device it runs on: training (SGD steps on
crops) and inference (full images), in float32 and with bf16 mixed precision (train.amp).

    python benchmarks/throughput.py                          # camvid-cpu's network, CPU
    python benchmarks/throughput.py --preset camvid-paper --device cuda

Random inputs of the preset's sizes (no dataset needed). Results (command, config, torch and
device, git revision) go to benchmarks/results/throughput-<preset>-<device>.json; the last line
is ``throughput: train <a> img/s (amp <b>), inference <c> img/s (amp <d>)``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from ralis.config import apply_overrides, get_preset, to_dict
from ralis.precision import autocast
from ralis.provenance import git_revision
from ralis.training.supervised import build_model
from ralis.training.train import make_optimizer


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="camvid-cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    cfg = apply_overrides(get_preset(args.preset), [f"device={args.device}", *args.sets])
    dev, t = args.device, cfg.train
    H, W = cfg.data.resolution or (360, 480)
    model = build_model(cfg, 11).to(dev)
    opt = make_optimizer(model, t.lr, t)
    crops = torch.randn(t.batch_size, 3, *t.crop_size, device=dev)
    target = torch.randint(0, 11, (t.batch_size, *t.crop_size), device=dev)
    images = torch.randn(t.eval_batch_size, 3, H, W, device=dev)
    rows = {}
    for amp in (False, True):
        def train_step(amp=amp):
            model.train()
            with autocast(dev, amp):
                logits = model(crops)
            loss = nn.functional.cross_entropy(logits.float(), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        @torch.no_grad()
        def infer(amp=amp):
            model.eval()
            with autocast(dev, amp):
                model(images).float().softmax(1)

        tr = timed(train_step, dev, 1, args.reps)
        inf = timed(infer, dev, 1, args.reps)
        rows["amp" if amp else "fp32"] = {
            "train_img_s": round(t.batch_size / tr, 2), "infer_img_s": round(
                t.eval_batch_size / inf, 2)}
        print(f"{'bf16 amp' if amp else 'float32 '}: train {rows['amp' if amp else 'fp32']['train_img_s']} "
              f"crops/s ({t.batch_size} x {t.crop_size[0]}x{t.crop_size[1]}), inference "
              f"{rows['amp' if amp else 'fp32']['infer_img_s']} img/s ({H}x{W})", flush=True)
    device_name = (torch.cuda.get_device_name(dev) if dev.startswith("cuda")
                   else platform.processor() or platform.machine())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"throughput-{cfg.preset}-{dev.replace(':', '')}.json"
    path.write_text(json.dumps({
        "command": f"python benchmarks/throughput.py --preset {args.preset} --device {dev}",
        "git_revision": git_revision(), "torch": torch.__version__, "device": device_name,
        "threads": torch.get_num_threads(), "model": cfg.model.name, "config": to_dict(cfg),
        "results": rows}, indent=2) + "\n")
    f, a = rows["fp32"], rows["amp"]
    print(f"throughput: train {f['train_img_s']} img/s (amp {a['train_img_s']}), inference "
          f"{f['infer_img_s']} img/s (amp {a['infer_img_s']})")


if __name__ == "__main__":
    main()
