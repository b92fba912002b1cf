"""Dense-prediction tasks: registry, datasets, losses, metrics (see :mod:`.registry`).

The registry (which needs torch) loads on first use (PEP 562), so that the command
line can read :mod:`edgenas.tasks.defaults` while it builds its parser without
loading torch.
"""

from __future__ import annotations

import importlib

__all__ = ["TASKS", "Task", "get_task"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("edgenas.tasks.registry"), name)
