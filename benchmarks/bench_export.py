"""Export: median seconds per genotype for genotype -> simplified, verified ONNX.

Split by stage (build, torch export, onnxsim, checker, onnxruntime verification), at
1x3x240x320 by default, over N random genotypes of the default space.

    python benchmarks/bench_export.py [--n 10] [--input 1x3x240x320] [--task depth]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from edgenas.export import export_onnx
from edgenas.models import build_model
from edgenas.space import LDPSpace


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--input", default="1x3x240x320")
    parser.add_argument("--task", default="depth")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    shape = tuple(int(d) for d in args.input.split("x"))

    stages: dict[str, list[float]] = {}
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, genotype in enumerate(LDPSpace().sample_unique(args.n, seed=args.seed)):
            start = time.perf_counter()
            model = build_model(genotype, args.task)
            build = time.perf_counter() - start
            report = export_onnx(model, shape, Path(tmp) / f"{index}.onnx")
            times = {"build": build, **report.seconds}
            for stage, seconds in times.items():
                stages.setdefault(stage, []).append(seconds)
            totals.append(sum(times.values()))
            print(
                f"{index:2d} S{genotype.scales} {report.params:>9,} params {report.macs / 1e9:6.2f} GMACs "
                + " ".join(f"{k} {v:.2f}" for k, v in times.items())
                + f"  max rel err {report.max_rel_err:.1e}"
            )
    print(f"\nmedian seconds per genotype at {args.input} ({args.task}, {args.n} genotypes):")
    total_median = statistics.median(totals)
    for stage, values in stages.items():
        median = statistics.median(values)
        print(f"  {stage:9s} {median:6.2f} s  ({median / total_median:5.1%} of the median total)")
    print(f"  {'total':9s} {total_median:6.2f} s")


if __name__ == "__main__":
    main()
