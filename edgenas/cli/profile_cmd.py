"""``edgenas profile``: measure an ONNX model (or a genotype) on a device."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from edgenas.cli.common import (
    add_command,
    check_output_file,
    parse_genotype,
    parse_input_shape,
    parse_task,
)
from edgenas.cli.model_args import add_model_arguments, model_from_args
from edgenas.devices.catalog import MAX_COOLDOWN_S, MAX_THREADS
from edgenas.devices.precision import PRECISIONS, unsupported_reason
from edgenas.errors import UserError
from edgenas.parsing import check_input_fits, number

# Upper bounds of the protocol options: far above any useful measurement, low enough
# that a typo (--runs 5000000) is refused instead of running for days. Timed runs are
# also what Protocol.max_runs caps a --min-time session at.
MAX_RUNS = 100_000
MAX_SESSIONS = 1000
MAX_SECONDS = 3600.0

EPILOG = """\
examples:
  edgenas profile model.onnx                               host CPU, 1 thread
  edgenas profile model.onnx --device openvino-cpu --layers
  edgenas profile model.xml --device openvino-cpu --input 1x3x360x480   OpenVINO IR
  edgenas profile runs/search/best.pt                      a trained checkpoint
  edgenas profile model.onnx --device pixel3a --runs 100 --json pixel3a.json
  edgenas profile --genotype "$(edgenas space sample --n 1)" --task depth --input 1x3x240x320
  edgenas profile model.onnx --json - | jq .timings.median_ms

The headline figure is the median of the session medians. Android devices need a
runner first: `edgenas devices setup pixel3a --runner PATH/onnxruntime_perf_test`.
"""


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The measurement options shared by `profile` and `devices calibrate`.

    Every number is range-checked while the command line is parsed, so a bad value is
    one line naming the option before anything is loaded or measured.
    """
    group = parser.add_argument_group("measurement protocol")
    group.add_argument(
        "--runs",
        type=number(int, minimum=1, maximum=MAX_RUNS),
        default=50,
        help="timed runs per session",
    )
    group.add_argument(
        "--warmup",
        type=number(int, minimum=0, maximum=MAX_RUNS),
        default=10,
        help="warm-up runs per session",
    )
    group.add_argument(
        "--sessions",
        type=number(int, minimum=1, maximum=MAX_SESSIONS),
        default=3,
        help="separate sessions",
    )
    group.add_argument(
        "--min-time",
        type=number(float, minimum=0, maximum=MAX_SECONDS),
        default=0.0,
        help="keep timing until at least this many seconds",
    )
    group.add_argument(
        "--cooldown",
        type=number(float, minimum=0, maximum=MAX_COOLDOWN_S),
        default=None,
        help="seconds between sessions (default: the device entry's cooldown_s)",
    )
    add_threads_argument(group)


def add_threads_argument(parser) -> None:
    """``--threads N`` (1 to the catalog's limit); `predict` and `calibrate` use it too."""
    parser.add_argument(
        "--threads",
        type=number(int, minimum=1, maximum=MAX_THREADS),
        default=None,
        help="intra-op threads (default: device entry's)",
    )


