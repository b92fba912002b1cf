"""Parsers for the short text forms users write: shapes, genotypes, tasks, lists.

They turn bad text into a one-line :class:`~edgenas.errors.UserError` that names the
problem. The command line uses them for its arguments, and library code that reads
user-written files (bench specs, task runners) uses the same ones, so both sides accept
exactly the same spellings. This module sits below :mod:`edgenas.cli`: it imports only
the standard library and :mod:`edgenas.errors` at import time (the genotype grammar and
the task names load on first use).
"""

from __future__ import annotations

from edgenas.errors import UserError

__all__ = ["parse_genotype", "parse_input_shape", "parse_list", "parse_shape", "parse_task"]


def parse_shape(text: str, *, ndim: int | None = None) -> tuple[int, ...]:
    """Parse ``1x3x240x320`` (or ``240x320``) into a tuple of positive ints.

    Raises UserError naming the bad text when a part is not a positive integer or the
    number of dimensions differs from ``ndim``.
    """
    parts = text.lower().replace("*", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(f"bad shape {text!r}: write it as e.g. 1x3x240x320") from None
    if any(d <= 0 for d in dims):
        raise UserError(f"bad shape {text!r}: every dimension must be a positive integer")
    if ndim is not None and len(dims) != ndim:
        raise UserError(f"bad shape {text!r}: expected {ndim} dimensions")
    return dims


def parse_input_shape(text: str, *, channels: int = 3, batch: int = 1) -> tuple[int, int, int, int]:
    """Accept ``HxW``, ``CxHxW`` or ``NxCxHxW`` and return a full NCHW shape."""
    dims = parse_shape(text)
    if len(dims) == 2:
        return (batch, channels, *dims)  # type: ignore[return-value]
    if len(dims) == 3:
        return (batch, *dims)  # type: ignore[return-value]
    if len(dims) == 4:
        return dims  # type: ignore[return-value]
    raise UserError(f"bad input shape {text!r}: use HxW, CxHxW or NxCxHxW, e.g. 1x3x240x320")


def parse_genotype(text: str):
    """Decode a genotype string; a bad string becomes a one-line UserError."""
    from edgenas.space.genotype import decode

    try:
        return decode(text.strip())
    except ValueError as err:
        message = str(err)
        raise UserError(
            message if message.startswith("bad ") else f"bad genotype: {message}"
        ) from None


def parse_task(text: str) -> str:
    """Canonical task name; an unknown task becomes a one-line UserError."""
    from edgenas.models.builder import canonical_task

    try:
        return canonical_task(text)
    except ValueError as err:
        raise UserError(str(err)) from None


def parse_list(text: str, option: str, kind: type = int) -> tuple:
    """``"2,3"`` -> ``(2, 3)`` (``kind`` int or float); a bad item is a UserError naming ``option``."""
    try:
        return tuple(kind(part) for part in text.split(","))
    except ValueError:
        example = "2,3" if kind is int else "0.4,0.5,0.6"
        what = "integers" if kind is int else "numbers"
        raise UserError(
            f"bad {option} {text!r}: write comma-separated {what}, e.g. {example}"
        ) from None
