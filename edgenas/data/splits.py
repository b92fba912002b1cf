"""Which files belong to which split when a layout has no split folders.

``train`` / ``val`` / ``all``: for a flat folder (T91, Set5, the depth pairs here) a
deterministic hold-out takes every 10th file (by name order) as ``val``, the rest as
``train``; ``all`` takes everything (use it to evaluate on a whole test set like Set5).
"""

from __future__ import annotations

from typing import TypeVar

from edgenas.errors import UserError

T = TypeVar("T")
SPLITS = ("train", "val", "all")
HOLDOUT_EVERY = 10


def holdout(items: list[T], split: str) -> list[T]:
    """Deterministic split of a flat list: every 10th item is validation."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    if split == "all" or len(items) < 2:
        return list(items)
    val = [x for i, x in enumerate(items) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    if not val:
        val = [items[-1]]
    if split == "val":
        return val
    val_ids = {id(x) for x in val}
    return [x for x in items if id(x) not in val_ids]
