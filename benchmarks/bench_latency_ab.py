"""Two ONNX models' latency side by side: interleaved rounds on one device, medians
and the ratio A / B (one absolute time on a shared machine means little).

Used to check a search's answer against a baseline after the run, e.g.

    python benchmarks/bench_latency_ab.py runs/X/best.onnx runs/X/baselines/baseline-espcn.onnx \\
        --input 1x3x120x160 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics

from edgenas.devices.profile import profile_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--input", default="1x3x120x160", help="NxCxHxW")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.input.split("x"))
    medians: dict[str, list[float]] = {args.a: [], args.b: []}
    for round_index in range(args.rounds):
        for path in (args.a, args.b) if round_index % 2 == 0 else (args.b, args.a):
            result = profile_model(
                path, args.device, threads=args.threads, input_shapes={"input": shape}
            )
            medians[path].append(result.median_ms)
        print(
            f"round {round_index + 1}: A {medians[args.a][-1]:.2f} ms  B {medians[args.b][-1]:.2f} ms",
            flush=True,
        )
    a, b = statistics.median(medians[args.a]), statistics.median(medians[args.b])
    print(f"A {args.a}: median {a:.2f} ms\nB {args.b}: median {b:.2f} ms\nA / B = {a / b:.3f}")


if __name__ == "__main__":
    main()
