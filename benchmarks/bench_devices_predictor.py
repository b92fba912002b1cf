"""Predictor accuracy on held-out random genotypes on the host CPU, and calibrate time.

Calibrates a fresh table on N_CAL networks (seed 0), then predicts and measures N_TEST
other networks (seed 1; their new blocks are measured and added, as in a search) and
reports the share within +/-10%, MAPE and Kendall tau.
Usage: python benchmarks/bench_devices_predictor.py [--input 120x160 --cal 25 --test 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", default="120x160")
    parser.add_argument("--cal", type=int, default=25)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="write the JSON report here")
    args = parser.parse_args()
    from edgenas.latency_table import Measurer, calibrate, evaluate
    from edgenas.space.ldp import LDPSpace

    h, w = (int(v) for v in args.input.split("x"))
    shape = (1, 3, h, w)
    space = LDPSpace()
    cal = space.sample_unique(args.cal, seed=0, scales=(2, 3))
    seen = {g.encode() for g in cal}
    test = [
        g
        for g in space.sample_unique(args.test + args.cal, seed=1, scales=(2, 3))
        if g.encode() not in seen
    ]
    test = test[: args.test]
    with tempfile.TemporaryDirectory() as tmp:
        measurer = Measurer(
            args.device, threads=args.threads, table_path=Path(tmp) / "table.json", log=print
        )
        try:
            t0 = time.perf_counter()
            summary = calibrate(measurer, cal, "depth", shape)
            calibrate_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = evaluate(measurer, test, "depth", shape)
            evaluate_s = time.perf_counter() - t0
        finally:
            measurer.close()
    result = {
        "device": args.device,
        "threads": args.threads,
        "input": args.input,
        "calibration_networks": len(cal),
        "calibrate_seconds": round(calibrate_s, 1),
        "table_parts_after_calibration": summary["table_parts"],
        "overhead": summary["overhead"],
        "in_sample": summary["in_sample"],
        "held_out": {k: v for k, v in report.items() if not k.endswith("_ms")},
        "held_out_seconds": round(evaluate_s, 1),
        "predicted_ms": [round(v, 3) for v in report["predicted_ms"]],
        "measured_ms": [round(v, 3) for v in report["measured_ms"]],
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
