"""Annotation formats (see :mod:`ralis.labelling.formats.base`); importing this package
registers every format."""

from ralis.labelling.formats import coco, cvat, labelstudio, png  # noqa: F401  (registration)
from ralis.labelling.formats.base import (
    FORMATS,
    Canvas,
    ExportContext,
    Format,
    ImageAnswer,
    ImageInfo,
    ImageLabels,
    ImportContext,
    LabelFileError,
    RequestBox,
    get_format,
)

__all__ = ["FORMATS", "Canvas", "ExportContext", "Format", "ImageAnswer", "ImageInfo",
           "ImageLabels", "ImportContext", "LabelFileError", "RequestBox", "get_format"]
