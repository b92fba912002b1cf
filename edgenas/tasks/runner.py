"""Pieces shared by `edgenas train` and `edgenas eval`: data opening, threads, output."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from edgenas.atomic import write_text_atomic
from edgenas.errors import UserError


def set_threads(threads: int | None, option: str = "--torch-threads") -> int:
    """Use ``threads`` torch intra-op threads (default: at most 2, leaving the rest alone).

    ``option`` is the flag the value came from, named in the error for a bad value.
    """
    import torch

    if threads is None:
        threads = min(2, os.cpu_count() or 1)
    if threads < 1:
        raise UserError(f"{option} must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def parse_size(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """``HxW`` -> (H, W) via the shared parser (:func:`edgenas.parsing.parse_shape`)."""
    from edgenas.parsing import parse_shape

    if text is None:
        return default
    return parse_shape(text, ndim=2)  # type: ignore[return-value]


def open_for_cli(task, data: str | None, split: str, *, fmt, size, scale, train, patch, seed=0):
    """Open a dataset for a command (``edgenas eval``) and check every file of it once
    (:func:`edgenas.data.open.check_files`): bad data is a one-line error, not a
    traceback or a metric that silently skips what it cannot read."""
    from edgenas.data.open import check_files, check_folder

    if data is not None:
        check_folder("--data", data)
    kwargs = dict(fmt=fmt, scale=scale, train=train, patch=patch, seed=seed)
    if task.name != "sr":
        kwargs["size"] = size
    dataset = task.dataset(data, split, **kwargs)
    check_files(dataset)
    return dataset


def json_text(obj) -> str:
    """The JSON text `write_json` writes (NaN written as null), for standard output."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(obj), indent=2, sort_keys=True) + "\n"


def write_json(obj, path: str | Path) -> None:
    """Write JSON atomically (NaN written as null)."""
    write_text_atomic(path, json_text(obj))


def format_metrics(metrics: dict) -> str:
    """``miou 0.4123  pixel_acc 0.8123`` (PSNR in dB with 2 decimals)."""
    parts = []
    for name, value in metrics.items():
        digits = 2 if name in ("psnr", "rmse") else 4
        parts.append(f"{name} {value:.{digits}f}")
    return "  ".join(parts)
