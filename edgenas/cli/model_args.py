"""Command-line options that describe a network: genotype, task and head options."""

from __future__ import annotations

import argparse

from edgenas.cli.common import parse_genotype, parse_task
from edgenas.errors import UserError


def add_model_arguments(parser: argparse.ArgumentParser, *, genotype_required: bool = True) -> None:
    """Add ``--genotype``, ``--task`` and the task options to a subcommand."""
    parser.add_argument(
        "--genotype",
        required=genotype_required,
        metavar="STR",
        help="genotype string (from `edgenas space sample`)",
    )
    parser.add_argument(
        "--task",
        default="depth",
        help="depth, segmentation (seg), sr (super-resolution) or classification (cls)",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes (segmentation: 11, classification: 10)",
    )
    parser.add_argument(
        "--scale", type=int, default=None, help="super-resolution factor: 2, 3 or 4"
    )
    parser.add_argument(
        "--upsampler",
        choices=("pixelshuffle", "deconv"),
        default=None,
        help="super-resolution upsampler (default pixelshuffle)",
    )


def task_options(args: argparse.Namespace, task: str) -> dict:
    """The head options given on the command line that apply to ``task``."""
    given = {
        "num_classes": args.num_classes,
        "scale": args.scale,
        "upsampler": args.upsampler,
    }
    accepted = {
        "segmentation": {"num_classes"},
        "classification": {"num_classes"},
        "sr": {"scale", "upsampler"},
        "depth": set(),
    }[task]
    stray = [name for name, value in given.items() if value is not None and name not in accepted]
    if stray:
        flags = ", ".join("--" + name.replace("_", "-") for name in stray)
        raise UserError(f"{flags} does not apply to task {task!r}")
    return {name: value for name, value in given.items() if value is not None}


def model_from_args(args: argparse.Namespace, genotype_text: str | None = None):
    """Build the model the options describe; bad values become one-line UserErrors."""
    from edgenas.models.builder import build_model

    genotype = parse_genotype(genotype_text if genotype_text is not None else args.genotype)
    task = parse_task(args.task)
    try:
        return build_model(genotype, task, **task_options(args, task))
    except ValueError as err:
        raise UserError(str(err)) from None
