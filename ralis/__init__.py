"""ralis: region-based active learning for semantic segmentation (RALIS, Casanova et al. 2020)."""

__version__ = "0.1.0"
