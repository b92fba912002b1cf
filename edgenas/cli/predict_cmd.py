"""``edgenas predict`` and ``edgenas devices calibrate``: the latency lookup table."""

from __future__ import annotations

import argparse
import json
import sys

from edgenas.cli.common import add_command, check_output_file, parse_input_shape, parse_list
from edgenas.cli.json_flag import add_json_flag
from edgenas.cli.profile_cmd import add_threads_argument
from edgenas.errors import UserError
from edgenas.parsing import check_input_fits, number, scale_number, scales_text

# More calibration networks than this would take days on a phone; a typo, not a plan.
MAX_NETWORKS = 10_000
# Default network counts: the kernel model learns from every kernel of a network
# (about 250 each), the parts table only from its blocks' keys.
DEFAULT_NETWORKS = {"kernels": 60, "parts": 25}


def _table_arguments(parser: argparse.ArgumentParser) -> None:
    add_threads_argument(parser)
    parser.add_argument(
        "--table",
        default=None,
        help="table file (default ~/.cache/edgenas/latency/DEVICE-tN.json with N = --threads, "
        "the file `edgenas search --device DEVICE --threads N` fills too)",
    )
    parser.add_argument("--devices-file", default=None, help="user device catalog")
    parser.add_argument(
        "--serial", default=None, help="adb serial when several phones are connected"
    )
    parser.add_argument(
        "--task", default="depth", help="task head (depth, segmentation, sr, classification)"
    )


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "predict",
        help="predict a genotype's latency on a device from its latency table",
        description=(
            "With a kernel calibration (host runtimes): the runtime optimises the network's\n"
            "graph and lists the kernels it executes; each kernel's time comes from the\n"
            "device's learned per-type model, plus a calibrated overhead. Otherwise: the sum\n"
            "of per-block latencies measured on the device plus an overhead term; blocks\n"
            "missing from the table are measured first and kept (--no-measure refuses).\n"
            "Build the predictor with `edgenas devices calibrate DEVICE`."
        ),
        epilog=(
            "examples:\n"
            "  edgenas devices calibrate cpu --input 240x320 --n 25\n"
            '  edgenas predict --device cpu --genotype "$(edgenas space sample --n 1)" --input 240x320\n'
            "  edgenas predict --device cpu --genotype STR --input 240x320 --measure   also measure it"
        ),
    )
    parser.add_argument("--device", default="cpu", help="device name")
    parser.add_argument("--genotype", required=True, help="genotype string")
    parser.add_argument("--input", default="240x320", help="input HxW (or NxCxHxW)")
    _table_arguments(parser)
    parser.add_argument(
        "--scale",
        type=scale_number(),
        default=None,
        help=f"super-resolution factor of the head ({scales_text()}; --task sr only; default 2)",
    )
    parser.add_argument(
        "--no-measure", action="store_true", help="fail instead of measuring missing blocks"
    )
    parser.add_argument(
        "--measure", action="store_true", help="also measure the whole network and compare"
    )
    add_json_flag(parser, "print JSON")
    parser.set_defaults(func=run_predict)