def add_device_arguments(parser: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    """--device, --devices-file and --serial."""
    parser.add_argument("--device", default=default, help="device name from `edgenas devices list`")
    parser.add_argument(
        "--devices-file",
        default=None,
        help="user device catalog (default ~/.config/edgenas/devices.toml)",
    )
    parser.add_argument(
        "--serial", default=None, help="adb serial of the phone when several are connected"
    )


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "profile",
        help="measure the latency of an ONNX model (or a genotype) on a device",
        description=(
            "Measure an ONNX model (or OpenVINO IR, or checkpoint) on a device: warm-up, timed\n"
            "runs and several sessions, raw samples kept. Per session and overall (pooled):\n"
            "p50/p90/p95/p99/max, mean, MAD, CV, throughput, load (compile) time, first\n"
            "inference, peak memory; a warning when the sessions spread beyond 10%. --layers\n"
            "adds per-layer, per-operator-type and per-block shares. Prints tables; --json\n"
            "writes the full edgenas.latency/v1 result (docs/devices.md lists its fields)."
        ),
        epilog=EPILOG,
    )
    parser.add_argument(
        "model",
        nargs="?",
        help="ONNX file, OpenVINO IR (.xml beside its .bin; OpenVINO devices), or a "
        "checkpoint (.pt from `edgenas train`, a search's best.pt: exported on the fly at "
        "--input, default its deploy size); or use --genotype",
    )
    add_device_arguments(parser)
    add_protocol_arguments(parser)
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also report per-layer times, totals per operator type and per searched block",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="measure at this precision (default: as the file is stored). int8 of a float "
        "model quantizes it on the fly with random calibration (latency only; "
        "`edgenas export --quantize int8` makes the deployable one); fp16 needs a "
        "runtime with fp16 kernels (an OpenVINO plugin listing FP16)",
    )
    parser.add_argument(
        "--json", metavar="OUT", default=None, help="write JSON here; '-' = stdout only"
    )
    group = parser.add_argument_group(
        "profile a genotype (exported on the fly, with the head that --task and its options give)"
    )
    add_model_arguments(group, genotype_required=False)
    group.add_argument(
        "--input", default=None, help="input shape, e.g. 1x3x240x320 (required with --genotype)"
    )
    parser.set_defaults(func=run_profile)


def protocol_from_args(args: argparse.Namespace, entry):
    """Protocol from the CLI options, cooldown defaulting to the device entry's."""
    from edgenas.devices.protocol import Protocol

    cooldown = entry.cooldown_s if args.cooldown is None else args.cooldown
    return Protocol(
        warmup_runs=args.warmup,
        runs=args.runs,
        min_time_s=args.min_time,
        sessions=args.sessions,
        cooldown_s=cooldown,
    )


def backend_options(args: argparse.Namespace, entry) -> dict:
    options = {"serial": args.serial} if entry.backend == "adb" and args.serial else {}
    if getattr(args, "precision", None):
        options["precision"] = args.precision
    return options


def check_model_file(path: str) -> None:
    """The model argument must be an existing file (a folder or a typo is one line)."""
    model = Path(path)
    if model.is_dir():
        raise UserError(f"model {path} is a folder; give an .onnx (or .xml, .pt) file")
    if not model.is_file():
        raise UserError(f"model file {path} not found")


def run_profile(args: argparse.Namespace) -> int:
    from edgenas.devices.catalog import load_catalog
    from edgenas.devices.profile import profile_model
    from edgenas.devices.result import write_atomic

    # Everything the command line alone decides is checked here, before a model is
    # exported or a device is touched.
    if (args.model is None) == (args.genotype is None):
        raise UserError("give either an ONNX file or --genotype STR (with --task and --input)")
    catalog = load_catalog(args.devices_file)
    entry = catalog.get(args.device)
    protocol = protocol_from_args(args, entry)
    if args.precision is not None:
        reason = unsupported_reason(entry.backend, args.precision)
        if reason is not None:
            raise UserError(f"--precision {args.precision} on {entry.name}: {reason}")
    if args.layers and entry.backend == "adb":
        raise UserError(
            f"device {entry.name} cannot report per-layer times (its runner prints totals "
            "only); drop --layers or profile on cpu / openvino-cpu"
        )
    shape = None
    if args.input is not None:
        shape = parse_input_shape(args.input)
        check_input_fits(shape, "--input")
    if args.genotype is not None:
        if shape is None:
            raise UserError("--genotype needs --input, e.g. --input 1x3x240x320")
        parse_genotype(args.genotype)
        parse_task(args.task)
    else:
        check_model_file(args.model)
    if args.json not in (None, "-"):
        check_output_file(args.json, "--json")
    quiet = args.json == "-"
    with tempfile.TemporaryDirectory(prefix="edgenas-profile-") as tmp:
        input_shapes = None
        if args.genotype is not None:
            model_path = _export_genotype(args, Path(tmp))
        elif str(args.model).endswith(".pt"):
            model_path, input_shapes = _export_checkpoint(args, Path(tmp))
        else:
            model_path = args.model
            if shape is not None:
                from edgenas.devices.modelinfo import shapes_for_single_input

                input_shapes = shapes_for_single_input(model_path, shape)
        source_path = model_path
        model_path = _at_precision(model_path, args.precision, input_shapes, Path(tmp), quiet)

        def progress(i, timings):
            if not quiet:
                sys.stderr.write(
                    f"session {i + 1}/{protocol.sessions}: median {timings.median:.3f} ms\n"
                )

        result = profile_model(
            model_path,
            entry,
            protocol,
            threads=args.threads,
            layers=args.layers,
            input_shapes=input_shapes,
            backend_options=backend_options(args, entry),
            on_session=progress,
        )
        if args.genotype is not None:
            result.model["genotype"] = args.genotype.strip()
            result.model["task"] = args.task
        if model_path != source_path:
            # The file the user gave identifies the result; the int8 copy was temporary.
            from edgenas.devices.modelinfo import sha256_file

            result.model["path"] = str(source_path)
            result.model["sha256"] = sha256_file(source_path)
            result.model["size_bytes"] = Path(source_path).stat().st_size
            result.model["quantized"] = ON_THE_FLY
    print_warnings(result)
    if args.json == "-":
        sys.stdout.write(result.to_json() + "\n")
        return 0
    print_result(result)
    if args.json:
        write_atomic(args.json, result.to_json() + "\n")
        print(f"wrote {args.json}")
    return 0


