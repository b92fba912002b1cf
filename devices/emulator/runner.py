"""A host stand-in for ``onnxruntime_perf_test``: same command line (the subset edgenas
uses), real onnxruntime timings on this machine, and perf_test's summary format.

It is what ``edgenas devices setup`` pushes to the emulated phone; see
:func:`write_runner_script`.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from edgenas.errors import UserError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onnxruntime_perf_test")
    parser.add_argument("-m", dest="mode", default="duration", choices=["duration", "times"])
    parser.add_argument("-r", dest="repeat", type=int, default=1000)
    parser.add_argument("-t", dest="seconds", type=float, default=600)
    parser.add_argument("-x", dest="intra", type=int, default=0)
    parser.add_argument("-y", dest="inter", type=int, default=0)
    parser.add_argument("-o", dest="opt", type=int, default=99)
    parser.add_argument("-e", dest="provider", default="cpu")
    parser.add_argument("-I", dest="generate", action="store_true")
    parser.add_argument("-s", dest="statistics", action="store_true")
    parser.add_argument("model")
    parser.add_argument("result_file", nargs="?")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the model like perf_test does and print its summary."""
    import numpy as np
    import onnxruntime as ort

    args = _parser().parse_args(argv)
    if not Path(args.model).is_file():
        print(f"Model path '{args.model}' does not exist", file=sys.stderr)
        return 1
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(args.intra, 0)
    opts.inter_op_num_threads = max(args.inter, 0)
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    levels = {
        0: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        1: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        2: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }
    opts.graph_optimization_level = levels.get(args.opt, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    t0 = time.perf_counter()
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    created = time.perf_counter() - t0
    feeds = {}
    for value in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
        feeds[value.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t0 = time.perf_counter()
    session.run(None, feeds)
    first = time.perf_counter() - t0
    costs = []
    cpu_start = os.times()
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        session.run(None, feeds)
        costs.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if args.mode == "times" and len(costs) >= args.repeat:
            break
        if args.mode == "duration" and elapsed >= args.seconds:
            break
    total = sum(costs)
    # Process CPU time over wall time and cores, and the peak RSS in bytes, as
    # perf_test's posix utils measure them (getrusage).
    cpu = os.times()
    used = cpu.user + cpu.system - cpu_start.user - cpu_start.system
    usage = used / max(elapsed, 1e-9) / (os.cpu_count() or 1) * 100
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    # Line format of onnxruntime/test/perftest/performance_runner.cc (ORT 1.1x).
    print(f"Session creation time cost: {created:g} s")
    print(f"First inference time cost: {int(first * 1000)} ms")
    print(f"Total inference time cost: {total:g} s")
    print(f"Total inference requests: {len(costs)}")
    print(f"Average inference time cost: {total / len(costs) * 1000:g} ms")
    print(f"Total inference run time: {elapsed:g} s")
    print(f"Number of inferences per second: {len(costs) / elapsed:g} ")
    print(f"Avg CPU usage: {usage:.0f} %")
    print(f"Peak working set size: {peak} bytes")
    _dump_result(args, costs, peak, round(usage))
    return 0


def _dump_result(args, costs: list[float], peak: int, usage: int) -> None:
    """perf_test's PerformanceResult::DumpToFile: with a result file, one
    ``model,seconds,peak,cpu,run`` line per timed run appended to it (and with ``-s``
    the statistics after a blank line); without one, a short summary. The statistics
    go to stdout with ``-s`` or when there is no result file (their default then)."""
    statistics_on = args.statistics or args.result_file is None
    out = None
    if args.result_file is not None:
        try:
            out = open(args.result_file, "a")  # noqa: SIM115 (closed below)
        except OSError:
            print(f"failed to open result file '{args.result_file}'. will dump stats to output.")
            statistics_on = True
    if out is not None:
        # perf_test names the run after the model's folder ("test_" prefix dropped).
        name = Path(args.model).resolve().parent.name.removeprefix("test_")
        for run, cost in enumerate(costs):
            out.write(f"{name},{cost:g},{peak},{usage},{run}\n")
    else:
        print(f"Avg CPU usage:{usage}\nPeak working set size:{peak}\nRuns:{len(costs)}")
    if statistics_on:
        ordered = sorted(costs)
        total = len(ordered)
        stats = (
            f"Min Latency: {ordered[0]:g} s\n"
            f"Max Latency: {ordered[-1]:g} s\n"
            # perf_test's percentile: the sorted value at index int(total * q).
            + "".join(
                f"{label} Latency: {ordered[int(total * q)]:g} s\n"
                for label, q in (("P50", 0.5), ("P90", 0.9), ("P95", 0.95), ("P99", 0.99))
            )
            + f"P999 Latency: {ordered[int(total * 0.999)]:g} s\n"
        )
        if out is not None:
            out.write("\n" + stats)
        sys.stdout.write(stats)
    if out is not None:
        out.close()


def write_runner_script(path: str | Path) -> Path:
    """Write an executable ``onnxruntime_perf_test`` stand-in for the emulated phone.

    Its interpreter is this Python, so it finds onnxruntime and edgenas.
    """
    from edgenas.atomic import atomic_path

    path = Path(path)
    if path.is_dir():
        raise UserError(
            f"--write-runner {path} is a folder; give a file name, e.g. {path / 'perf_test'}"
        )
    script = (
        f"#!{sys.executable}\n"
        "import sys\n"
        "from edgenas.devices.emulator.runner import main\n"
        "sys.exit(main())\n"
    )
    try:
        with atomic_path(path) as tmp:  # whole or not at all
            tmp.write_text(script)
            tmp.chmod(0o755)
    except OSError as err:
        raise UserError(
            f"cannot write the runner {path}: {err.strerror or type(err).__name__}"
        ) from None
    path.chmod(0o755)  # atomic_path gives the umask's mode; a runner must be executable
    return path


if __name__ == "__main__":
    sys.exit(main())
