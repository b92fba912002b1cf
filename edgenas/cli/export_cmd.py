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
from edgenas.quantize import DEFAULT_CALIBRATION_IMAGES, PRECISIONS

# Opsets the models export to and verify at: from 11, whose Resize is the first to
# match PyTorch's bilinear upsampling (below it the verification fails on every
# network with a decoder), to 23, the newest PyTorch 2.13's exporter writes.
MIN_OPSET, MAX_OPSET = 11, 23
# fp32 vs int8 accuracy is compared on at most this many validation images (evenly
# spaced): enough for a stable mIoU or PSNR, a bounded wait on a large validation set.
MAX_VALIDATION_IMAGES = 100


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
            "validation image of the data they were trained on.\n\n"
            "--quantize int8 writes an INT8 model instead: the fp32 model is exported and\n"
            "verified as above, then quantized after training (no retraining), calibrated on\n"
            "--calibration-images images of the data the weights were trained on (its\n"
            "training split; --calibration-data DIR instead). ONNX: onnxruntime static\n"
            "quantization, QDQ format, int8 per-channel weights. OpenVINO (--format\n"
            "openvino): NNCF. A table compares fp32 and int8: the task's metrics on up to\n"
            f"{MAX_VALIDATION_IMAGES} validation images (--validation-images; PSNR for sr, mIoU for\n"
            "seg, REL/delta1 for depth) and the latency on cpu (onnxruntime) or openvino-cpu (IR), with the speed-up.\n"
            "With --genotype / --model (random weights) it calibrates on random images: the\n"
            "int8 file is for latency only and no accuracy is reported. See docs/deploy-int8.md."
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
            "  edgenas export --run runs/NAME --static --input 1x3x360x480 -o best-360.onnx\n"
            "  edgenas export --checkpoint runs/sr/checkpoint.pt --quantize int8 -o sr-int8.onnx\n"
            "  edgenas export --run runs/NAME --quantize int8 --format openvino -o best-int8.xml\n"
            "  edgenas export --checkpoint CKPT --quantize int8 --calibration-data ../shared/data/camvid\n"
            "  edgenas export --genotype STR --task seg --quantize int8 -o latency-only-int8.onnx"
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
    quantize = parser.add_argument_group("INT8 (post-training quantization)")
    quantize.add_argument(
        "--quantize",
        choices=PRECISIONS,
        help="write an int8 model calibrated on images and compare it with fp32",
    )
    quantize.add_argument(
        "--calibration-data",
        metavar="DIR",
        help="dataset folder in the task's layout to calibrate on (its training split); "
        "default: the data the weights were trained on",
    )
    quantize.add_argument(
        "--calibration-images",
        metavar="N",
        type=number(int, minimum=1, maximum=10_000),
        help=f"images to calibrate on, evenly spaced over the split "
        f"(default {DEFAULT_CALIBRATION_IMAGES})",
    )
    quantize.add_argument(
        "--validation-images",
        metavar="N",
        type=number(int, minimum=1, maximum=100_000),
        help="validation images to compare fp32 and int8 accuracy on, evenly spaced "
        f"(default {MAX_VALIDATION_IMAGES})",
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
    _check_quantize_flags(args)
    output = _output_path(args)
    if args.format == "openvino":
        _check_openvino_installed(args.quantize)
    example, metadata, note, ckpt = None, {}, None, None
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

    options = dict(
        dynamic=dynamic, opset=args.opset, rtol=args.rtol, example=example, metadata=metadata
    )
    if args.quantize:
        report, notes = _export_int8(args, model, ckpt, shape, output, options)
        note = "\n".join(filter(None, [note, *notes]))
    else:
        from edgenas.export import export_onnx

        report = export_onnx(model, shape, output, openvino=args.format == "openvino", **options)
    if note and not args.json:
        print(note)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    _print_report(report)
    if report.quantization is not None:
        _print_comparison(report.quantization)


def _check_quantize_flags(args: argparse.Namespace) -> None:
    """The int8 options need --quantize; random weights take no calibration data."""
    int8_only = [
        flag
        for flag, value in (
            ("--calibration-data", args.calibration_data),
            ("--calibration-images", args.calibration_images),
            ("--validation-images", args.validation_images),
        )
        if value is not None
    ]
    if int8_only and not args.quantize:
        raise UserError(
            f"{' and '.join(int8_only)}: options of an int8 export; add --quantize int8"
        )
    if args.calibration_data is not None and not (args.checkpoint or args.run):
        raise UserError(
            "--calibration-data: --genotype / --model export random weights, whose int8 "
            "model is for latency only and calibrates on random images; quantize trained "
            "weights (--checkpoint / --run) with real data, or drop --calibration-data"
        )
    if args.calibration_data is not None:
        from edgenas.data.open import check_folder

        check_folder("--calibration-data", args.calibration_data)


def _export_int8(args, model, ckpt, shape, output, options):
    """Calibrate, quantize, compare: the int8 export's report and notes to print."""
    from edgenas.export import export_int8
    from edgenas.quantize import SpacedSubset, calibration_batches, random_batches

    count = args.calibration_images or DEFAULT_CALIBRATION_IMAGES
    notes = []
    if ckpt is None:
        batches = random_batches(count, shape)
        calibration = {"source": "random images", "split": None, "images": count}
        validation = None
        notes.append(
            "note: random weights, calibrated on random images: the int8 model is for "
            "latency only (quantize trained weights with --checkpoint / --run for accuracy)"
        )
    else:
        data = calibration_data(ckpt, model.task, args.calibration_data)
        batches = calibration_batches(data, count, shape)
        calibration = {
            "source": data.info.root,
            "split": "train",
            "images": min(count, len(data)),
        }
        validation = validation_data(ckpt, model.task, args.calibration_data)
        if validation is not None and model.task == "sr" and not options["dynamic"]:
            validation = None
            notes.append(
                "note: no accuracy for a fixed-size super-resolution model (images are "
                "scored whole): export with dynamic size (drop --static) to compare"
            )
        elif validation is None:
            notes.append("note: no validation data readable here: accuracy not compared")
        if validation is not None:
            validation = SpacedSubset(validation, args.validation_images or MAX_VALIDATION_IMAGES)
    with _stage_display(args.json) as on_stage:
        report = export_int8(
            model,
            shape,
            output,
            batches,
            calibration=calibration,
            validation=validation,
            openvino=args.format == "openvino",
            on_stage=on_stage,
            **options,
        )
    return report, notes


def _stage_display(quiet: bool):
    """A spinner on standard error naming the running stage: on a terminal and without
    --json only, so that logs and pipes stay clean."""
    import contextlib

    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return contextlib.nullcontext(lambda text: None)

    @contextlib.contextmanager
    def spinner():
        with console.status("exporting") as status:
            yield lambda text: status.update(text)

    return spinner()


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


def _check_openvino_installed(quantize: str | None = None) -> None:
    """--format openvino needs the openvino package (and nncf to quantize): say so
    before exporting."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        raise UserError(
            "--format openvino needs the openvino package: pip install openvino "
            "(or export ONNX with --format onnx)"
        )
    if quantize and importlib.util.find_spec("nncf") is None:
        raise UserError(
            "--quantize int8 --format openvino needs the nncf package: pip install nncf "
            "(or quantize to ONNX with --format onnx)"
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


def _trained_on(ckpt: dict) -> tuple[str | None, str | None]:
    """The training data folder of a checkpoint (None: the built-in data) and its
    validation folder when one was given separately (a search's --val-data)."""
    extra = ckpt.get("extra", {})
    root = extra.get("data")
    return (None if root in (None, "<built-in>") else root), extra.get("val_data")


def _task_options(ckpt: dict, task) -> dict:
    """Reader options of the network's task: the sr scale it was trained for; dense
    tasks at the images' own size (resized to the input size later)."""
    options = {"scale": ckpt["model_spec"]["options"].get("scale", 2)}
    if task.name != "sr":
        options["size"] = None
    return options


def validation_data(ckpt: dict, task_name: str, fallback: str | None = None):
    """The validation images of the data ``ckpt`` was trained on (its separate
    validation folder, whole, when it has one), else the validation split of
    ``fallback``; None when neither is readable here."""
    from edgenas.tasks import get_task

    task = get_task(task_name)
    root, val_root = _trained_on(ckpt)
    options = _task_options(ckpt, task)
    candidates = [(val_root, "all")] if val_root else []
    candidates.append((root, "val"))  # root None: the built-in data
    if fallback is not None:
        candidates.append((fallback, "val"))
    for folder, split in candidates:
        try:
            data = task.dataset(folder, split, train=False, **options)
            data[0]  # the first image reads: the folder is usable here
        except Exception:  # the data moved or is not readable here
            continue
        return data
    return None


def calibration_data(ckpt: dict, task_name: str, folder: str | None = None):
    """The images to calibrate an int8 model on: the training split of ``folder``
    (--calibration-data) or else of the data ``ckpt`` was trained on, read by the task's
    own reader without augmentation. A folder that is not the task's layout, or
    training data not readable here, is a UserError that says what to give."""
    from edgenas.tasks import get_task

    task = get_task(task_name)
    options = _task_options(ckpt, task)
    if folder is not None:
        data = task.dataset(folder, "train", train=False, **options)
        if len(data) == 0:
            raise UserError(
                f"--calibration-data {folder} has no {task.name} training images; give a "
                "folder in the task's layout (see `edgenas train --help`)"
            )
        return data
    root, _ = _trained_on(ckpt)
    try:
        data = task.dataset(root, "train", train=False, **options)
        data[0]  # the first image reads: the folder is usable here
    except Exception:
        raise UserError(
            f"no data to calibrate on: the weights were trained on {root}, which is not "
            "readable here; give --calibration-data DIR (images in the task's layout)"
        ) from None
    return data


def validation_example(ckpt: dict, task_name: str, shape):
    """A real validation image at ``shape`` to verify the export with (a trained network
    can be far off on noise), and a note when none could be read."""
    from edgenas.finalise import deploy_example

    data = validation_data(ckpt, task_name)
    if data is None:  # the data moved or is not readable here: verify on noise
        root, val_root = _trained_on(ckpt)
        where = val_root or root or "the built-in data"
        return None, f"note: verified on random input ({where} is not readable here)"
    image = deploy_example(data[0][0], shape).clamp(0, 1)
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


def _print_comparison(quantization: dict) -> None:
    """fp32 vs int8: the task's metrics, the latency and the speed-up, in one table."""
    from rich.console import Console
    from rich.table import Table

    from edgenas.tasks.runner import format_metrics

    calibration = quantization["calibration"]
    table = Table(
        title=f"int8 vs fp32 ({quantization['tool']}, {calibration['images']} calibration images)"
    )
    for name in ("", "fp32", "int8", "int8 - fp32"):
        table.add_column(name, justify="left" if not name else "right")
    accuracy = quantization["accuracy"]
    if accuracy is not None:
        for metric, before in accuracy["fp32"].items():
            after, delta = accuracy["int8"][metric], accuracy["delta"][metric]
            cells = [format_metrics({metric: v}).split()[1] for v in (before, after)]
            digits = 2 if metric in ("psnr", "rmse") else 4
            table.add_row(metric, *cells, f"{delta:+.{digits}f}")
    latency = quantization["latency"]
    speedup = latency["speedup"]
    table.add_row(
        f"latency ms ({latency['device']}, {'x'.join(map(str, latency['input_shape']))})",
        f"{latency['fp32_ms']:.2f}",
        f"{latency['int8_ms']:.2f}",
        "-"
        if speedup is None
        else f"{speedup:.2f}x faster"
        if speedup >= 1
        else f"{speedup:.2f}x (slower)",
    )
    difference = quantization["output_difference"]
    lines = [f"calibrated on {calibration['images']} images of {calibration['source']}"]
    if accuracy is not None:
        lines.append(f"accuracy on {accuracy['images']} validation images of {accuracy['data']}")
    lines.append(
        f"output differs from fp32 by {difference['mean_rel']:.2%} of its range on average "
        f"(max {difference['max_rel']:.2%})"
    )
    table.caption = "\n".join(lines)
    Console().print(table)
