"""Shared pieces of the command line: parser class, error handling, argument parsers."""

from __future__ import annotations

import argparse
import sys

from edgenas.errors import UserError


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep hand-written line breaks in descriptions and show defaults."""


class EdgenasArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def add_command(subparsers, name: str, help: str, description: str, epilog: str | None = None):
    """Add a subcommand parser that uses the edgenas parser class and formatter."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.func(args)``; report :class:`UserError` as one line with exit code 2."""
    try:
        result = args.func(args)
    except UserError as err:
        sys.stderr.write(f"edgenas: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("edgenas: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`edgenas ... | head`); not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0 if result is None else int(result)


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
    """Decode a genotype string for the CLI; a bad string becomes a one-line UserError."""
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
