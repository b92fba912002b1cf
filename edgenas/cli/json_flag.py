"""``--json`` for commands that print their JSON on standard output.

``eval``, ``profile`` and ``bench`` take ``--json FILE`` with ``-`` for standard
output; the commands that only print JSON take a plain ``--json`` flag and accept
``--json -`` as the same thing, so one spelling works everywhere. The flag takes no
value, so ``edgenas devices show --json cpu`` still reads ``cpu`` as the device:
:class:`edgenas.cli.common.EdgenasArgumentParser` drops a ``-`` that follows it.
"""

from __future__ import annotations

import argparse


def add_json_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """Add the ``--json`` flag (``args.json`` True): JSON on standard output."""
    parser.add_argument(
        "--json", action="store_true", help=f"{help} (on standard output; --json - says the same)"
    )
    parser.json_flag = True  # read by EdgenasArgumentParser.parse_known_args
