"""The ``edgenas`` command line.

Each subcommand lives in its own module under :mod:`edgenas.cli` and exposes
``register(subparsers)``; the module's parser sets ``func`` to the function that runs
it. Heavy imports (torch, onnx, ...) happen inside those functions so that
``edgenas --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

from edgenas.cli.common import EdgenasArgumentParser, HelpFormatter, run_command

# Order here is the order in `edgenas --help`.
COMMAND_MODULES = [
    "edgenas.cli.search_cmd",
    "edgenas.cli.space_cmd",
    "edgenas.cli.profile_cmd",
    "edgenas.cli.predict_cmd",
    "edgenas.cli.devices_cmd",
    "edgenas.cli.score_cmd",
    "edgenas.cli.export_cmd",
    "edgenas.cli.train_cmd",
    "edgenas.cli.eval_cmd",
    "edgenas.cli.models_cmd",
    "edgenas.cli.shrink_cmd",
    "edgenas.cli.bench_cmd",
    "edgenas.cli.monitor_cmd",
]

DESCRIPTION = """\
edgenas finds and deploys lightweight dense-prediction networks (monocular depth,
semantic segmentation, super-resolution) for edge devices.

A genotype is a compact string that describes one network of the LDP search space;
every command that takes --genotype accepts the strings printed by `edgenas space sample`.
"""

EPILOG = """\
examples:
  edgenas search                               a small complete search on built-in data
  edgenas monitor runs/NAME                    watch a search live
  edgenas space sample --n 5 --seed 0          five random genotypes, one per line
  edgenas space describe "$(edgenas space sample --n 1)"
  edgenas score --genotype STR --task depth    training-free NASWOT score
  edgenas export --genotype STR --task depth --input 1x3x240x320 -o model.onnx
  edgenas models --task sr                     reference networks (ESPCN, ...) to compare with

Run `edgenas COMMAND --help` for the options of each command.
"""


def build_parser() -> EdgenasArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    from edgenas import __version__

    parser = EdgenasArgumentParser(
        prog="edgenas", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"edgenas {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgenas`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
