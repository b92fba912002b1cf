"""The latency gate's proofs: no false alarms, real regressions caught, 5% within noise.

Each scenario is repeated N times (default 20) with the same spec and protocol as the
docs recommend for shared CI runners (10 sessions x 20 runs, 1 thread):

- same-ab:         the same model A/B against itself (interleaved)     -> must pass N/N
- same-seq:        a fresh baseline, then a run, then check (no A/B)    -> passes (report)
- slow25-ab:       a ~25% slower model (25 vs 20 conv layers), A/B      -> must fail N/N
- slow25-seq:      the same with a fresh baseline file                  -> fails (report)
- slow5-ab:        a ~5% slower model (21 vs 20 layers), threshold 10%  -> never "regressed"

Prints one line per repetition and a JSON summary (counts, changes, p-values).
Usage: python benchmarks/bench_gate_verdicts.py [--reps 20] [--threshold 15%]
       [--scenarios same-ab,slow25-ab] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

SCENARIOS = {
    # name: (candidate layers, baseline layers, A/B?, expected verdict, threshold override)
    "same-ab": (20, 20, True, "pass", None),
    "same-seq": (20, 20, False, "pass", None),
    "slow25-ab": (25, 20, True, "regressed", None),
    "slow25-seq": (25, 20, False, "regressed", None),
    "slow5-ab": (21, 20, True, "pass", "10%"),
}


def spec_text(model: Path, threshold: str, sessions: int, runs: int) -> str:
    return (
        f'threshold = "{threshold}"\n[protocol]\nruns = {runs}\nwarmup = 5\n'
        f'sessions = {sessions}\nthreads = 1\n[[case]]\nname = "m"\nonnx = "{model}"\n'
    )


def one_check(folder: Path, cand: int, base: int, ab: bool, threshold: str, args) -> dict:
    """One gate decision: measure (A/B or baseline + run) and compare."""
    import tomllib

    from edgenas.bench.compare import compare
    from edgenas.bench.runner import run_spec
    from edgenas.bench.spec import parse_spec

    def spec(layers: int):
        text = spec_text(folder / f"chain{layers}.onnx", threshold, args.sessions, args.runs)
        return parse_spec(tomllib.loads(text))

    if ab:
        results = run_spec(spec(cand), ab_spec=spec(base))
        baseline = None
    else:
        baseline = run_spec(spec(base), kind="baseline")
        results = run_spec(spec(cand))
    (c,), _ = compare(results, baseline)
    return {"verdict": c.verdict, "change": c.change, "p": c.p_value, "threshold": c.threshold}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--threshold", default="15%", help="the shared-runner recommendation")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from edgenas.bench.synthetic import conv_chain_onnx

    summary = {"threshold": args.threshold, "sessions": args.sessions, "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for layers in (20, 21, 25):
            conv_chain_onnx(folder / f"chain{layers}.onnx", layers)
        for name in args.scenarios.split(","):
            cand, base, ab, expected, override = SCENARIOS[name]
            threshold = override or args.threshold
            rows, start = [], time.perf_counter()
            for rep in range(args.reps):
                row = one_check(folder, cand, base, ab, threshold, args)
                row["load1"] = os.getloadavg()[0]
                rows.append(row)
                print(
                    f"{name} {rep + 1:2d}/{args.reps}: {row['verdict']:12s} "
                    f"change {row['change']:+.1%} p {row['p']:.3g} load {row['load1']:.1f}",
                    flush=True,
                )
            verdicts = [r["verdict"] for r in rows]
            changes = [r["change"] for r in rows]
            ok = (
                verdicts.count("regressed") == len(rows)
                if expected == "regressed"
                else "regressed" not in verdicts
            )
            summary[name] = {
                "threshold": threshold,
                "expected": expected,
                "ok": ok,
                "regressed": verdicts.count("regressed"),
                "within_noise": verdicts.count("within noise"),
                "improved": verdicts.count("improved"),
                "reps": len(rows),
                "change_median": statistics.median(changes),
                "change_min": min(changes),
                "change_max": max(changes),
                "p_max": max(r["p"] for r in rows),
                "load1_mean": statistics.fmean(r["load1"] for r in rows),
                "seconds_per_check": (time.perf_counter() - start) / len(rows),
            }
            print(json.dumps({name: summary[name]}), flush=True)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
