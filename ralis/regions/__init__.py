"""Region kinds behind one interface (:class:`~ralis.regions.base.Regions`): the paper's
rectangle grid and SLIC superpixels."""

from ralis.regions.base import REGION_KINDS, Regions, image_of
from ralis.regions.rect import RegionGrid, scaled_region_size
from ralis.regions.superpixels import SuperpixelRegions, superpixel_labels

__all__ = ["REGION_KINDS", "Regions", "RegionGrid", "SuperpixelRegions", "image_of",
           "scaled_region_size", "superpixel_labels"]
