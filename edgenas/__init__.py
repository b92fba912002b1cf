"""edgenas: neural architecture search for lightweight dense-prediction networks.

Importing :mod:`edgenas` is cheap and has no side effects: the torch-based API
(:func:`build_model`, :func:`build_reference`, :func:`naswot_score`, :func:`export_onnx`) is loaded on first use,
so :mod:`edgenas.tui` and :mod:`edgenas.devices` never pull torch in by accident.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "build_model": "edgenas.models.builder",
    "build_reference": "edgenas.models.reference",
    "naswot_score": "edgenas.naswot",
    "export_onnx": "edgenas.export",
    "Genotype": "edgenas.space.genotype",
    "BlockSpec": "edgenas.space.genotype",
    "LDPSpace": "edgenas.space.ldp",
    "decode": "edgenas.space.genotype",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgenas' has no attribute {name!r}")
