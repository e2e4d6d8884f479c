"""Run set-up shared by every command: seeds, threads, device.

Run directories are opened by :func:`ralis.run.rundir.open_run`."""

from __future__ import annotations

import hashlib

import torch

from ralis.config import RunConfig
from ralis.errors import ConfigError


def step_seed(seed: int, step: int, stream: str) -> int:
    """A 63-bit seed for one (run seed, step, purpose): independent streams, stable across runs."""
    digest = hashlib.sha256(f"{seed}:{step}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def set_threads(cfg: RunConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
    if device not in ("cpu",) and not device.startswith(("cuda", "mps")):
        raise ConfigError(f"unknown device {device!r}; use cpu or cuda[:N]")
