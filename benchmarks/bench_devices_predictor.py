"""Latency predictors on held-out networks: the kernel model against the parts table.

One run, one ground truth: N_TEST held-out genotypes of the default LDP space (seed 1,
none among the calibration networks) and the reference baselines are measured whole
with the load-robust protocol (--rounds interleaved rounds, fastest run; see
KernelProtocol); --repeat measures them a second time to show how far the ground truth
itself moves.
Then

* new: `calibrate_kernels` on --cal-kernels networks (seed 0, 30% of them adaptive),
  and a prediction for every held-out network and baseline;
* old (unless --no-old): the parts table calibrated on --cal-parts networks, and a
  prediction for every held-out network (its new blocks measured as in a search).

Reports within +-5% / +-10%, MAPE, Kendall tau and calibration seconds for each, and
the 1-minute load average before and after. --load N starts N busy processes (a
pure-Python spin loop each) for the whole run: "moderate load" is --load 1 on 2 cores.

Usage: python benchmarks/bench_devices_predictor.py [--device cpu] [--input 120x160]
       [--test 100] [--cal-kernels 60] [--cal-parts 25] [--load 1] [--no-old] [--out F]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path


def _spin(stop) -> None:
    """A busy background process: what another user's job looks like to ours."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _report(predicted, measured) -> dict:
    from edgenas.devices.predictor import accuracy_report

    out = accuracy_report(predicted, measured)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input", default="120x160")
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--cal-kernels", type=int, default=60)
    parser.add_argument("--cal-parts", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the ground truth")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--load", type=int, default=0, help="busy background processes")
    parser.add_argument("--no-old", action="store_true", help="skip the parts table")
    parser.add_argument(
        "--repeat", action="store_true", help="measure the held-out networks twice (noise ceiling)"
    )
    parser.add_argument("--out", default=None, help="write the JSON report here")
    args = parser.parse_args()
    from edgenas.latency_table import (
        KernelProtocol,
        Measurer,
        calibrate,
        calibrate_kernels,
        measure_kernels,
        predict_kernels,
        predict_latency,
        timing_model,
    )
    from edgenas.models.reference import build_reference
    from edgenas.space.ldp import LDPSpace

    h, w = (int(v) for v in args.input.split("x"))
    shape = (1, 3, h, w)
    space = LDPSpace()
    cal_k = space.sample_unique(args.cal_kernels, seed=0, scales=(2, 3))
    cal_p = cal_k[: args.cal_parts]
    seen = {g.encode() for g in cal_k}
    test = [
        g
        for g in space.sample_unique(args.test + len(cal_k), seed=1, scales=(2, 3))
        if g.encode() not in seen
    ][: args.test]
    baselines = {"fastdepth": build_reference("fastdepth", "depth").eval()}
    baselines["unet"] = build_reference("unet", "seg").eval()
    baselines["lraspp"] = build_reference("lraspp", "seg").eval()

    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.load)]
    for p in spinners:
        p.start()
    result: dict = {"device": args.device, "threads": args.threads, "input": args.input}
    result["load_average_start"] = os.getloadavg()[0]
    result["busy_background_processes"] = args.load
    try:
        with tempfile.TemporaryDirectory() as tmp:
            truth_measurer = Measurer(
                args.device, threads=args.threads, table_path=Path(tmp) / "truth.json", log=print
            )
            t0 = time.perf_counter()
            named = [(g.encode(), timing_model(g, "depth")) for g in test]
            named += list(baselines.items())
            truth = {
                name: ms
                for name, ms, _k in measure_kernels(
                    truth_measurer, named, shape, KernelProtocol(rounds=args.rounds), kernels=False
                )
            }
            truth_measurer.close()
            result["ground_truth_seconds"] = round(time.perf_counter() - t0, 1)
            if args.repeat:
                # The same networks measured again: how far the ground truth itself
                # moves on this machine (no predictor can beat this ceiling).
                again = measure_kernels(
                    truth_measurer, named[: args.test], shape, KernelProtocol(rounds=args.rounds),
                    kernels=False,
                )  # fmt: skip
                result["ground_truth_repeat"] = _report(
                    [ms for _n, ms, _k in again], [truth[n] for n, _ms, _k in again]
                )
            measured = [truth[g.encode()] for g in test]

            new = Measurer(
                args.device, threads=args.threads, table_path=Path(tmp) / "k.json", log=print
            )
            try:
                t0 = time.perf_counter()
                summary = calibrate_kernels(new, cal_k, "depth", shape)
                result["new_calibrate_seconds"] = round(time.perf_counter() - t0, 1)
                result["new_calibration"] = {k: v for k, v in summary.items() if k != "table"}
                t0 = time.perf_counter()
                predicted = [predict_latency(g, "depth", shape, new) for g in test]
                result["new_predict_seconds_each"] = round(
                    (time.perf_counter() - t0) / len(test), 2
                )
                result["new_held_out"] = _report(predicted, measured)
                result["new_predicted_ms"] = [round(v, 3) for v in predicted]
                result["baselines"] = {
                    name: {
                        "measured_ms": round(truth[name], 3),
                        "new_predicted_ms": round(predict_kernels(new, model, shape), 3),
                    }
                    for name, model in baselines.items()
                }
            finally:
                new.close()
            result["measured_ms"] = [round(v, 3) for v in measured]
            result["load_average_after_new"] = os.getloadavg()[0]
            print(json.dumps({k: v for k, v in result.items() if not k.endswith("_ms")}, indent=1))

            if not args.no_old:
                old = Measurer(
                    args.device, threads=args.threads, table_path=Path(tmp) / "p.json", log=print
                )
                try:
                    t0 = time.perf_counter()
                    summary = calibrate(old, cal_p, "depth", shape)
                    result["old_calibrate_seconds"] = round(time.perf_counter() - t0, 1)
                    result["old_calibration_networks"] = len(cal_p)
                    t0 = time.perf_counter()
                    predicted = [predict_latency(g, "depth", shape, old) for g in test]
                    result["old_predict_seconds_each"] = round(
                        (time.perf_counter() - t0) / len(test), 2
                    )
                    result["old_held_out"] = _report(predicted, measured)
                    result["old_predicted_ms"] = [round(v, 3) for v in predicted]
                finally:
                    old.close()
    finally:
        stop.set()
        for p in spinners:
            p.join()
    result["load_average_end"] = os.getloadavg()[0]
    text = json.dumps(result, indent=1)
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_ms")}, indent=1))
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    import sys

    sys.stdout.reconfigure(line_buffering=True)  # progress lines in a log file
    main()
