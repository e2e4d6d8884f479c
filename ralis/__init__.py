"""ralis: region-based active learning for semantic segmentation (RALIS, Casanova et al. 2020)."""

import os

# PyTorch's OpenMP threads spin while they wait; on a small, shared machine (2 cores, another
# process busy) that makes every op 20-50x slower. Passive waiting costs almost nothing when the
# machine is idle. Set before torch is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ralis.provenance import __version__  # noqa: E402

__all__ = ["__version__"]
