"""INT8 vs fp32 for a super-resolution and a segmentation network: accuracy on held-out
images and latency on cpu (onnxruntime) and openvino-cpu side by side.

Each network is trained briefly with the project's training API (sr x2 on T91, scored
on Set5; segmentation on CamVid at 180x240, scored on its val split) when
../shared/data holds them, else on the built-in demo data. Then, from one verified fp32
ONNX export:

* ``ort-qdq``: onnxruntime static quantization (QDQ, per-channel), run by onnxruntime
  (`edgenas export --quantize int8`) and read by OpenVINO directly;
* ``nncf``: NNCF on the OpenVINO IR (`edgenas export --quantize int8 --format openvino`).

Latency: rounds of one session per (model, device), interleaved so that a busy machine
slows every variant alike; the figure is the median of the round medians.

    python benchmarks/bench_int8.py [--seconds 240] [--rounds 5] [--json int8.json]
    python benchmarks/bench_int8.py --sr-checkpoint runs/sr/checkpoint.pt \\
        --seg-checkpoint runs/seg/checkpoint.pt        # skip training
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from edgenas.devices.profile import profile_model
from edgenas.devices.protocol import Protocol

from edgenas.export import INPUT_NAME, export_onnx
from edgenas.quantize import (
    SpacedSubset,
    accuracy_pair,
    calibration_batches,
    onnx_quantization,
    quantize_onnx,
    quantize_openvino,
)
from edgenas.tasks import get_task
from edgenas.tasks.defaults import default_genotype
from edgenas.training import Budget, load_checkpoint, model_from_checkpoint, train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# task -> (training folder, held-out folder and split, train input HxW, deploy input HxW)
REAL = {
    "sr": (DATA / "sr" / "T91", (DATA / "sr" / "Set5", "all"), (48, 48), (120, 160)),
    "segmentation": (DATA / "camvid", (DATA / "camvid", "val"), (180, 240), (180, 240)),
}
DEMO = {"sr": (None, (None, "val"), (48, 48), (120, 160)),
        "segmentation": (None, (None, "val"), (128, 160), (128, 160))}  # fmt: skip


def _train(task_name: str, seconds: float, folder: Path) -> Path:
    """A default-genotype network trained for ``seconds`` on the task's data; its
    checkpoint path."""
    task = get_task(task_name)
    root, _held_out, size, _deploy = (REAL if DATA.is_dir() else DEMO)[task_name]
    options = {"scale": 2} if task_name == "sr" else {"size": size}
    train_data = task.dataset(root, "train", patch=size[0], **options)
    model = task.build_model(default_genotype(task_name), train_data.info)
    path = folder / f"{task_name}.pt"
    extra = {"input": list(size), "data": str(root) if root else "<built-in>"}
    print(f"training {task_name} for {seconds:g} s on {train_data.info.root} ...", flush=True)
    train(model, task, train_data, None, Budget(seconds=seconds), checkpoint=path, extra=extra)
    return path


def _latencies(files: dict[str, tuple[Path, str]], shape, rounds: int, protocol) -> dict:
    """Median over ``rounds`` of each (file, device)'s one-session median, interleaved."""
    medians: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(rounds):
        for name, (path, device) in files.items():
            result = profile_model(path, device, protocol, input_shapes={INPUT_NAME: shape})
            medians[name].append(result.median_ms)
    return {name: statistics.median(values) for name, values in medians.items()}