def register_calibrate(actions) -> None:
    """`edgenas devices calibrate` (registered from devices_cmd)."""
    calibrate = add_command(
        actions,
        "calibrate",
        help="build the device's latency predictor from random networks",
        description=(
            "Sample N random genotypes and measure them. --method kernels (the default on\n"
            "host runtimes: cpu, openvino-*): read the kernels the runtime executes after\n"
            "graph optimisation (fused convolutions, layout reorders ...) and their times\n"
            "from its profiler, fit one gradient-boosted model per kernel type on shape\n"
            "features, and spend the last --adaptive share of N on mutants of the networks\n"
            "predicted worst. Every network is timed in interleaved rounds (min of session\n"
            "medians), so a burst of load on the machine is skipped. --method parts (phones):\n"
            "measure every block alone at its real input shape and fit an overhead term.\n"
            "The table is stored per device and thread count and reused (and extended) by\n"
            "later calibrations and searches."
        ),
        epilog=(
            "examples:\n"
            "  edgenas devices calibrate cpu --input 240x320            60 networks, kernels\n"
            "  edgenas devices calibrate openvino-cpu --n 80 --adaptive 0.4\n"
            "  edgenas devices calibrate pixel3a --input 240x320 --n 20 --seed 1   parts"
        ),
    )
    calibrate.add_argument("device", help="device name")
    calibrate.add_argument("--space", default="ldp", choices=["ldp"], help="search space")
    calibrate.add_argument("--input", default="240x320", help="input HxW (or NxCxHxW)")
    calibrate.add_argument(
        "--n",
        type=number(int, minimum=1, maximum=MAX_NETWORKS),
        default=None,
        help="networks to measure (default 60 with kernels, 25 with parts)",
    )
    calibrate.add_argument(
        "--method",
        choices=["kernels", "parts"],
        default=None,
        help="kernels: learned per-kernel models (host runtimes, the default there); "
        "parts: a table of blocks measured alone (every device, the default on phones)",
    )
    calibrate.add_argument(
        "--adaptive",
        type=number(float, minimum=0, maximum=0.9),
        default=0.3,
        help="share of N spent on mutants of the worst-predicted networks (kernels; 0-0.9)",
    )
    calibrate.add_argument("--seed", type=number(int, minimum=0), default=0, help="sampling seed")
    calibrate.add_argument("--scales", default="2,3", help="scale counts to sample from")
    _table_arguments(calibrate)
    add_json_flag(calibrate, "print the summary as JSON")
    calibrate.set_defaults(func=run_calibrate)


def _input_shape(text: str) -> tuple[int, ...]:
    """--input as NCHW, refused in one line when it cannot fit this machine's memory."""
    shape = parse_input_shape(text)
    check_input_fits(shape, "--input")
    return shape


def _open_table(args: argparse.Namespace):
    """The device's catalog entry and latency table, both checked before torch loads.

    --table must be a file that can be written; an existing table must be readable and
    belong to this device and thread count.
    """
    from edgenas.devices.catalog import load_catalog
    from edgenas.devices.predictor import LatencyTable, table_threads

    entry = load_catalog(args.devices_file).get(args.device)
    if args.table is not None:
        check_output_file(args.table, "--table")
    return entry, LatencyTable.open(
        entry.name, table_threads(entry.threads, args.threads), args.table
    )


def _measurer(args: argparse.Namespace, entry, table, log):
    from edgenas.latency_table import Measurer

    options = {"serial": args.serial} if entry.backend == "adb" and args.serial else {}
    return Measurer(entry, threads=args.threads, table=table, backend_options=options, log=log)


