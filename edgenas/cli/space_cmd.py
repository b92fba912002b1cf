"""``edgenas space``: sample, describe and size the LDP search space."""

from __future__ import annotations

import argparse
import math

from edgenas.cli.common import add_command, parse_genotype, parse_list
from edgenas.errors import UserError
from edgenas.parsing import number

# More genotypes than a sampling call may print: a million take minutes to draw and
# hold in memory; a larger --n is more likely a typo than a plan.
MAX_SAMPLES = 1_000_000


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "space",
        help="sample, describe and size the LDP search space",
        description=(
            "The LDP search space: a pyramid of S scales with 5 + 7(S-1) searched blocks.\n"
            "Each block is N identical layers: op (conv, ds, ib<expansion>, micro), kernel,\n"
            "squeeze-and-excitation ratio, residual or not, output channels."
        ),
        epilog=(
            "examples:\n"
            "  edgenas space sample --n 10 --seed 0 --scales 2,3\n"
            '  edgenas space describe "$(edgenas space sample --n 1 --seed 3)"\n'
            "  edgenas space size"
        ),
    )
    actions = parser.add_subparsers(dest="space_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: _missing_action(parser))

    sample = add_command(
        actions,
        "sample",
        help="print random valid genotypes, one canonical string per line",
        description="Print N distinct random genotypes (uniform over the choice lists, "
        "rejection-sampled under the compute budget), one canonical string per line.",
    )
    sample.add_argument(
        "--n",
        type=number(int, minimum=1, maximum=MAX_SAMPLES, choices_text=f"1 to {MAX_SAMPLES:,}"),
        default=1,
        help="how many genotypes",
    )
    sample.add_argument(
        "--seed", type=number(int, minimum=0), default=0, help="random seed (0 or more)"
    )
    sample.add_argument(
        "--scales", default=None, help="comma-separated scale counts to draw from, e.g. 2,3"
    )
    sample.set_defaults(func=run_sample)

    describe = add_command(
        actions,
        "describe",
        help="print the blocks of a genotype as a table",
        description="Print each block of a genotype with its role, scale and layer spec, "
        "and the genotype's compute units against the budget.",
    )
    describe.add_argument("genotype", help="a genotype string")
    describe.set_defaults(func=run_describe)

    size = add_command(
        actions,
        "size",
        help="print M and M^(5+7(S-1)) for the default choice lists",
        description="Print the number M of block choices and the number of networks "
        "M^(5+7(S-1)) for every S, next to the LDP paper's M = 192.",
    )
    size.set_defaults(func=run_size)


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_sample(args: argparse.Namespace) -> None:
    from edgenas.space import LDPSpace

    space = LDPSpace()
    try:
        genotypes = space.sample_unique(
            args.n, args.seed, scales=parse_list(args.scales, "--scales") if args.scales else None
        )
    except ValueError as err:
        raise UserError(f"{err}; use --scales with values from {space.scales}") from None
    for genotype in genotypes:
        print(genotype.encode())


def run_describe(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgenas.space import LDPSpace
    from edgenas.space.genotype import role_scale

    genotype = parse_genotype(args.genotype)
    space = LDPSpace()
    table = Table(title=f"{genotype.scales}-scale genotype, {len(genotype.blocks)} blocks")
    for column in ("#", "role", "scale", "op", "kernel", "SE", "skip", "channels", "layers"):
        table.add_column(column, justify="right" if column in ("#", "scale") else "left")
    for index, (role, block) in enumerate(zip(genotype.roles, genotype.blocks, strict=True)):
        table.add_row(
            str(index),
            role,
            str(role_scale(role)),
            block.op_token,
            f"{block.kernel}x{block.kernel}",
            f"{block.se_ratio:g}" if block.se else "-",
            "residual" if block.residual else "plain",
            str(block.channels),
            str(block.layers),
        )
    console = Console()
    console.print(table)
    units, budget = space.compute_units(genotype), space.budget(genotype.scales)
    console.print(f"compute units {units:.0f} of budget {budget:.0f}")
    problems = space.problems(genotype)
    if problems:
        console.print("[yellow]outside the default space:[/] " + "; ".join(problems))


def run_size(args: argparse.Namespace) -> None:
    from edgenas.space import LDPSpace

    size = LDPSpace().size()
    paper_m = 192
    print(f"M (block choices) = {size.block_choices}   (LDP paper: M = {paper_m})")
    for scales, log10 in size.networks_log10.items():
        blocks = 5 + 7 * (scales - 1)
        paper = blocks * math.log10(paper_m)
        print(
            f"S={scales}: {blocks:2d} blocks, M^{blocks} = 1e{log10:.1f}"
            f"   (paper's M: 1e{paper:.1f})"
        )
