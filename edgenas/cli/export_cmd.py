"""``edgenas export``: genotype or reference model -> simplified, checked, verified ONNX
(or OpenVINO IR)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgenas.cli.common import add_command, check_output_file, parse_input_shape
from edgenas.cli.json_flag import add_json_flag
from edgenas.cli.model_args import add_model_arguments, model_from_args
from edgenas.errors import UserError
from edgenas.parsing import number

# Opsets the models export to and verify at: from 11, whose Resize is the first to
# match PyTorch's bilinear upsampling (below it the verification fails on every
# network with a decoder), to 23, the newest PyTorch 2.13's exporter writes.
MIN_OPSET, MAX_OPSET = 11, 23


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "export",
        help="export a genotype, reference model or trained checkpoint to verified ONNX / OpenVINO IR",
        description=(
            "Build the network of a genotype (--genotype) or a reference model (--model, see\n"
            "`edgenas models`), export it to ONNX (opset 17), simplify it with onnxsim,\n"
            "check it with onnx.checker, then run it in onnxruntime and compare with\n"
            "PyTorch on the same random input. The file is written only if the outputs\n"
            "agree (max error relative to the output magnitude <= --rtol). The genotype or\n"
            "model name, task and its options, input shape and edgenas version are stored\n"
            "as metadata. With --genotype / --model the weights are freshly initialised\n"
            "(for latency); --checkpoint / --run export trained weights, with dynamic\n"
            "height and width by default (verified at two sizes) and verified on a real\n"
            "validation image of the data they were trained on."
        ),
        epilog=(
            "examples:\n"
            '  edgenas export --genotype "$(edgenas space sample --n 1)" --task depth -o depth.onnx\n'
            "  edgenas export --genotype STR --task seg --num-classes 19 --input 1x3x512x1024 --dynamic\n"
            "  edgenas export --genotype STR --task sr --scale 4 --input 1x3x64x64 --format openvino -o sr.xml\n"
            "  edgenas export --genotype STR --json     # machine-readable summary on stdout\n"
            "  edgenas export --model espcn --scale 2 --input 1x3x120x160 --dynamic -o espcn.onnx\n"
            "  edgenas export --model lraspp --num-classes 19 --input 1x3x512x1024 -o lraspp.onnx\n"
            "  edgenas export --checkpoint runs/segmentation/checkpoint.pt -o seg.onnx\n"
            "  edgenas export --run runs/NAME --format openvino -o best.xml    a search or shrink run\n"
            "  edgenas export --run runs/NAME --static --input 1x3x360x480 -o best-360.onnx"
        ),
    )
    add_model_arguments(parser, reference_models=True)
    trained = parser.add_argument_group("trained weights (instead of --genotype / --model)")
    trained.add_argument(
        "--checkpoint",
        metavar="PT",
        help="a checkpoint from `edgenas train` (OUT/checkpoint.pt) or a run's best.pt",
    )
    trained.add_argument(
        "--run", metavar="DIR", help="the final model of a search or shrink run: DIR/best.pt"
    )
    parser.add_argument(
        "--input",
        default=None,
        help="input shape NxCxHxW (or HxW); default 1x3x240x320, for trained weights the "
        "deploy (or training) size stored with them",
    )
    parser.add_argument(
        "-o", "--output", default=None, help="output file (default model.onnx / model.xml)"
    )
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="dynamic batch, height and width (verified at two sizes); the default for "
        "trained weights",
    )
    parser.add_argument(
        "--static", action="store_true", help="fixed input size (for trained weights)"
    )
    parser.add_argument(
        "--format",
        choices=("onnx", "openvino"),
        default="onnx",
        help="onnx, or OpenVINO IR (.xml + .bin, converted from the verified ONNX)",
    )
    parser.add_argument(
        "--opset",
        type=number(
            int,
            minimum=MIN_OPSET,
            maximum=MAX_OPSET,
            choices_text=f"an opset from {MIN_OPSET} to {MAX_OPSET}",
        ),
        default=17,
        help=f"ONNX opset ({MIN_OPSET}-{MAX_OPSET})",
    )
    parser.add_argument(
        "--rtol",
        type=number(float, above=0),
        default=1e-3,
        help="verification tolerance: max error relative to the output's magnitude",
    )
    add_json_flag(parser, "print a JSON summary only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    given = [
        f"--{name}" for name in ("genotype", "model", "checkpoint", "run") if getattr(args, name)
    ]
    if len(given) > 1:
        raise UserError(f"give one network to export, not {' and '.join(given)}")
    if args.dynamic and args.static:
        raise UserError("--dynamic and --static contradict each other; give one")
    output = _output_path(args)
    if args.format == "openvino":
        _check_openvino_installed()
    example, metadata, note = None, {}, None
    if args.checkpoint or args.run:
        shape = _input_shape(args.input) if args.input else None
        model, ckpt, source = _trained_model(args)
        shape = shape or (1, 3, *stored_size(ckpt))
        dynamic = not args.static
        example, note = validation_example(ckpt, model.task, shape)
        metadata = {"checkpoint": str(source), "trained": "true"}
    else:
        shape = _input_shape(args.input or "1x3x240x320")
        model = model_from_args(args, input_shape=shape)
        dynamic = args.dynamic

    from edgenas.export import export_onnx

    report = export_onnx(
        model,
        shape,
        output,
        dynamic=dynamic,
        opset=args.opset,
        rtol=args.rtol,
        openvino=args.format == "openvino",
        example=example,
        metadata=metadata,
    )
    if note and not args.json:
        print(note)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    _print_report(report)


def _output_path(args: argparse.Namespace) -> Path:
    """The file to write, refused up front when it has the wrong suffix or cannot be
    written (a folder, a parent that is a file, no permission)."""
    suffix = ".xml" if args.format == "openvino" else ".onnx"
    if args.output == "-":
        raise UserError(
            f"-o -: export writes a {suffix} file, not standard output; give a file name "
            f"such as model{suffix} (--json prints the summary on standard output)"
        )
    output = Path(args.output or f"model{suffix}")
    if output.is_dir():
        raise UserError(
            f"{output} is a folder; give a file name such as {output / ('model' + suffix)}"
        )
    if output.suffix != suffix:
        other = " (an OpenVINO IR: add --format openvino)" if output.suffix == ".xml" else ""
        raise UserError(
            f"--format {args.format} writes a {suffix} file; name the output *{suffix}{other}"
        )
    check_output_file(str(output), "-o")
    if suffix == ".xml":  # the weights land beside the IR
        check_output_file(str(output.with_suffix(".bin")), "-o")
    return output


def _input_shape(text: str) -> tuple[int, int, int, int]:
    """``--input`` as NCHW: three channels (every network takes RGB) and a size whose
    activations fit in memory (the network's own width is checked when it is built)."""
    from edgenas.parsing import check_input_fits

    shape = parse_input_shape(text)
    if shape[1] != 3:
        raise UserError(
            f"--input {text}: {shape[1]} channels, but the networks take 3-channel RGB "
            "images; write Nx3xHxW or HxW"
        )
    check_input_fits(shape, "--input")
    return shape


def _check_openvino_installed() -> None:
    """--format openvino needs the openvino package: say so before exporting."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        raise UserError(
            "--format openvino needs the openvino package: pip install openvino "
            "(or export ONNX with --format onnx)"
        )


def _trained_model(args: argparse.Namespace):
    """The network of ``--checkpoint`` / ``--run`` with its trained weights."""
    from edgenas.checkpoint import load_checkpoint, model_from_checkpoint

    stray = [
        f"--{name.replace('_', '-')}"
        for name in ("task", "num_classes", "scale", "upsampler")
        if getattr(args, name, None) is not None
    ]
    if stray:
        raise UserError(f"{', '.join(stray)}: trained weights carry their own task and head")
    if args.run:
        run_dir = Path(args.run)
        path = run_dir / "best.pt"
        if not run_dir.is_dir():
            raise UserError(f"run folder {run_dir} does not exist")
        if not path.is_file():
            raise UserError(
                f"{run_dir} has no best.pt: only finished search and shrink runs of this "
                "version keep the final model's checkpoint (older runs: use their .onnx file)"
            )
    else:
        path = Path(args.checkpoint)
    ckpt = load_checkpoint(path)
    return model_from_checkpoint(ckpt), ckpt, path


def stored_size(ckpt: dict) -> tuple[int, int]:
    """The deploy size stored with trained weights, else the training size (dense tasks),
    else 120x160 (super-resolution patches are too small to stand for an image)."""
    extra = ckpt.get("extra", {})
    if extra.get("deploy_input"):
        return tuple(extra["deploy_input"])
    if ckpt.get("model_spec", {}).get("task") != "sr" and extra.get("input"):
        return tuple(extra["input"])
    return (120, 160)


def validation_example(ckpt: dict, task_name: str, shape):
    """A real validation image at ``shape`` to verify the export with (a trained network
    can be far off on noise), and a note when none could be read."""
    from edgenas.finalise import deploy_example
    from edgenas.tasks import get_task

    extra = ckpt.get("extra", {})
    root = extra.get("val_data") or extra.get("data")
    root = None if root in (None, "<built-in>") else root
    task = get_task(task_name)
    try:
        options = {"scale": ckpt["model_spec"]["options"].get("scale", 2)}
        if task.name != "sr":
            options["size"] = None
        data = task.dataset(root, "all" if extra.get("val_data") else "val", train=False, **options)
        image = data[0][0]
    except Exception:  # the data moved or is not readable here: verify on noise
        where = root or "the built-in data"
        return None, f"note: verified on random input ({where} is not readable here)"
    image = deploy_example(image, shape).clamp(0, 1)
    return image.expand(shape[0], -1, -1, -1).contiguous(), None


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
