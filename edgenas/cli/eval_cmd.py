"""``edgenas eval``: the task's metrics of a checkpoint, an ONNX model or a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgenas.cli.common import add_command, check_output_file, parse_task
from edgenas.cli.profile_cmd import check_model_file
from edgenas.errors import UserError
from edgenas.model_files import read_onnx
from edgenas.parsing import number, scale_number

DESCRIPTION = """\
Evaluate a trained network (--checkpoint from `edgenas train`, or a search's or
shrink's best.pt), an exported model run through onnxruntime (--onnx) or OpenVINO's CPU
plugin (--openvino model.xml), or a non-learned baseline (--baseline bicubic, sr only)
on a dataset folder in its standard layout (see `edgenas train --help`) or, without
--data, on the built-in demo validation data.

Metrics, as in the literature:
  depth  REL, RMSE, log10, delta1..3 over valid pixels (per image, averaged)
  seg    mIoU from a dataset-wide confusion matrix (ignore index excluded), pixel acc.
  sr     PSNR / SSIM on the Y channel (BT.601), `scale` pixels shaved, HR cropped to a
         multiple of the scale, LR made by bicubic downscaling
  cls    top-1 accuracy
Depth, segmentation and classification inputs are resized to --input (default: the
training input stored in the checkpoint; an ONNX model with a fixed size uses its own;
otherwise the images' own size) and the predictions are scored against the targets at
their full resolution."""

EPILOG = """\
examples:
  edgenas eval --task sr --data ../shared/data/sr/Set5 --baseline bicubic --scale 4
  edgenas eval --task seg --data ../shared/data/camvid --checkpoint runs/segmentation/checkpoint.pt
  edgenas eval --task depth --onnx depth.onnx --data ../shared/data/depth --json out.json
  edgenas eval --task sr --onnx runs/NAME/best.onnx --data ../shared/data/sr/Set5   full size
  edgenas export --run runs/NAME --format openvino -o best.xml
  edgenas eval --task sr --openvino best.xml --data ../shared/data/sr/Set5"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "eval",
        help="evaluate a checkpoint, an ONNX model or the bicubic baseline on a dataset",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--task", required=True, help="depth, seg, sr or cls")
    parser.add_argument("--data", help="dataset folder (default: built-in demo val data)")
    from edgenas.data.open import FORMAT_NAMES

    parser.add_argument(
        "--format", dest="fmt", choices=FORMAT_NAMES, help="dataset layout (default: detected)"
    )
    parser.add_argument(
        "--split",
        default="auto",
        choices=("auto", "train", "val", "all"),
        help="auto: the val split if the layout has one, otherwise every image",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="checkpoint.pt written by `edgenas train`")
    model.add_argument("--onnx", help="ONNX model (run with onnxruntime)")
    model.add_argument(
        "--openvino", metavar="XML", help="OpenVINO IR (.xml + .bin; run on OpenVINO's CPU)"
    )
    model.add_argument("--baseline", choices=("bicubic",), help="non-learned baseline (sr)")
    parser.add_argument("--input", help="HxW the network sees (depth, seg, cls; see above)")
    parser.add_argument(
        "--scale",
        type=scale_number(),
        help="sr factor: 2, 3 or 4 (default: the checkpoint's or the exported model's, else 2)",
    )
    parser.add_argument(
        "--batch-size", type=number(int, above=0), default=8, help="images per forward pass"
    )
    parser.add_argument(
        "--torch-threads",
        type=number(int, minimum=1, choices_text="at least 1"),
        help="torch threads (default: min(2, cores))",
    )
    parser.add_argument(
        "--accelerator",
        default="auto",
        help="where a checkpoint runs: auto (CUDA when present), cpu or cuda[:N] "
        "(ONNX models run in onnxruntime on the CPU)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the metrics to this JSON file ('-': standard output, which then "
        "holds only the JSON; the summary goes to standard error)",
    )
    parser.set_defaults(func=run)


def _auto_split(task, data: str | None) -> str:
    """``val`` when the layout has a validation split, else ``all`` (e.g. Set5)."""
    if data is None:
        return "val"
    root = Path(data)
    has_val = any((root / n).is_dir() for n in ("val", "valid", "valannot", "test"))
    has_val |= (root / "leftImg8bit" / "val").is_dir()
    has_val |= any(root.glob("*valid*_HR"))
    return "val" if has_val else "all"


def _check_arguments(args: argparse.Namespace) -> tuple[tuple[int, ...] | None, int | None]:
    """Everything that can be checked without loading torch, a runtime or data.

    Returns --input as (H, W) and the sr scale: --scale, else the one an exported ONNX
    model records (None when neither says).
    """
    from edgenas.parsing import check_input_fits, parse_shape

    task = parse_task(args.task)
    if args.json is not None and args.json != "-":
        check_output_file(args.json, "--json")
    if args.baseline and task != "sr":
        raise UserError("--baseline bicubic is for --task sr only")
    size = None
    if args.input is not None:
        if task == "sr":
            raise UserError(
                "--input does not apply to --task sr: super-resolution images are evaluated "
                "whole, at their own size; drop --input"
            )
        size = parse_shape(args.input, ndim=2)
        check_input_fits((args.batch_size, 3, *size), "--input")
    exported = args.onnx or args.openvino
    if args.onnx and exported.endswith(".xml"):
        raise UserError(f"{exported} is an OpenVINO IR: evaluate it with --openvino")
    if args.openvino and not exported.endswith(".xml"):
        raise UserError(f"--openvino takes an IR .xml file, not {exported}; ONNX: --onnx")
    if exported:
        check_model_file(exported)
        if Path(exported).stat().st_size == 0:
            raise UserError(f"model file {exported} is empty; export it again")
    scale = args.scale
    if args.onnx:
        scale = _exported_scale(read_onnx(args.onnx), args.onnx, task, scale)
    return size, scale


def _exported_scale(metadata: dict, exported: str, task: str, scale: int | None) -> int | None:
    """The task and scale an `edgenas export` file records (``metadata``) must agree
    with the command line; the recorded scale is the default."""
    recorded = metadata.get("edgenas.task")
    if recorded is not None and recorded != task:
        raise UserError(
            f"{exported} was exported for task {recorded} (its edgenas metadata says so), "
            f"not {task}; evaluate it with --task {recorded}"
        )
    stored = metadata.get("edgenas.task.scale")
    if task != "sr" or stored is None or not stored.isdigit():
        return scale
    if scale is not None and scale != int(stored):
        raise UserError(f"{exported} upscales x{stored}, not x{scale}; drop --scale")
    return int(stored)


def _summary_stream(args: argparse.Namespace):
    """Where the human-readable lines go: stderr when the JSON takes stdout."""
    import sys

    return sys.stderr if args.json == "-" else sys.stdout


def run(args: argparse.Namespace) -> int:
    size, scale = _check_arguments(args)

    from edgenas.inference import load_predictor
    from edgenas.tasks import get_task
    from edgenas.tasks.baselines import BicubicUpscaler
    from edgenas.tasks.runner import (
        format_metrics,
        json_text,
        open_for_cli,
        set_threads,
        write_json,
    )
    from edgenas.training import evaluate, load_checkpoint, model_from_checkpoint

    task = get_task(args.task)
    set_threads(args.torch_threads)
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint)
        model = model_from_checkpoint(ckpt)
        spec = ckpt["model_spec"]
        if spec["task"] != task.name:
            raise UserError(
                f"checkpoint {args.checkpoint} is for task {spec['task']}, not {task.name}"
            )
        if task.name == "sr":
            trained = spec["options"].get("scale")
            if scale is not None and scale != trained:
                raise UserError(f"checkpoint was trained for x{trained}, not x{scale}")
            scale = trained
        if size is None and "input" in ckpt.get("extra", {}) and task.name != "sr":
            size = tuple(ckpt["extra"]["input"])
        source = f"checkpoint {args.checkpoint}"
    elif args.onnx or args.openvino:
        exported = args.onnx or args.openvino
        model = load_predictor(exported)
        fixed = model.fixed_hw
        if fixed is not None and task.name != "sr":
            if size is not None and tuple(size) != tuple(fixed):
                raise UserError(
                    f"{exported} takes a fixed {fixed[0]}x{fixed[1]} input, so --input "
                    f"{size[0]}x{size[1]} cannot apply; export a model with dynamic height "
                    "and width (`edgenas export --checkpoint CKPT`) or drop --input"
                )
            size = fixed
        source = f"ONNX {exported}" if args.onnx else f"OpenVINO IR {exported}"
    else:
        model = BicubicUpscaler(scale or 2)
        source = "bicubic baseline"
    scale = scale or 2
    if args.baseline:
        model.scale = scale

    split = _auto_split(task, args.data) if args.split == "auto" else args.split
    data = open_for_cli(
        task, args.data, split, fmt=args.fmt, size=None, scale=scale, train=False, patch=48
    )
    info = data.info
    if args.checkpoint and task.name in ("segmentation", "classification"):
        classes = spec["options"].get("num_classes")
        if classes != info.num_classes:
            raise UserError(
                f"checkpoint predicts {classes} classes but {info.root} has {info.num_classes}"
            )
    if args.checkpoint:
        from edgenas.accelerator import resolve_accelerator

        model.to(resolve_accelerator(args.accelerator, "fp32").device)
    metrics = evaluate(model, task, data, batch_size=args.batch_size, input_size=size)
    where = f"{info.root} ({info.format}, split {split}, {len(data)} images"
    if task.name == "sr":
        where += f", x{scale})"
    elif size is not None:
        where += f", input resized to {size[0]}x{size[1]}, scored at full resolution)"
    else:
        where += ", at full resolution)"
    summary = _summary_stream(args)
    print(f"{task.name}: {source} on {where}", file=summary)
    print(
        f"{format_metrics(metrics)}  (normalised accuracy {task.normalised_accuracy(metrics):.4f})",
        file=summary,
    )
    if args.json:
        report = {
            "task": task.name,
            "source": source,
            "data": info.root,
            "format": info.format,
            "split": split,
            "images": len(data),
            "scale": scale if task.name == "sr" else None,
            "input": list(size) if task.name != "sr" and size is not None else None,
            "metrics": metrics,
            "normalised_accuracy": task.normalised_accuracy(metrics),
        }
        if args.json == "-":
            print(json_text(report), end="")
        else:
            try:
                write_json(report, args.json)
            except OSError as err:  # a full disk: name the file, not its temporary twin
                err.filename = args.json
                raise
            print(f"wrote {args.json}")
    return 0
