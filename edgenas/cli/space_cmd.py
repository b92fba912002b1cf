"""``edgenas space``: sample, describe and size the LDP search space."""

from __future__ import annotations

import argparse
import math

from edgenas.cli.common import add_command, parse_genotype, parse_list, parse_shape, parse_task
from edgenas.errors import UserError
from edgenas.network_memory import check_genotype_fits
from edgenas.parsing import number, scale_number, scales_text
from edgenas.search.config import DEFAULT_SR_LAYOUT, SPACE_BY_TASK, SR_LAYOUTS, SearchConfig

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
            "Each block is N identical layers: op (conv, ds, sep, ib<expansion>, micro), kernel,\n"
            "squeeze-and-excitation ratio, residual or not, output channels; or id, a block\n"
            "without layers (identity, or a 1x1 projection where the shape changes).\n"
            "Super-resolution also has the paper's layout (S<n>U: strings, --sr-layout paper):\n"
            "one block more, the upsample block up1 before the refine block ref0, which\n"
            "then runs at the HR resolution."
        ),
        epilog=(
            "examples:\n"
            "  edgenas space sample --n 10 --seed 0 --task sr\n"
            "  edgenas space sample --n 3 --task sr --sr-layout paper --scale 3\n"
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
        "rejection-sampled under the compute budget), one canonical string per line. "
        "They come from the space `edgenas search` searches by default for --task "
        "(its scale counts, widths and operator lists); --scales and --channels narrow "
        "or widen it as they do for the search.",
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
    add_space_arguments(sample)
    sample.set_defaults(func=run_sample)

    describe = add_command(
        actions,
        "describe",
        help="print the blocks of a genotype as a table",
        description="Print each block of a genotype with its role, scale and layer spec, "
        "the genotype's compute units against the budget, and the network's parameters "
        "and MACs (with --task's head) at --input. Scale HR marks the blocks of an "
        "S<n>U: genotype that run at the output resolution (--scale times scale 1); "
        "they weigh --scale^2 in the compute units.",
    )
    describe.add_argument("genotype", help="a genotype string")
    describe.add_argument(
        "--task",
        default=None,
        help="task whose head the network gets and whose search space it is checked against "
        "(depth, seg, sr, cls; default: sr for an S<n>U: genotype, else depth)",
    )
    describe.add_argument(
        "--scale",
        type=scale_number(),
        default=None,
        help=f"super-resolution factor ({scales_text()}; --task sr only; default 2)",
    )
    describe.add_argument(
        "--input",
        default=_shape_text(SearchConfig().deploy_input),
        help="input HxW at which MACs are counted (the search's deploy size)",
    )
    describe.set_defaults(func=run_describe)

    size = add_command(
        actions,
        "size",
        help="print M and M^(5+7(S-1)) for the default choice lists",
        description="Print the number M of block choices and the number of networks "
        "M^(5+7(S-1)) for every S, next to the LDP paper's M = 192, and M^(6+7(S-1)) "
        "for the super-resolution upsample layout (S<n>U:).",
    )
    size.set_defaults(func=run_size)


def _join(values) -> str:
    return ",".join(str(v) for v in values)


def _shape_text(shape) -> str:
    return "x".join(str(v) for v in shape)


def add_space_arguments(parser: argparse.ArgumentParser) -> None:
    """--task, --scales, --channels, --sr-layout and --scale: the space `edgenas search`
    searches by default (SearchConfig's SPACE_BY_TASK), narrowed or widened as the
    search's options do."""
    sr_space, dense_space = SPACE_BY_TASK["sr"], SPACE_BY_TASK["dense"]
    parser.add_argument(
        "--task",
        default="depth",
        help="task whose default search space is sampled (depth, seg, sr, cls)",
    )
    parser.add_argument(
        "--scales",
        default=None,
        help=f"comma-separated pyramid scale counts to draw from (default as the search: "
        f"sr {_join(sr_space['scales'])}; others {_join(dense_space['scales'])})",
    )
    parser.add_argument(
        "--channels",
        default=None,
        help=f"comma-separated block widths to choose from (default as the search: "
        f"sr {_join(sr_space['channels'])}; others {_join(dense_space['channels'])})",
    )
    parser.add_argument(
        "--sr-layout",
        choices=SR_LAYOUTS,
        default=None,
        help="--task sr only: head (S<n>: genotypes) or paper (S<n>U:, the searched "
        f"upsample block up1 and refine block ref0 at HR); default as the search: "
        f"{DEFAULT_SR_LAYOUT}",
    )
    parser.add_argument(
        "--scale",
        type=scale_number(),
        default=None,
        help=f"super-resolution factor ({scales_text()}; default 2): with --sr-layout paper "
        "the HR blocks weigh scale^2 in the compute budget",
    )


def search_space(args: argparse.Namespace):
    """The LDPSpace `edgenas search --task TASK [--scales] [--channels] [--sr-layout]
    [--scale]` would search."""
    from edgenas.space import LDPSpace

    task = parse_task(args.task)
    scales = parse_list(args.scales, "--scales") if getattr(args, "scales", None) else None
    channels = parse_list(args.channels, "--channels") if getattr(args, "channels", None) else None
    layout = getattr(args, "sr_layout", None)
    scale = getattr(args, "scale", None)
    for flag, value in (("--sr-layout", layout), ("--scale", scale)):
        if value is not None and task != "sr":
            raise UserError(f"{flag} applies to --task sr only (the task is {task}); drop it")
    for count in scales or ():
        if count not in LDPSpace().scales:
            raise UserError(f"--scales {count} is not among {_join(LDPSpace().scales)}")
    config = SearchConfig(
        task=task, scales=scales, channels=channels, sr_layout=layout, scale=scale or 2
    )
    try:
        return config.space()
    except ValueError as err:
        raise UserError(f"bad search space: {err}") from None


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_sample(args: argparse.Namespace) -> None:
    space = search_space(args)
    try:
        genotypes = space.sample_unique(args.n, args.seed)
    except (ValueError, RuntimeError) as err:
        raise UserError(f"{err}; ask for fewer with --n or widen --scales/--channels") from None
    for genotype in genotypes:
        print(genotype.encode())


def run_describe(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgenas.space.genotype import scale_label

    genotype = parse_genotype(args.genotype)
    height, width = parse_shape(args.input, ndim=2)
    paper = genotype.layout == "paper"
    task = parse_task(args.task if args.task is not None else ("sr" if paper else "depth"))
    if paper and task != "sr":
        raise UserError(
            f"{genotype.header}: genotypes (the super-resolution upsample layout) are "
            f"networks of --task sr only, not {task}; drop --task"
        )
    if args.scale is not None and task != "sr":
        raise UserError(f"--scale applies to --task sr only (the task is {task}); drop it")
    scale = args.scale or 2
    check_genotype_fits(genotype, (1, 3, height, width), option="--input")
    sr = task == "sr"
    space = search_space(
        argparse.Namespace(
            task=task, sr_layout=genotype.layout if sr else None, scale=scale if sr else None
        )
    )
    layout = " (SR upsample layout)" if paper else ""
    table = Table(title=f"{genotype.scales}-scale genotype{layout}, {len(genotype.blocks)} blocks")
    for column in ("#", "role", "scale", "op", "kernel", "SE", "skip", "channels", "layers"):
        table.add_column(column, justify="right" if column in ("#", "scale") else "left")
    for index, (role, block) in enumerate(zip(genotype.roles, genotype.blocks, strict=True)):
        table.add_row(
            str(index),
            role,
            scale_label(role),
            block.op_token,
            "-" if block.op == "id" else f"{block.kernel}x{block.kernel}",
            f"{block.se_ratio:g}" if block.se else "-",
            "-" if block.op == "id" else "residual" if block.residual else "plain",
            str(block.channels),
            "-" if block.op == "id" else str(block.layers),
        )
    console = Console()
    console.print(table)
    units, budget = space.units(genotype), space.budget(genotype.scales)
    weighed = f" (HR blocks weigh {scale}^2 = {scale * scale})" if paper else ""
    console.print(f"compute units {units:.0f} of budget {budget:.0f}{weighed}")
    options = {"scale": scale} if task == "sr" else {}
    params, macs = _complexity(genotype, task, (1, 3, height, width), options)
    where = f"x{scale} " if task == "sr" else ""
    console.print(f"parameters {params:,}   MACs {macs:,} at {height}x{width} ({where}{task} head)")
    problems = space.problems(genotype)
    if problems:
        console.print(
            f"[yellow]outside the {task} search's default space:[/] " + "; ".join(problems)
        )


def _complexity(
    genotype, task: str, shape: tuple[int, int, int, int], options: dict | None = None
) -> tuple[int, int]:
    """Parameters and MACs of the genotype's network with ``task``'s head at ``shape``,
    counted as the search counts them (edgenas.models.complexity)."""
    from edgenas.models.builder import build_model
    from edgenas.models.complexity import count_macs, count_params

    try:
        model = build_model(genotype, task, **(options or {}))
    except ValueError as err:
        raise UserError(str(err)) from None
    return count_params(model), count_macs(model, shape)


def run_size(args: argparse.Namespace) -> None:
    from edgenas.space import LDPSpace
    from edgenas.space.genotype import blocks_for_scales

    size = LDPSpace().size()
    upsampled = LDPSpace(layout="paper").size()
    paper_m = 192
    print(f"M (block choices) = {size.block_choices}   (LDP paper: M = {paper_m})")
    for scales, log10 in size.networks_log10.items():
        blocks = blocks_for_scales(scales)
        paper = blocks * math.log10(paper_m)
        print(
            f"S={scales}: {blocks:2d} blocks, M^{blocks} = 1e{log10:.1f}"
            f"   (paper's M: 1e{paper:.1f})"
        )
    print("super-resolution upsample layout (S<n>U:, --sr-layout paper): one block more")
    for scales, log10 in upsampled.networks_log10.items():
        blocks = blocks_for_scales(scales, "paper")
        print(f"S={scales}U: {blocks:2d} blocks, M^{blocks} = 1e{log10:.1f}")