def run_calibrate(args: argparse.Namespace) -> int:
    from edgenas.cli.common import parse_task
    from edgenas.space.ldp import LDPSpace

    scales = parse_list(args.scales, "--scales")
    entry, table = _open_table(args)
    from edgenas.latency_table import KERNEL_BACKENDS

    method = args.method or ("kernels" if entry.backend in KERNEL_BACKENDS else "parts")
    if method == "kernels" and entry.backend not in KERNEL_BACKENDS:
        raise UserError(
            f"--method kernels needs a host runtime (onnxruntime or openvino); {entry.name} "
            f"runs through {entry.backend}: use --method parts"
        )
    count = args.n or DEFAULT_NETWORKS[method]
    try:
        genotypes = LDPSpace().sample_unique(count, args.seed, scales=scales)
    except ValueError as err:
        raise UserError(f"bad --scales {args.scales!r}: {err}") from None
    task = parse_task(args.task)
    shape = _input_shape(args.input)
    # torch: only once the input is known good
    from edgenas.latency_table import calibrate, calibrate_kernels

    quiet = args.json
    log = None if quiet else lambda m: sys.stderr.write(m + "\n")
    measurer = _measurer(args, entry, table, log)
    try:
        if method == "kernels":
            summary = calibrate_kernels(
                measurer, genotypes, task, shape, adaptive=args.adaptive, seed=args.seed
            )
        else:
            summary = calibrate(measurer, genotypes, task, shape)
    finally:
        measurer.close()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    if method == "kernels":
        acc, over = summary["cross_validated"], summary["overhead"]
        print(
            f"calibrated {summary['device']} on {summary['networks']} networks in "
            f"{summary['seconds']:.0f} s: {summary['kernel_samples']} kernel samples of "
            f"{summary['kernel_types']} types"
        )
        print(
            f"overhead: {over['scale']:.3f} x kernels + {over['offset_ms']:.3f} ms + "
            f"{over['per_kernel_ms'] * 1000:.2f} us per kernel"
        )
        if acc:
            print(
                f"cross-validated: {acc['within_10pct']:.0%} within 10%, MAPE {acc['mape']:.1%}, "
                f"Kendall tau {acc['kendall_tau']:.3f}"
            )
        print(f"table: {summary['table']}")
        return 0
    acc, over = summary["in_sample"], summary["overhead"]
    print(
        f"calibrated {summary['device']} on {summary['networks']} networks in {summary['seconds']:.0f} s: "
        f"{summary['new_parts']} new parts, {summary['table_parts']} in table"
    )
    print(
        f"overhead: {over['scale']:.3f} x parts + {over['offset_ms']:.3f} ms + "
        f"{over['concat_ms_per_melem']:.3f} ms per M concat elements"
    )
    print(
        f"in-sample: {acc['within_10pct']:.0%} within 10%, MAPE {acc['mape']:.1%}, "
        f"Kendall tau {acc['kendall_tau']:.3f}"
    )
    print(f"table: {summary['table']}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from edgenas.cli.common import parse_genotype, parse_task

    genotype = parse_genotype(args.genotype)
    task = parse_task(args.task)
    if genotype.layout == "paper" and task != "sr":
        raise UserError(
            f"{genotype.header}: genotypes (the super-resolution upsample layout) are "
            f"networks of --task sr, not {task}; add --task sr"
        )
    if args.scale is not None and task != "sr":
        raise UserError(f"--scale applies to --task sr only (the task is {task}); drop it")
    task_options = {"scale": args.scale} if args.scale is not None else None
    shape = _input_shape(args.input)
    entry, table = _open_table(args)
    # torch: only once the input is known good
    from edgenas.latency_table import predict_latency, timing_model

    measurer = _measurer(args, entry, table, None)
    try:
        if not measurer.table.calibration and not measurer.uses_kernels:
            sys.stderr.write(
                f"edgenas: warning: no calibration for {args.device} yet; the overhead term is 0 "
                f"(run `edgenas devices calibrate {args.device}`)\n"
            )
        try:
            predicted = predict_latency(
                genotype,
                task,
                shape,
                measurer,
                measure_missing=not args.no_measure,
                task_options=task_options,
            )
        except KeyError as err:
            raise UserError(
                f"block {err.args[0]} is not in the {args.device} table; drop --no-measure to measure it"
            ) from None
        measured = None
        if args.measure and measurer.uses_kernels:
            # Timed like the kernel model's calibration networks (fastest run of
            # interleaved rounds), so the comparison is like with like.
            from edgenas.latency_table import measure_kernels

            named = [(genotype.encode(), timing_model(genotype, task, task_options))]
            measured = measure_kernels(measurer, named, shape, kernels=False)[0][1]
        elif args.measure:
            measured = measurer.measure_network(timing_model(genotype, task, task_options), shape)
    finally:
        measurer.close()
    data = {
        "device": args.device,
        "genotype": genotype.encode(),
        "task": task,
        "scale": (args.scale or 2) if task == "sr" else None,
        "input": list(shape),
        "predicted_ms": predicted,
        "method": "kernels" if measurer.uses_kernels else "parts",
        "measured_ms": measured,
        "new_parts": measurer.measured_parts,
        "table": str(measurer.table.path),
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    head = f"{task} x{data['scale']}" if task == "sr" else task
    line = f"predicted {predicted:.2f} ms on {args.device} ({data['method']}, {head} head)"
    if measured is not None:
        line += f"; measured {measured:.2f} ms ({(predicted - measured) / measured:+.1%})"
    print(line)
    if measurer.measured_parts:
        print(
            f"({measurer.measured_parts} new block(s) measured and added to {measurer.table.path})"
        )
    return 0
