"""Latency of the same network exported with a fixed input size (static) and with
dynamic batch, height and width (what ``best.onnx`` is), measured side by side.

Both files come from :func:`edgenas.export.export_onnx` (simplified and verified); only
``dynamic`` differs. With a fixed size onnxsim folds the shape arithmetic (Shape /
Gather / Slice / Concat chains that feed Reshape and Resize) into constants and ORT
fuses what is left (LayerNormalization, Gemm); with dynamic sizes those chains run on
every inference. Each round profiles every file once, in turn, so that the machine's
slow phases fall on all of them alike; the table prints the median over rounds of each
profile's fastest session median, and the ratio static / dynamic per round (median,
and the range over rounds).

    python benchmarks/bench_export_static_vs_dynamic.py [--rounds 7] [--input 64x80]
        [--models seg-default,sr-default,unet,espcn,fastdepth,hrnas-seg]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from edgenas.devices.profile import profile_model
from edgenas.devices.protocol import Protocol

from edgenas.export import export_onnx

PROTOCOL = Protocol(warmup_runs=3, warmup_min_s=0.1, runs=15, sessions=5)


def build(name: str) -> tuple[torch.nn.Module, str]:
    """``(network, task)`` of a model name of this bench."""
    if name.endswith("-default"):
        from edgenas.models import build_model
        from edgenas.tasks.defaults import default_genotype

        task = name.removesuffix("-default")
        return build_model(default_genotype(task), task), task
    if name.startswith("hrnas-"):
        from edgenas.hrnas.config import SupernetConfig
        from edgenas.hrnas.supernet import HRSupernet

        task = name.removeprefix("hrnas-")
        return HRSupernet(SupernetConfig(), task), task
    from edgenas.models.reference import REFERENCE_MODELS, build_reference

    return build_reference(name), REFERENCE_MODELS[name].task


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--input", default="64x80", help="HxW (the LR size for sr)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--models", default="seg-default,sr-default,depth-default,unet,espcn,fastdepth,hrnas-seg"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    shape = (1, 3, *(int(d) for d in args.input.split("x")))
    names = args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[tuple[str, str], Path] = {}
        for name in names:
            model, _ = build(name)
            model.eval()
            for kind in ("static", "dynamic"):
                path = Path(tmp) / f"{name}-{kind}.onnx"
                export_onnx(model, shape, path, dynamic=kind == "dynamic")
                files[name, kind] = path
        times: dict[tuple[str, str], list[float]] = {key: [] for key in files}
        for round_index in range(args.rounds):
            for key, path in files.items():
                result = profile_model(
                    path, "cpu", PROTOCOL, threads=args.threads, input_shapes={"input": shape}
                )
                times[key].append(min(s.median for s in result.sessions))
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)
    size = "x".join(map(str, shape))
    print(f"\n{size}, {args.threads} thread(s), {args.rounds} interleaved rounds")
    print(f"{'model':14s} {'static ms':>10s} {'dynamic ms':>11s} {'static/dynamic':>15s}  range")
    for name in names:
        static, dynamic = times[name, "static"], times[name, "dynamic"]
        ratios = [s / d for s, d in zip(static, dynamic, strict=True)]
        print(
            f"{name:14s} {statistics.median(static):10.3f} {statistics.median(dynamic):11.3f} "
            f"{statistics.median(ratios):15.3f}  {min(ratios):.2f}-{max(ratios):.2f}"
        )


if __name__ == "__main__":
    main()
