"""``edgenas score``: the training-free NASWOT score of genotypes."""

from __future__ import annotations

import argparse
import json
import sys

from edgenas.cli.common import add_command, parse_genotype, parse_shape, parse_task
from edgenas.cli.json_flag import add_json_flag
from edgenas.cli.model_args import add_model_arguments, model_from_args, task_options
from edgenas.errors import UserError
from edgenas.network_memory import check_genotype_fits
from edgenas.parsing import number, seed_number

# The largest seed torch.manual_seed and numpy accept alike.
# K_H is batch x batch float64 (a few copies alive while it is summed): 4096 takes
# 128 MiB a copy; NASWOT uses 32-128. A larger batch is a typo that would exhaust memory.
MAX_BATCH = 4096


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "score",
        help="training-free NASWOT score (log|K_H|) of one or more genotypes",
        description=(
            "Score genotypes with NASWOT (Mellor et al., 2021): the log-determinant of the\n"
            "Hamming kernel of the binary ReLU codes of one batch, network in train mode\n"
            "with fresh weights. Higher is better. The batch is standard-normal noise from\n"
            "--seed, the same for every genotype, so scores of one call are comparable.\n"
            "Output is sorted by score, best (highest) first: one line per genotype\n"
            "(score, parameters, genotype), or with --json a list of objects in that order."
        ),
        epilog=(
            "examples:\n"
            '  edgenas score --genotype "$(edgenas space sample --n 1)" --task depth\n'
            "  edgenas space sample --n 20 --seed 1 | edgenas score --genotype - --json\n"
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("--input", default="64x64", help="image size HxW of the scoring batch")
    parser.add_argument(
        "--batch",
        type=number(
            int,
            minimum=2,
            maximum=MAX_BATCH,
            choices_text=f"2 to {MAX_BATCH} (K_H is batch x batch)",
        ),
        default=32,
        help="batch size (K_H is batch x batch)",
    )
    parser.add_argument(
        "--seed",
        type=seed_number(),
        default=0,
        help="seed of the batch and of the weights",
    )
    add_json_flag(parser, "print JSON only")
    parser.set_defaults(func=run)


def _genotype_texts(value: str) -> list[str]:
    """The genotype strings to score: ``value``, or with ``-`` one per line of stdin.

    Every one is parsed here, so a bad line is refused (naming its line number) before
    any network is scored.
    """
    if value != "-":
        parse_genotype(value)
        return [value]
    try:
        lines = sys.stdin.read().splitlines()
    except UnicodeDecodeError:
        raise UserError("--genotype - read bytes that are not text from standard input") from None
    texts = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parse_genotype(line)
        except UserError as err:
            raise UserError(f"standard input line {line_no}: {err}") from None
        texts.append(line.strip())
    if not texts:
        raise UserError("--genotype - read no genotype from standard input")
    return texts


def run(args: argparse.Namespace) -> None:
    height, width = parse_shape(args.input, ndim=2)
    shape = (args.batch, 3, height, width)
    task_options(args, parse_task(args.task))  # a stray --scale etc. before any work
    texts = _genotype_texts(args.genotype)
    # Every network's weights and activations at the batch's size are checked before
    # anything is allocated or printed.
    classes = getattr(args, "num_classes", None)
    for text in texts:
        check_genotype_fits(parse_genotype(text), shape, option="--input", classes=classes)

    import torch

    from edgenas.models.complexity import count_params
    from edgenas.naswot import fixed_batch, naswot_score

    images = fixed_batch(shape, args.seed)
    results = []
    for text in texts:
        torch.manual_seed(args.seed)  # the same initial weights for the same genotype
        model = model_from_args(args, text, checked=True)
        score = naswot_score(model, images)
        results.append(
            {"genotype": model.genotype.encode(), "score": score, "params": count_params(model)}
        )
    # Best first; sorted() is stable, so equal scores keep their input order.
    results = sorted(results, key=lambda r: -r["score"])
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return
    for result in results:
        print(f"{result['score']:10.3f}  {result['params']:>9,} params  {result['genotype']}")
