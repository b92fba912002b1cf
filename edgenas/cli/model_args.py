"""Command-line options that describe a network: genotype (or reference model), task and
head options."""

from __future__ import annotations

import argparse

from edgenas.cli.common import parse_genotype, parse_task
from edgenas.errors import UserError
from edgenas.network_memory import check_genotype_fits
from edgenas.parsing import number, scale_number

# More classes than ImageNet's 1000 make the segmentation output alone (classes x
# pixels floats) larger than any network of the space; nothing edgenas trains has them.
MAX_CLASSES = 1000


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    genotype_required: bool = True,
    reference_models: bool = False,
) -> None:
    """Add ``--genotype``, ``--task`` and the task options to a subcommand.

    With ``reference_models``, ``--model NAME`` (a reference model, see ``edgenas
    models``) is offered as the alternative to ``--genotype``; exactly one of them is
    required when ``genotype_required`` (checked by :func:`model_from_args`, so the
    error is one line naming both). ``--task`` then defaults to the model's task.
    """
    if not reference_models:
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
    else:
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--genotype",
            metavar="STR",
            help="genotype string (from `edgenas space sample`)",
        )
        which.add_argument(
            "--model",
            metavar="NAME",
            help="a reference model instead of a genotype (list them: `edgenas models`)",
        )
        parser.add_argument(
            "--task",
            default=None,
            help="depth, segmentation (seg), sr (super-resolution) or classification (cls); "
            "default: depth for --genotype, the model's own task for --model",
        )
    parser.add_argument(
        "--num-classes",
        type=classes_number(),
        default=None,
        help="classes (segmentation: 11, classification: 10)",
    )
    parser.add_argument(
        "--scale",
        type=scale_number(),
        default=None,
        help="super-resolution factor: 2, 3 or 4",
    )
    parser.add_argument(
        "--upsampler",
        choices=("pixelshuffle", "deconv"),
        default=None,
        help="super-resolution upsampler (default pixelshuffle)",
    )


def classes_number():
    """argparse type of a ``--num-classes``: a whole number from 2 to :data:`MAX_CLASSES`."""
    return number(
        int, minimum=2, maximum=MAX_CLASSES, choices_text=f"a whole number from 2 to {MAX_CLASSES}"
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


def model_from_args(
    args: argparse.Namespace,
    genotype_text: str | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    option: str = "--input",
    checked: bool = False,
):
    """Build the model the options describe; bad values become one-line UserErrors.

    ``--model NAME`` (where the command offers it) builds that reference model with the
    head options given; otherwise ``--genotype`` (or ``genotype_text``) is built. A
    genotype whose weights cannot fit in memory is refused before anything is
    allocated, and with ``input_shape`` (NCHW, given as ``option``) so is an input whose
    activations cannot (see :func:`check_genotype_fits`); ``checked``: the caller has
    done that check already.
    """
    reference = getattr(args, "model", None)
    if reference is not None:
        if input_shape is not None and not checked:
            check_genotype_fits(None, input_shape, option=option)
        return _reference_from_args(args, reference)
    text = genotype_text if genotype_text is not None else args.genotype
    if text is None:
        flags = "--genotype or --model" if hasattr(args, "model") else "--genotype"
        raise UserError(f"give the network to use: {flags}")
    genotype = parse_genotype(text)
    task = parse_task(args.task if args.task is not None else "depth")
    options = task_options(args, task)
    if not checked:
        check_genotype_fits(
            genotype, input_shape, option=option, classes=options.get("num_classes")
        )
    from edgenas.models.builder import build_model  # torch: only once the checks passed

    try:
        return build_model(genotype, task, **options)
    except ValueError as err:
        raise UserError(str(err)) from None


def _reference_from_args(args: argparse.Namespace, name: str):
    from edgenas.models.reference import REFERENCE_MODELS, build_reference

    entry = REFERENCE_MODELS.get(name)
    if entry is None:
        raise UserError(
            f"unknown reference model {name!r} (known: {', '.join(REFERENCE_MODELS)}; "
            "see `edgenas models`)"
        )
    task = entry.task
    if args.task is not None and parse_task(args.task) != task:
        raise UserError(
            f"--model {name} is a {task} model; --task {args.task} disagrees (drop --task)"
        )
    options = task_options(args, task)
    unknown = [key for key in options if key not in entry.defaults]
    if unknown:
        flags = ", ".join("--" + key.replace("_", "-") for key in unknown)
        raise UserError(f"{flags} does not apply to reference model {name!r}")
    try:
        return build_reference(name, **options)
    except ValueError as err:
        raise UserError(str(err)) from None
