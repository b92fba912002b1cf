"""``--json`` for commands that print their JSON on standard output.

``eval``, ``profile`` and ``bench`` take ``--json FILE`` with ``-`` for standard
output; the commands that only print JSON accept the same ``--json -`` (and a bare
``--json``), so one spelling works everywhere instead of ``-`` being refused as an
unrecognised argument.
"""

from __future__ import annotations

import argparse


def _stdout_only(value: str) -> str:
    """argparse type: only ``-`` (standard output) is a valid --json value here."""
    if value != "-":
        raise argparse.ArgumentTypeError(
            f"this command prints its JSON on standard output ('-' or nothing), got {value!r}; "
            f"redirect it to a file with > {value}"
        )
    return value


def add_json_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """Add ``--json [-]``: print JSON on standard output (``args.json`` is then ``"-"``)."""
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        type=_stdout_only,
        metavar="-",
        help=f"{help} (on standard output; '-' says the same)",
    )