def bench_task(task_name: str, checkpoint: Path, args, folder: Path) -> dict:
    """Quantize one trained network both ways; accuracy and latency of every variant."""
    task = get_task(task_name)
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).eval()
    root, (held_out, split), _size, deploy = (REAL if DATA.is_dir() else DEMO)[task_name]
    shape = (1, 3, *deploy)
    options = {"scale": 2} if task_name == "sr" else {"size": None}
    calibration = task.dataset(root, "train", train=False, **options)
    validation = task.dataset(held_out, split, train=False, **options)
    if args.val_images:
        validation = SpacedSubset(validation, args.val_images)

    fp32 = folder / f"{task_name}-fp32.onnx"
    export_onnx(model, shape, fp32, dynamic=True, openvino=False)
    fp32_ir = folder / f"{task_name}-fp32.xml"
    export_onnx(model, shape, fp32_ir, dynamic=True, openvino=True)
    batches = calibration_batches(calibration, args.calibration_images, shape)
    seconds = {}
    start = time.perf_counter()
    ort_qdq = folder / f"{task_name}-int8.onnx"
    quantize_onnx(fp32, ort_qdq, batches)
    seconds["ort-qdq"] = time.perf_counter() - start
    start = time.perf_counter()
    nncf_ir = folder / f"{task_name}-nncf.xml"
    quantize_openvino(fp32_ir, nncf_ir, batches)
    seconds["nncf"] = time.perf_counter() - start
    graph = onnx_quantization(ort_qdq)
    print(f"{task_name}: quantized in {seconds} s; QDQ graph {graph}", flush=True)

    size = None if task_name == "sr" else tuple(deploy)
    ort_acc = accuracy_pair(fp32, ort_qdq, task, validation, size)
    nncf_acc = accuracy_pair(fp32_ir, nncf_ir, task, validation, size)
    qdq_in_ov = accuracy_pair(fp32_ir, _as_ir(ort_qdq), task, validation, size)
    accuracy = {
        "metric": task.primary_metric,
        "images": len(validation),
        "data": validation.info.root,
        "fp32 (onnxruntime)": ort_acc["fp32"],
        "ort-qdq (onnxruntime)": ort_acc["int8"],
        "fp32 (openvino)": nncf_acc["fp32"],
        "nncf (openvino)": nncf_acc["int8"],
        "ort-qdq (openvino)": qdq_in_ov["int8"],
    }
    protocol = Protocol(warmup_runs=10, runs=args.runs, sessions=1)
    files = {
        "fp32 onnx @ cpu": (fp32, "cpu"),
        "ort-qdq onnx @ cpu": (ort_qdq, "cpu"),
        "fp32 IR @ openvino-cpu": (fp32_ir, "openvino-cpu"),
        "nncf IR @ openvino-cpu": (nncf_ir, "openvino-cpu"),
        "ort-qdq onnx @ openvino-cpu": (_as_ir(ort_qdq), "openvino-cpu"),
    }
    latency = _latencies(files, shape, args.rounds, protocol)
    return {
        "task": task_name,
        "checkpoint": str(checkpoint),
        "deploy_input": list(shape),
        "calibration": {"data": calibration.info.root, "images": args.calibration_images},
        "quantize_seconds": seconds,
        "qdq_graph": graph.to_dict(),
        "accuracy": accuracy,
        "latency_ms": latency,
        "rounds": args.rounds,
        "runs_per_session": args.runs,
    }


def _as_ir(onnx_path: Path) -> Path:
    """The ONNX file converted to OpenVINO IR as it is (QDQ nodes become FakeQuantize)."""
    import openvino as ov

    xml = onnx_path.with_name(onnx_path.stem + "-qdq.xml")
    if not xml.exists():
        ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return xml


def _print(result: dict) -> None:
    acc, lat = result["accuracy"], result["latency_ms"]
    metric = acc["metric"]
    print(f"\n## {result['task']} ({'x'.join(map(str, result['deploy_input']))}), "
          f"{metric} on {acc['images']} images of {acc['data']}")  # fmt: skip
    base = {
        "onnxruntime": acc["fp32 (onnxruntime)"][metric],
        "openvino": acc["fp32 (openvino)"][metric],
    }
    for name in ("fp32 (onnxruntime)", "ort-qdq (onnxruntime)", "fp32 (openvino)",
                 "nncf (openvino)", "ort-qdq (openvino)"):  # fmt: skip
        runtime = name.split("(")[1].rstrip(")")
        value = acc[name][metric]
        print(f"  {name:24s} {metric} {value:8.4f}  ({value - base[runtime]:+.4f})")
    fp32 = {"cpu": lat["fp32 onnx @ cpu"], "openvino-cpu": lat["fp32 IR @ openvino-cpu"]}
    for name, ms in lat.items():
        device = name.split("@ ")[1]
        print(f"  {name:30s} {ms:8.2f} ms  speed-up {fp32[device] / ms:4.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=240, help="training seconds per task")
    parser.add_argument("--sr-checkpoint", type=Path, help="use this sr checkpoint (no training)")
    parser.add_argument("--seg-checkpoint", type=Path, help="use this seg checkpoint")
    parser.add_argument("--calibration-images", type=int, default=32)
    parser.add_argument("--val-images", type=int, default=None, help="default: all held-out")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per session")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for task_name, given in (("sr", args.sr_checkpoint), ("segmentation", args.seg_checkpoint)):
            checkpoint = given or _train(task_name, args.seconds, folder)
            results.append(bench_task(task_name, checkpoint, args, folder))
            _print(results[-1])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
