"""Datasets of the tasks in their standard layouts, plus built-in demo data.

The names below load on first use (PEP 562), so that importing a light submodule such
as :mod:`edgenas.data.open` (the ``--format`` choices of the command line) does not
load numpy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DatasetInfo": "edgenas.data.base",
    "FORMATS": "edgenas.data.open",
    "detect_format": "edgenas.data.open",
    "open_dataset": "edgenas.data.open",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
