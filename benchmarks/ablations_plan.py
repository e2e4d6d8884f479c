"""The plan of ``benchmarks/ablations.py``: its agents and AL cells (what runs where), shared by
the script that runs it and by ``ablations_summary.py``, which reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ralis.config import RunConfig
from ralis.data.protocol import Protocol

__all__ = ["Agent", "Cell", "Plan"]

@dataclass
class Agent:
    """One agent of the features study."""

    variant: str
    cfg: RunConfig
    out: Path

    @property
    def policy(self) -> Path:
        return self.out / "policy.safetensors"


@dataclass
class Cell:
    """One AL run of one study: a strategy on one seed, in one setting."""

    study: str
    variant: str  # the ``variant`` column
    label: tuple[str, ...]  # the row label in the study's Markdown table
    strategy: str
    seed: int
    cfg: RunConfig
    run_dir: Path
    unit: str = "region"
    regions_per_unit: int = 1  # regions of the preset's grid one labelled unit stands for
    policy: Path | None = None
    shared: bool = False  # run_dir is another study's identical cell


@dataclass
class Plan:
    cfg: RunConfig
    out: Path
    studies: list[str]
    seeds: list[int]
    strategy: str
    policy: Path | None
    k_values: tuple[int, ...]
    proto: Protocol
    agents: list[Agent] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    @property
    def regions_per_image(self) -> int:
        return self.proto.grid.per_image

    def pixel_fraction(self, regions: int) -> float:
        H, W = self.proto.grid.image_size
        return regions * self.proto.grid.region_pixels / (len(self.proto.pool) * H * W)
