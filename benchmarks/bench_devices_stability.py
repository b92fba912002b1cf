"""Stability: one model profiled in 5 separate sessions, 1 thread and all cores.

Prints the spread of the session medians ((max - min) / median) and each session's CV.
Usage: python benchmarks/bench_devices_stability.py [--input 240x320] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", default="240x320")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from edgenas.devices import Protocol, profile_model
    from edgenas.devices.hostinfo import usable_cores

    from edgenas.latency_table import export_model, timing_model
    from edgenas.space.ldp import LDPSpace

    h, w = (int(v) for v in args.input.split("x"))
    genotype = LDPSpace().sample_unique(1, seed=args.seed, scales=(2,))[0]
    report = {"genotype": genotype.encode(), "input": args.input, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_model(timing_model(genotype, "depth"), (1, 3, h, w), path)
        for device in ("cpu", "openvino-cpu"):
            for threads in sorted({1, usable_cores()}):
                protocol = Protocol(warmup_runs=10, runs=args.runs, sessions=5)
                result = profile_model(path, device, protocol, threads=threads).to_dict()
                timings = result["timings"]
                row = {
                    "device": device,
                    "threads": threads,
                    "median_ms": round(timings["median_ms"], 3),
                    "session_medians_ms": [round(m, 3) for m in timings["session_medians_ms"]],
                    "spread": round(timings["session_spread"], 4),
                    "cv": [round(s["cv"], 3) for s in timings["sessions"]],
                    "loadavg_1m": result["device"]["facts"]["loadavg_1m"],
                }
                report["results"].append(row)
                print(json.dumps(row), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
