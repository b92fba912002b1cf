"""``edgenas export``: genotype or reference model -> simplified, checked, verified ONNX
(or OpenVINO IR)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgenas.cli.common import add_command, parse_input_shape
from edgenas.cli.model_args import add_model_arguments, model_from_args
from edgenas.errors import UserError


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "export",
        help="export a genotype or reference model to a verified ONNX file or OpenVINO IR",
        description=(
            "Build the network of a genotype (--genotype) or a reference model (--model, see\n"
            "`edgenas models`), export it to ONNX (opset 17), simplify it with onnxsim,\n"
            "check it with onnx.checker, then run it in onnxruntime and compare with\n"
            "PyTorch on the same random input. The file is written only if the outputs\n"
            "agree (max error relative to the output magnitude <= --rtol). The genotype or\n"
            "model name, task and its options, input shape and edgenas version are stored\n"
            "as metadata. The weights are freshly initialised (untrained)."
        ),
        epilog=(
            "examples:\n"
            '  edgenas export --genotype "$(edgenas space sample --n 1)" --task depth -o depth.onnx\n'
            "  edgenas export --genotype STR --task seg --num-classes 19 --input 1x3x512x1024 --dynamic\n"
            "  edgenas export --genotype STR --task sr --scale 4 --input 1x3x64x64 --format openvino -o sr.xml\n"
            "  edgenas export --genotype STR --json     # machine-readable summary on stdout\n"
            "  edgenas export --model espcn --scale 2 --input 1x3x120x160 --dynamic -o espcn.onnx\n"
            "  edgenas export --model lraspp --num-classes 19 --input 1x3x512x1024 -o lraspp.onnx"
        ),
    )
    add_model_arguments(parser, reference_models=True)
    parser.add_argument("--input", default="1x3x240x320", help="input shape NxCxHxW (or HxW)")
    parser.add_argument(
        "-o", "--output", default=None, help="output file (default model.onnx / model.xml)"
    )
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="dynamic batch, height and width (verified at two sizes)",
    )
    parser.add_argument(
        "--format",
        choices=("onnx", "openvino"),
        default="onnx",
        help="onnx, or OpenVINO IR (.xml + .bin, converted from the verified ONNX)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")
    parser.add_argument("--rtol", type=float, default=1e-3, help="verification tolerance")
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    shape = parse_input_shape(args.input)
    suffix = ".xml" if args.format == "openvino" else ".onnx"
    output = Path(args.output or f"model{suffix}")
    if output.suffix != suffix:
        raise UserError(f"--format {args.format} writes a {suffix} file; name the output *{suffix}")
    if output.is_dir():
        raise UserError(
            f"{output} is a directory; give a file name such as {output / ('model' + suffix)}"
        )
    model = model_from_args(args)

    from edgenas.export import export_onnx

    report = export_onnx(
        model,
        shape,
        output,
        dynamic=args.dynamic,
        opset=args.opset,
        rtol=args.rtol,
        openvino=args.format == "openvino",
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    _print_report(report)


def _print_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"exported {report.path}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    if "model" in report.metadata:
        table.add_row("model", report.metadata["model"])
    table.add_row("task", report.metadata.get("task", "?"))
    table.add_row(
        "input -> output",
        f"{'x'.join(map(str, report.input_shape))} -> {'x'.join(map(str, report.output_shape))}"
        + ("  (dynamic N, H, W)" if report.dynamic else ""),
    )
    table.add_row("parameters", f"{report.params:,}")
    table.add_row("MACs", f"{report.macs / 1e6:,.1f} M")
    table.add_row(
        "max error vs PyTorch", f"{report.max_abs_err:.2e} abs, {report.max_rel_err:.2e} rel"
    )
    table.add_row("opset", str(report.opset))
    table.add_row(
        "seconds", ", ".join(f"{stage} {sec:.2f}" for stage, sec in report.seconds.items())
    )
    for extra in report.extra_files:
        table.add_row("also wrote", extra)
    Console().print(table)
