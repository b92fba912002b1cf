"""``edgenas score``: the training-free NASWOT score of genotypes."""

from __future__ import annotations

import argparse
import json
import sys

from edgenas.cli.common import add_command, parse_shape
from edgenas.cli.model_args import add_model_arguments, model_from_args
from edgenas.errors import UserError


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "score",
        help="training-free NASWOT score (log|K_H|) of one or more genotypes",
        description=(
            "Score genotypes with NASWOT (Mellor et al., 2021): the log-determinant of the\n"
            "Hamming kernel of the binary ReLU codes of one batch, network in train mode\n"
            "with fresh weights. Higher is better. The batch is standard-normal noise from\n"
            "--seed, the same for every genotype, so scores of one call are comparable."
        ),
        epilog=(
            "examples:\n"
            '  edgenas score --genotype "$(edgenas space sample --n 1)" --task depth\n'
            "  edgenas space sample --n 20 --seed 1 | edgenas score --genotype - --json\n"
        ),
    )
    add_model_arguments(parser)
    parser.set_defaults()
    parser.add_argument("--input", default="64x64", help="image size HxW of the scoring batch")
    parser.add_argument("--batch", type=int, default=32, help="batch size (K_H is batch x batch)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch and of the weights")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.set_defaults(func=run)


def _genotype_texts(value: str) -> list[str]:
    if value != "-":
        return [value]
    texts = [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        raise UserError("--genotype - read no genotype from standard input")
    return texts


def run(args: argparse.Namespace) -> None:
    import torch

    from edgenas.models.complexity import count_params
    from edgenas.naswot import fixed_batch, naswot_score

    height, width = parse_shape(args.input, ndim=2)
    if args.batch < 2:
        raise UserError(f"--batch must be at least 2 (K_H is batch x batch), got {args.batch}")
    images = fixed_batch((args.batch, 3, height, width), args.seed)
    results = []
    for text in _genotype_texts(args.genotype):
        torch.manual_seed(args.seed)  # the same initial weights for the same genotype
        model = model_from_args(args, text)
        score = naswot_score(model, images)
        results.append(
            {"genotype": model.genotype.encode(), "score": score, "params": count_params(model)}
        )
        if not args.json:
            print(f"{score:10.3f}  {results[-1]['params']:>9,} params  {results[-1]['genotype']}")
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
