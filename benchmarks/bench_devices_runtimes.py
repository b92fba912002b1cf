"""onnxruntime vs OpenVINO vs PyTorch eager on the host CPU, same 3 models, 1 thread.

Reports each runtime's median latency and the ratios to onnxruntime.
Usage: python benchmarks/bench_devices_runtimes.py [--input 240x320 --runs 30]
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", default="240x320")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch
    from edgenas.devices import Protocol, profile_model
    from edgenas.devices.protocol import timed_session

    from edgenas.latency_table import export_model, timing_model
    from edgenas.space.ldp import LDPSpace

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.input.split("x"))
    shape = (1, 3, h, w)
    protocol = Protocol(warmup_runs=5, runs=args.runs, sessions=3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, genotype in enumerate(LDPSpace().sample_unique(3, seed=7, scales=(2, 3))):
            model = timing_model(genotype, "depth")
            path = Path(tmp) / f"m{i}.onnx"
            export_model(model, shape, path)
            ort = profile_model(path, "cpu", protocol, threads=args.threads).median_ms
            ov = profile_model(path, "openvino-cpu", protocol, threads=args.threads).median_ms
            x = torch.randn(shape)
            run = functools.partial(model, x)
            with torch.inference_mode():
                sessions = [timed_session(run, protocol) for _ in range(protocol.sessions)]
            eager = sorted(s.median for s in sessions)[len(sessions) // 2]
            row = {
                "genotype": genotype.encode(),
                "onnxruntime_ms": round(ort, 3),
                "openvino_ms": round(ov, 3),
                "torch_eager_ms": round(eager, 3),
                "openvino_over_ort": round(ov / ort, 3),
                "eager_over_ort": round(eager / ort, 3),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"input": args.input, "threads": args.threads, "models": rows}, indent=1))


if __name__ == "__main__":
    main()