# What result.model["quantized"] says of a model quantized by `profile --precision int8`.
ON_THE_FLY = "int8 on the fly, random calibration (latency only)"


def _at_precision(model_path, precision, input_shapes, folder: Path, quiet: bool) -> str:
    """The file to measure for ``--precision``: the model itself, or (int8 asked of a
    float model) an int8 copy quantized on the fly in ``folder``.

    Random calibration inputs give the right int8 graph and kernels, hence the right
    latency; the accuracy of such a model means nothing, which the output says.
    """
    if precision is None:
        return model_path
    from edgenas.devices.modelinfo import inspect_model
    from edgenas.devices.precision import check_model_precision

    info = inspect_model(model_path, input_shapes)
    check_model_precision(info.precision, precision)
    if precision != "int8" or info.precision == "int8":
        return model_path
    if len(info.inputs) != 1:
        raise UserError(
            f"{model_path} has {len(info.inputs)} inputs; --precision int8 quantizes "
            "single-input models only (quantize it with `edgenas export --quantize int8`)"
        )
    from edgenas.quantize import quantize_onnx, quantize_openvino, random_batches

    if not quiet:
        sys.stderr.write("quantizing to int8 (random calibration: latency only)\n")
    batches = random_batches(4, info.inputs[0].shape)
    if Path(model_path).suffix == ".xml":
        quantized = folder / "int8.xml"
        quantize_openvino(model_path, quantized, batches)
    else:
        quantized = folder / "int8.onnx"
        quantize_onnx(model_path, quantized, batches)
    return str(quantized)


def _export_checkpoint(args: argparse.Namespace, folder: Path):
    """A checkpoint's trained network as a verified ONNX file, with its input shape."""
    from edgenas.checkpoint import load_checkpoint, model_from_checkpoint
    from edgenas.cli.export_cmd import stored_size, validation_example
    from edgenas.export import export_onnx

    ckpt = load_checkpoint(args.model)
    model = model_from_checkpoint(ckpt).eval()
    shape = parse_input_shape(args.input) if args.input else (1, 3, *stored_size(ckpt))
    path = folder / (Path(args.model).stem + ".onnx")
    example, _note = validation_example(ckpt, model.task, shape)
    export_onnx(model, shape, path, example=example)
    return str(path), None


def _export_genotype(args: argparse.Namespace, folder: Path) -> str:
    """The genotype's network (head options from the flags) as a verified ONNX file."""
    from edgenas.latency_table import export_model

    model = model_from_args(args).eval()
    path = folder / "genotype.onnx"
    export_model(model, parse_input_shape(args.input), path, verified=True)
    return str(path)


def _ms(value: float | None) -> str:
    """A time in ms with 3 significant decimals at most, so columns stay narrow."""
    if value is None:
        return "-"
    return format(value, ".1f" if value >= 100 else ".2f" if value >= 10 else ".3f")


