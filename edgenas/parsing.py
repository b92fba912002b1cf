"""Parsers for the short text forms users write: shapes, genotypes, tasks, lists.

They turn bad text into a one-line :class:`~edgenas.errors.UserError` that names the
problem. The command line uses them for its arguments, and library code that reads
user-written files (bench specs, task runners) uses the same ones, so both sides accept
exactly the same spellings. This module sits below :mod:`edgenas.cli`: it imports only
the standard library and :mod:`edgenas.errors` at import time (the genotype grammar and
the task names load on first use).
"""

from __future__ import annotations

import argparse
import math
import os
import re

from edgenas.errors import UserError

__all__ = [
    "SEED_MAX",
    "check_accelerator_name",
    "check_input_fits",
    "number",
    "parse_genotype",
    "parse_input_shape",
    "parse_list",
    "parse_shape",
    "parse_task",
    "scale_number",
    "scales_text",
    "seed_number",
]


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
    from edgenas.task_names import canonical_task  # torch-free (builder re-exports it)

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


def number(
    kind: type = float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    choices_text: str | None = None,
):
    """An argparse ``type=`` that accepts only finite numbers in a range.

    ``minimum``/``maximum`` are inclusive bounds, ``above`` an exclusive lower bound
    (``above=0``: positive). A bad value becomes argparse's one-line error naming the
    option, e.g. ``argument --lr: must be a positive number, got 'nan'``, before any
    work starts.
    """
    if choices_text is None:
        if above == 0:
            choices_text = "a positive " + ("integer" if kind is int else "number")
        elif minimum == 0 and maximum is None:
            choices_text = "zero or more"
        else:
            low = (
                f"> {above:g}"
                if above is not None
                else (f">= {minimum:g}" if minimum is not None else "")
            )
            high = f"<= {maximum:g}" if maximum is not None else ""
            choices_text = "a number " + " and ".join(t for t in (low, high) if t)

    def convert(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        bad = (
            (kind is float and not math.isfinite(value))
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
            or (above is not None and value <= above)
        )
        if bad:
            raise argparse.ArgumentTypeError(f"must be {choices_text}, got {text!r}")
        return value

    convert.__name__ = "integer" if kind is int else "number"  # argparse names it on errors
    return convert


# What one input pixel costs at the least while a network runs on it: a float32 feature
# map of 64 channels at full resolution (the widest the spaces build). A lower bound, not
# an estimate: the check only has to catch sizes that cannot run at all (99999x99999),
# never a large but workable one (a batch of full-resolution Cityscapes frames).
BYTES_PER_PIXEL = 4 * 64


def physical_memory_bytes() -> int | None:
    """This machine's physical memory (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_input_fits(shape, option: str, *, bytes_per_pixel: int = BYTES_PER_PIXEL) -> None:
    """Refuse an input size whose feature maps cannot fit in this machine's memory.

    ``shape`` is HxW or NCHW (the last two are height and width, a leading batch
    multiplies). The bound is a floor (:data:`BYTES_PER_PIXEL`): it catches
    ``--input 99999x99999`` before a folder is created, not a network that is merely
    large.
    """
    dims = [int(d) for d in shape]
    batch = dims[0] if len(dims) == 4 else 1
    pixels = batch * dims[-2] * dims[-1]
    memory = physical_memory_bytes()
    if memory is None:
        return
    needed = pixels * bytes_per_pixel
    if needed > memory:
        size = "x".join(str(d) for d in dims)
        raise UserError(
            f"{option} {size} needs at least {needed / 2**30:.0f} GiB for one feature map, "
            f"more than this machine's {memory / 2**30:.0f} GiB of memory; use a smaller size"
        )


_ACCELERATOR = re.compile(r"(auto|cpu|cuda(:\d+)?)")


def check_accelerator_name(name: str | None, option: str = "--accelerator") -> None:
    """Refuse an accelerator name that is none of auto, cpu, cuda, cuda:N (torch is not
    needed to tell; whether a GPU is there is checked once torch is loaded)."""
    if name is not None and not _ACCELERATOR.fullmatch(name.lower()):
        raise UserError(
            f"{option}: unknown accelerator {name!r} (choose from auto, cpu, cuda or cuda:N)"
        )


# Seeds are 32-bit like every other framework's: torch and the loaders take them whole.
SEED_MAX = 2**32 - 1


def seed_number():
    """argparse type of a ``--seed``: an integer from 0 to :data:`SEED_MAX`."""
    return number(int, minimum=0, maximum=SEED_MAX, choices_text=f"an integer from 0 to {SEED_MAX}")


def scales_text() -> str:
    """The super-resolution factors in words, e.g. ``2, 3 or 4``."""
    from edgenas.task_names import SR_SCALES

    return ", ".join(map(str, SR_SCALES[:-1])) + f" or {SR_SCALES[-1]}"


def scale_number():
    """argparse type of a super-resolution ``--scale``: one of the factors the heads
    build (:data:`edgenas.task_names.SR_SCALES`, consecutive, so a range check is a
    membership check)."""
    from edgenas.task_names import SR_SCALES

    return number(int, minimum=min(SR_SCALES), maximum=max(SR_SCALES), choices_text=scales_text())
