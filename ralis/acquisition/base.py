"""What a strategy is, what it gets each step, and the registry of strategies.

A strategy picks one region from each of K candidate pools. It declares what it needs
(``needs``); the loop supplies a :class:`StepContext` with lazy, cached access to network outputs
on the candidate images, so strategies never re-run the network and never type-check each other.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ralis.data.pool import RegionPool
from ralis.progress import progress_bar
from ralis.regions import Regions
from ralis.registry import Registry

CHUNK_BATCHES = 16  # inference batches scored per chunk of images


class Timer:
    """Accumulates wall time per phase: ``with timer("forward"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start


@dataclass
class StepContext:
    """Everything a strategy may use at one AL step."""

    model: nn.Module
    images_u8: torch.Tensor  # [P, 3, H, W] images of the region pool
    pool: RegionPool
    regions: Regions  # the pool's regions (rectangles or superpixels)
    generator: torch.Generator
    device: str = "cpu"
    batch_size: int = 16
    mc_samples: int = 20
    timer: Timer = field(default_factory=Timer)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the RALIS agent's inputs

    def image_index(self, pools: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Candidate images of ``pools [K, N]``: ``(images [n], row_of [K, N], local [K, N])``.

        ``row_of`` indexes ``images``; ``local`` is the region's index inside its image.
        """
        per = self.regions.per_image
        images, row_of = torch.unique(pools // per, return_inverse=True)
        return images, row_of, pools % per

    def region_scores(self, images: torch.Tensor, pixel_map: Callable[[torch.Tensor], torch.Tensor],
                      desc: str = "scoring") -> torch.Tensor:
        """Mean of a per-pixel score over every region of ``images [n]``: ``[n, R]`` (0 for ids
        that are not regions).

        ``pixel_map`` turns uint8 images ``[b, 3, H, W]`` into a map ``[b, H, W]``. Images are
        read and scored in chunks of :data:`CHUNK_BATCHES` inference batches (the same batches
        as one call on all of them), so memory does not grow with ``n``; a progress bar shows
        when ``extras["progress"]`` is true and there is more than one chunk.
        """
        chunk = self.batch_size * CHUNK_BATCHES
        starts = range(0, images.numel(), chunk)
        show = bool(self.extras.get("progress")) and len(starts) > 1
        out = []
        for start in progress_bar(starts, desc=desc, unit="chunk", disable=not show, leave=False):
            with self.timer("forward"):
                maps = pixel_map(self.images_u8[images[start:start + chunk]])
            with self.timer("score"):
                out.append(self.regions.region_mean(maps, images[start:start + chunk]))
        return torch.cat(out) if out else torch.zeros(0, self.regions.per_image)


def pick_per_pool(pools: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``pools [K, N]`` region ids, ``scores [K, N]`` -> ``[K]`` the best-scoring id of each pool."""
    return pools.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)


class Strategy(Protocol):
    """One region per pool. ``needs`` names what the loop must provide (e.g. {"policy"})."""

    name: str
    needs: frozenset[str]

    def select(self, pools: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """``pools [K, N]`` unlabelled region ids -> ``[K]`` chosen ids."""
        ...


STRATEGIES: Registry = Registry("strategy")


def create_strategy(name: str, **kwargs: Any) -> Strategy:
    return STRATEGIES.get(name)(**kwargs)
