"""A host stand-in for ``onnxruntime_perf_test``: same command line (the subset edgenas
uses), real onnxruntime timings on this machine, and perf_test's summary format.

It is what ``edgenas devices setup`` pushes to the emulated phone; see
:func:`write_runner_script`.
"""

from __future__ import annotations

import argparse
import statistics
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
    ordered = sorted(costs)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    # Line format of onnxruntime/test/perftest/performance_runner.cc (ORT 1.1x).
    print(f"Session creation time cost: {created:g} s")
    print(f"First inference time cost: {first * 1000:.0f} ms")
    print(f"Total inference time cost: {total:g} s")
    print(f"Total inference requests: {len(costs)}")
    print(f"Average inference time cost: {total / len(costs) * 1000:g} ms")
    print(f"Total inference run time: {elapsed:g} s")
    print(f"Number of inferences per second: {len(costs) / elapsed:g} ")
    print("Avg CPU usage: 100 %")
    print("Peak working set size: 0 bytes")
    print("Avg CPU usage:100")
    print("Peak working set size:0")
    print(f"Runs:{len(costs)}")
    print(f"Min Latency: {ordered[0]:g} s")
    print(f"Max Latency: {ordered[-1]:g} s")
    print(f"P50 Latency: {statistics.median(costs):g} s")
    print(f"P90 Latency: {pct(0.90):g} s")
    print(f"P95 Latency: {pct(0.95):g} s")
    print(f"P99 Latency: {pct(0.99):g} s")
    print(f"P999 Latency: {pct(0.999):g} s")
    return 0


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
