"""``edgenas models``: the reference networks, with their size, cost and measured latency."""

from __future__ import annotations

import argparse
import json

from edgenas.cli.common import add_command, parse_input_shape, parse_task
from edgenas.cli.json_flag import add_json_flag
from edgenas.cli.model_args import classes_number
from edgenas.errors import UserError
from edgenas.parsing import check_input_fits, number, scale_number

# Input sizes (H, W) the table is computed at unless --input says otherwise; for sr it is
# the low-resolution input (the output is scale times larger).
DEFAULT_INPUTS = {"sr": (120, 160), "segmentation": (180, 240), "depth": (128, 160)}


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "models",
        help="list the reference networks (ESPCN, FSRCNN, LR-ASPP, FastDepth, ...)",
        description=(
            "List the reference models: the hand-written networks that searched ones are\n"
            "compared with. Each is built by the same code as a genotype network, so\n"
            "`edgenas export --model NAME` exports it, and the tables here count its\n"
            "parameters, its MACs (convolutions and linear layers, as `edgenas export`) at\n"
            "the input size, and measure its latency on --device (exported to ONNX,\n"
            "untrained weights, one thread by default).\n"
            "\n"
            "Default input sizes: sr 120x160 (the low-resolution input; the output is\n"
            "--scale times larger), segmentation 180x240, depth 128x160. --input applies\n"
            "to every model listed."
        ),
        epilog=(
            "examples:\n"
            "  edgenas models --no-latency              every model, sizes and MACs only (fast)\n"
            "  edgenas models --task sr                 the sr models, latency on this CPU\n"
            "  edgenas models --task seg --input 360x480 --num-classes 11\n"
            "  edgenas models --task depth --device openvino-cpu\n"
            "  edgenas models --no-latency --json       machine-readable list\n"
            "  edgenas export --model espcn --scale 2 -o espcn.onnx   export one of them"
        ),
    )
    # SUPPRESS: no "(default: None)" in --help; run() reads them with getattr.
    parser.add_argument(
        "--task",
        default=argparse.SUPPRESS,
        help="only this task's models: sr, segmentation (seg) or depth (default: all)",
    )
    parser.add_argument(
        "--input",
        default=argparse.SUPPRESS,
        metavar="HxW",
        help="input size for every model listed, HxW or NxCxHxW (default: per task, above)",
    )
    parser.add_argument(
        "--scale", type=scale_number(), default=2, help="scale of the sr models: 2, 3 or 4"
    )
    parser.add_argument(
        "--num-classes",
        type=classes_number(),
        default=11,
        help="classes of the segmentation models",
    )
    parser.add_argument("--device", default="cpu", help="device to measure latency on")
    parser.add_argument(
        "--threads",
        type=number(int, minimum=1, choices_text="at least 1"),
        default=1,
        help="threads for the latency runs",
    )
    parser.add_argument(
        "--no-latency", action="store_true", help="skip the latency measurement (fast)"
    )
    add_json_flag(parser, "print a JSON list only")
    parser.set_defaults(func=run)


def _input_shape(text: str | None, task: str) -> tuple[int, int, int, int]:
    if text is None:
        return (1, 3, *DEFAULT_INPUTS[task])
    shape = parse_input_shape(text)
    if shape[1] != 3:
        raise UserError(f"bad --input {text!r}: reference models take 3-channel RGB images")
    check_input_fits(shape, "--input")
    return shape


def _select(args: argparse.Namespace) -> list[str]:
    from edgenas.models.reference import REFERENCE_MODELS, reference_names

    text = getattr(args, "task", None)
    if text is None:
        return reference_names()
    task = parse_task(text)
    names = reference_names(task)
    if not names:
        tasks = ", ".join(dict.fromkeys(entry.task for entry in REFERENCE_MODELS.values()))
        raise UserError(f"no reference models for task {task!r} (there are some for {tasks})")
    return names


def _options(args: argparse.Namespace, defaults: dict) -> dict:
    options = {}
    if "scale" in defaults:
        options["scale"] = args.scale
    if "num_classes" in defaults:
        options["num_classes"] = args.num_classes
    return options


def run(args: argparse.Namespace) -> None:
    text = getattr(args, "input", None)
    if text is not None:
        _input_shape(text, "sr")  # a bad --input fails before any model is built
    names = _select(args)

    import torch

    from edgenas.models.complexity import count_macs, count_params
    from edgenas.models.reference import REFERENCE_MODELS, build_reference

    torch.set_num_threads(1)
    measurer = None
    if not args.no_latency:
        from edgenas.latency_table import Measurer

        measurer = Measurer(args.device, threads=args.threads)
    rows = []
    try:
        for name in names:
            entry = REFERENCE_MODELS[name]
            shape = _input_shape(text, entry.task)
            torch.manual_seed(0)
            model = build_reference(name, **_options(args, entry.defaults)).eval()
            with torch.no_grad():
                output = model(torch.zeros(shape))
            latency = None
            if measurer is not None:
                latency = measurer.measure_network(model, shape)
            rows.append(
                {
                    "name": name,
                    "task": entry.task,
                    "learned": entry.learned,
                    "options": model.options,
                    "params": count_params(model),
                    "macs": count_macs(model, shape),
                    "input_shape": list(shape),
                    "output_shape": list(output.shape),
                    "latency_ms": latency,
                    "device": None if measurer is None else args.device,
                    "threads": None if measurer is None else args.threads,
                    "description": entry.description,
                    "citation": entry.citation,
                }
            )
    finally:
        if measurer is not None:
            measurer.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    _print_table(rows, args)


def _print_table(rows: list[dict], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    latency = not args.no_latency
    title = "reference models" + (
        f", latency on {args.device} ({args.threads} thread{'s' if args.threads > 1 else ''})"
        if latency
        else ""
    )
    table = Table(title=title)
    table.add_column("model", style="bold")
    table.add_column("task")
    table.add_column("input", justify="right")
    table.add_column("params", justify="right")
    table.add_column("MACs", justify="right")
    if latency:
        table.add_column("latency", justify="right")
    table.add_column("what it is")
    for row in rows:
        n, _c, h, w = row["input_shape"]
        scale = row["options"].get("scale")
        cells = [
            row["name"],
            row["task"] + (f" x{scale}" if scale else ""),
            f"{h}x{w}" + (f" (N={n})" if n != 1 else ""),
            f"{row['params']:,}",
            f"{row['macs'] / 1e6:,.1f} M",
        ]
        if latency:
            cells.append(f"{row['latency_ms']:.2f} ms")
        cells.append(row["description"])
        table.add_row(*cells)
    console = Console()
    console.print(table)
    for row in rows:
        line = Text(f"{row['name']}: ", style="bold")
        line.append(row["citation"])
        console.print(line)
    if any(not row["learned"] for row in rows):
        console.print(
            "[dim]bicubic: no parameters and 0 counted MACs (its interpolation is resizing,"
            " which is not counted in any model).[/dim]"
        )
