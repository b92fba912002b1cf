"""SR genotype layouts compared: today's head layout against the paper's upsample layout.

The ``head`` layout (``S2:``) runs the whole pyramid at the LR resolution and upsamples
in a fixed pixel-shuffle head; the ``paper`` layout (``S2U:``, LDP Sec. 3.3) has a
searched upsample block ``up1`` before the refine block ``ref0``, which then runs at the
HR resolution. Each variant below is trained with `edgenas train` (the fast recipe, as a
user would) for the same wall time on T91 and scored on Set5 (x2 by default), for each
seed, the variants interleaved seed by seed so that load on this shared machine falls on
all of them alike (`edgenas train` counts wall time, so load still changes the steps a
variant gets: the head layout's two seeds got 1335 and 2223 steps in one run; ``--epochs``
trains every variant for the same steps instead). Latency: each network exported to
ONNX once, then timed with onnxruntime (1 thread) at the LR deploy size in ``--rounds``
interleaved rounds; the table gives the median of the round medians (the lines printed
per variant also give the fastest round's median).

    python benchmarks/bench_sr_layout.py --seconds 120 --seeds 0,1 --json out.json
    python benchmarks/bench_sr_layout.py --seconds 20 --seeds 0 --variants head,paper  # a look
    python benchmarks/bench_sr_layout.py --epochs 33 --seeds 0 --rounds 1  # equal steps
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr"

CONV = "conv_k3_se0_res_c16_n1"
# enc1a enc1b down2 enc2a enc2b dec2a dec2b ref2 up2 dec1a dec1b: the 11 blocks the two
# layouts share (both at the LR resolution).
SHARED = [CONV] * 11
VARIANTS = {
    # the task's default genotype today: ref1 at LR, then the pixel-shuffle head
    "head": "S2:" + "-".join([*SHARED, CONV]),
    # its closest equivalent in the paper layout: ref1 becomes up1 + ref0 at HR
    "paper": "S2U:" + "-".join([*SHARED, CONV, CONV]),
    # the same with 8-channel HR blocks: about the head layout's MACs
    "paper-c8": "S2U:" + "-".join([*SHARED, "conv_k3_se0_nores_c8_n1", "conv_k3_se0_res_c8_n1"]),
    # depthwise-separable HR blocks of 16 channels: also about the head layout's MACs
    "paper-ds": "S2U:" + "-".join([*SHARED, "ds_k3_se0_nores_c16_n1", "ds_k3_se0_res_c16_n1"]),
}


def train(name: str, genotype: str, seed: int, args, work: Path) -> dict:
    out = work / f"{name}-s{seed}"
    command = [
        sys.executable, "-m", "edgenas", "train", "--task", "sr",
        "--data", str(args.data), "--val-data", str(args.val_data),
        "--genotype", genotype, "--scale", str(args.scale),
        *(["--epochs", str(args.epochs)] if args.epochs else ["--seconds", str(args.seconds)]),
        "--seed", str(seed), "--torch-threads", str(args.torch_threads),
        "--no-export", "--quiet", "-o", str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "psnr": metrics["metrics"]["psnr"],
        "ssim": metrics["metrics"]["ssim"],
        "steps": metrics["steps"],
        "params": metrics["params"],
    }


def latencies(genotypes: dict[str, str], args, work: Path) -> dict[str, dict]:
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgenas.export import export_onnx
    from edgenas.models.builder import build_model
    from edgenas.models.complexity import count_macs

    h, w = args.deploy
    shape = (1, 3, h, w)
    sessions, macs = {}, {}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    for name, genotype in genotypes.items():
        torch.manual_seed(0)
        model = build_model(genotype, "sr", scale=args.scale).eval()
        macs[name] = count_macs(model, shape)
        path = work / f"{name}.onnx"
        export_onnx(model, shape, path)
        sessions[name] = ort.InferenceSession(str(path), options, ["CPUExecutionProvider"])
    feed = np.random.default_rng(0).random(shape, dtype=np.float32)
    rounds: dict[str, list[float]] = {name: [] for name in genotypes}
    for _ in range(args.rounds):
        for name, session in sessions.items():
            for _ in range(3):  # warm-up
                session.run(None, {"input": feed})
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                session.run(None, {"input": feed})
                times.append((time.perf_counter() - start) * 1000)
            rounds[name].append(statistics.median(times))
    return {
        name: {
            "latency_ms": statistics.median(values),
            "fastest_round_ms": min(values),
            "macs": macs[name],
        }
        for name, values in rounds.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument(
        "--epochs", type=int, default=None, help="train for epochs instead (equal steps)"
    )
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--data", type=Path, default=DATA / "T91")
    parser.add_argument("--val-data", type=Path, default=DATA / "Set5")
    parser.add_argument("--deploy", default="120x160", help="LR deploy size HxW")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.deploy = tuple(int(v) for v in args.deploy.split("x"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    chosen = {name: VARIANTS[name] for name in args.variants.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, dict] = {name: {"genotype": g, "runs": []} for name, g in chosen.items()}
    with tempfile.TemporaryDirectory(prefix="bench-sr-layout-") as tmp:
        work = Path(tmp)
        for name, row in latencies(chosen, args, work).items():
            results[name].update(row)
            print(f"{name:9s} {row['latency_ms']:7.2f} ms (fastest round {row['fastest_round_ms']:.2f})"
                  f"  {row['macs'] / 1e6:7.1f} M MACs", flush=True)  # fmt: skip
        if not args.skip_training:
            for seed in seeds:
                order = list(chosen) if seed % 2 == 0 else list(reversed(chosen))
                for name in order:
                    run = train(name, chosen[name], seed, args, work)
                    results[name]["runs"].append({"seed": seed, **run})
                    print(f"{name:9s} seed {seed}: {run['psnr']:.2f} dB, {run['steps']} steps",
                          flush=True)  # fmt: skip
    print()
    print(f"| layout | genotype end | Set5 PSNR x{args.scale} (dB, per seed) | mean | steps "
          f"| params | MACs at {args.deploy[0]}x{args.deploy[1]} | latency (ms) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, row in results.items():
        psnrs = [r["psnr"] for r in row["runs"]]
        steps = [r["steps"] for r in row["runs"]]
        params = row["runs"][0]["params"] if row["runs"] else 0
        tail = "-".join(row["genotype"].split("-")[-2:])
        print(
            f"| {name} | `{tail}` | {' / '.join(f'{p:.2f}' for p in psnrs)} "
            f"| {statistics.mean(psnrs) if psnrs else float('nan'):.2f} "
            f"| {statistics.mean(steps) if steps else 0:.0f} | {params:,} "
            f"| {row['macs'] / 1e6:.0f} M | {row['latency_ms']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