def print_warnings(result) -> None:
    """The result's warnings, one line each on stderr (also in the JSON)."""
    for warning in result.warnings:
        sys.stderr.write(f"edgenas: warning: {warning}\n")


def print_result(result, console=None) -> None:
    """Readable summary of a LatencyResult (rich tables that fit 80 columns)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    data = result.to_dict()
    device, runtime, timings = data["device"], data["runtime"], data["timings"]
    console.print(
        f"[bold]{Path(data['model']['path']).name}[/bold] on [bold]{device['name']}[/bold] "
        f"({device['kind']}): {runtime['name']} {runtime['version']}, {runtime['provider']}, "
        f"{runtime['threads']} thread(s), {runtime['precision']}"
    )
    table = Table(
        "#", "runs", "median", "p90", "p99", "max", "CV", "load", "first",
        title="sessions (ms)", box=box.SIMPLE_HEAD, pad_edge=False,
    )  # fmt: skip
    for i, s in enumerate(result.sessions, 1):
        cv = "-" if s.cv is None else f"{s.cv:.1%}"
        table.add_row(
            str(i), str(s.n), _ms(s.median), _ms(s.p90), _ms(s.p99), _ms(s.max), cv,
            _ms(s.load_ms), _ms(s.first_ms),
        )  # fmt: skip
    console.print(table)
    pooled = timings["pooled_samples"]
    if pooled:
        console.print(
            f"overall ({pooled} samples): p50 {_ms(timings['p50_ms'])}  "
            f"p90 {_ms(timings['p90_ms'])}  p95 {_ms(timings['p95_ms'])}  "
            f"p99 {_ms(timings['p99_ms'])}  max {_ms(timings['max_ms'])} ms"
        )
    console.print(_once_line(timings))
    console.print(
        f"latency: [bold]{timings['median_ms']:.3f} ms[/bold] (median of {len(result.sessions)} "
        f"session medians; spread {timings['session_spread']:.1%}, "
        f"tolerance {timings['spread_tolerance']:.0%})"
    )
    if result.layers:
        print_layers(data, console)


def _once_line(timings: dict) -> str:
    """Throughput, load, first inference and peak memory in one line."""
    parts = []
    if timings["throughput_ips"] is not None:
        parts.append(f"throughput {timings['throughput_ips']:.1f}/s")
    parts.append(f"load {_ms(timings['load_ms'])} ms")
    parts.append(f"first inference {_ms(timings['first_inference_ms'])} ms")
    memory = timings["peak_memory_mb"]
    if memory is None:
        parts.append("memory unknown")
    elif "runner" in (timings["memory_source"] or ""):
        parts.append(f"memory {memory:.1f} MB (runner peak)")
    else:
        parts.append(f"memory +{memory:.1f} MB")
    return ", ".join(parts)


def print_layers(data: dict, console) -> None:
    """Per-operator-type and per-block tables, then the slowest layers."""
    from rich import box
    from rich.table import Table

    summary = data["layer_summary"]
    ops = Table(
        "op type", "count", "ms", "share",
        title=f"per operator type (layers total {_ms(summary['total_ms'])} ms)",
        box=box.SIMPLE_HEAD,
    )  # fmt: skip
    for op in summary["op_types"]:
        ops.add_row(op["op_type"], str(op["count"]), _ms(op["total_ms"]), f"{op['share']:.1%}")
    console.print(ops)
    if summary["blocks"] is not None:
        blocks = Table(
            "#", "block", "layers", "ms", "share", title="per block", box=box.SIMPLE_HEAD
        )
        for block in summary["blocks"]:
            index = "-" if block["index"] is None else str(block["index"])
            blocks.add_row(
                index, block["name"], str(block["layers"]), _ms(block["total_ms"]),
                f"{block['share']:.1%}",
            )  # fmt: skip
        console.print(blocks)
    layers = Table("layer", "op", "ms", "share", title="slowest layers", box=box.SIMPLE_HEAD)
    for layer in data["layers"][:15]:
        layers.add_row(
            layer["name"], layer["op_type"], _ms(layer["time_ms"]), f"{layer['share']:.1%}"
        )
    console.print(layers)
