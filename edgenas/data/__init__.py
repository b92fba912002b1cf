"""Datasets of the tasks in their standard layouts, plus built-in demo data."""

from edgenas.data.base import DatasetInfo
from edgenas.data.open import FORMATS, detect_format, open_dataset

__all__ = ["FORMATS", "DatasetInfo", "detect_format", "open_dataset"]
