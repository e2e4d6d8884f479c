"""Did the labels make the model worse than the one it started from? A paired check with noise.

Every final training ends with its model compared with the model the run started from (θ0),
on the same validation images (D_R). Validation noise is the spread that resampling those
images alone gives the difference: images are drawn with replacement (one draw shared by both
models, so the comparison stays paired), each model's dataset-level mIoU is recomputed on the
draw, and the standard error of the difference is the standard deviation over
:data:`RESAMPLES` draws. A result is ``regressed`` when it is below its start by more than
:data:`NOISE_Z` standard errors (``noise``: about a two-sided 95% band). Both D_R scores are
the best of an early-stopped training, so both are optimistic; the check looks for a drop
larger than what the choice of validation images could explain, not for a significant gain.

:func:`warning` is the one line that says so and names the fix for the recipe that regressed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ralis.config import RunConfig
from ralis.metrics import mean_iou_batched

RESAMPLES = 1000
"""Bootstrap draws of the validation images."""
NOISE_Z = 2.0
"""A drop counts as a regression beyond this many bootstrap standard errors."""


def bootstrap_differences(conf_start: torch.Tensor, conf_final: torch.Tensor,
                          resamples: int = RESAMPLES, seed: int = 0) -> torch.Tensor:
    """mIoU(final) - mIoU(start) on ``resamples`` paired bootstrap draws of the units.

    ``conf_start``, ``conf_final``: ``[n, C, C]`` one confusion matrix per unit (an image, a
    region) -> ``[resamples]``. A draw weights each unit by how often it was drawn (multinomial
    counts), so each resample is one matrix product, not a Python loop.
    """
    n = conf_start.shape[0]
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, n, (resamples, n), generator=generator)
    weights = torch.zeros(resamples, n, dtype=torch.float64).scatter_add_(
        1, draws, torch.ones(resamples, n, dtype=torch.float64))
    start = mean_iou_batched(torch.einsum("bn,ncd->bcd", weights, conf_start.double()))
    final = mean_iou_batched(torch.einsum("bn,ncd->bcd", weights, conf_final.double()))
    return final - start


@dataclass(frozen=True)
class Comparison:
    """A model against its start on the same units (mIoU as fractions)."""

    start_miou: float
    miou: float
    delta: float  # miou - start_miou
    noise: float | None  # NOISE_Z bootstrap standard errors of delta (None: a single unit)
    regressed: bool  # delta < -noise

    def record(self) -> dict:
        return asdict(self)


def compare(conf_start: torch.Tensor, conf_final: torch.Tensor, resamples: int = RESAMPLES,
            seed: int = 0) -> Comparison:
    """Compare two models' per-unit confusions ``[n, C, C]`` (the same units, same order)."""
    start = float(mean_iou_batched(conf_start.sum(0)))
    final = float(mean_iou_batched(conf_final.sum(0)))
    if conf_start.shape[0] < 2:  # one unit: no spread to measure, nothing is called a drop
        return Comparison(start, final, final - start, None, False)
    diffs = bootstrap_differences(conf_start, conf_final, resamples, seed)
    noise = NOISE_Z * float(diffs[torch.isfinite(diffs)].std())
    delta = final - start
    return Comparison(start, final, delta, noise, bool(delta < -noise))


def fix_hint(cfg: RunConfig) -> str:
    """What to change when a final training of ``cfg``'s recipe ends below its start."""
    t = cfg.train
    if t.final_from == "al":
        return ("restart the final training from θ0 on D_T and the acquired regions: --set "
                "train.final_from=start --set train.final_with_start_set=true (the camvid-cpu "
                "recipe)")
    if not t.final_with_start_set:
        return ("train on D_T's labels too: --set train.final_with_start_set=true")
    return (f"the final training cannot hold θ0's level: lower train.final_lr "
            f"({t.final_lr or t.lr:g}) or raise train.final_epochs ({t.final_epochs}), and check "
            "the labels")


def warning(where: str, comparison: Comparison, cfg: RunConfig) -> str:
    """One line: what regressed, by how much against the noise, and the fix."""
    c = comparison
    return (f"regressed: {where} ends at D_R mIoU {100 * c.miou:.1f}%, {-100 * c.delta:.1f} points "
            f"below the start model's {100 * c.start_miou:.1f}% (validation noise "
            f"±{100 * c.noise:.1f}); {fix_hint(cfg)}")
