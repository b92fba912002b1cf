"""The task names and their aliases, without torch (reports and configs need them too)."""

from __future__ import annotations

TASK_NAMES = ("depth", "segmentation", "sr", "classification")
# Upsampling factors the super-resolution heads and reference models build.
SR_SCALES = (2, 3, 4)
TASK_ALIASES = {
    "seg": "segmentation",
    "super-resolution": "sr",
    "super_resolution": "sr",
    "cls": "classification",
}


def canonical_task(task: str) -> str:
    """Resolve aliases (``seg``, ``super-resolution``, ``cls``); ValueError if unknown."""
    name = TASK_ALIASES.get(task, task)
    if name not in TASK_NAMES:
        known = ", ".join([*TASK_NAMES, *TASK_ALIASES])
        raise ValueError(f"unknown task {task!r} (choose from {known})")
    return name
