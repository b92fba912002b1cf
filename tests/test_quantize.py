"""INT8 export (issue 16): `edgenas export --quantize int8` of a trained checkpoint runs in
onnxruntime and OpenVINO, holds QDQ nodes with per-channel weight scales, stays close to
fp32 on real images, and reports fp32 vs int8 accuracy and latency.

One tiny segmentation network is trained for a few steps on the built-in data once for
the module; the int8 exports run the real command line.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from edgenas.cli import main
from edgenas.quantize import (
    calibration_batches,
    onnx_quantization,
    quantize_onnx,
    random_batches,
)

TINY = "S2:" + "-".join(["ds_k3_se0_res_c8_n1"] * 12)
SIZE = (32, 40)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A segmentation checkpoint trained for a few steps on the built-in scenes, with
    the training metadata `edgenas train` stores (input size, data)."""
    from edgenas.models import build_model
    from edgenas.tasks import get_task
    from edgenas.training import Budget, train

    torch.manual_seed(0)
    task = get_task("seg")
    train_data = task.dataset(None, "train", size=SIZE)
    model = build_model(TINY, "segmentation", num_classes=train_data.info.num_classes)
    path = tmp_path_factory.mktemp("int8-ckpt") / "checkpoint.pt"
    extra = {"input": list(SIZE), "data": "<built-in>", "format": "demo"}
    train(model, task, train_data, None, Budget(steps=6), checkpoint=path, extra=extra)
    return path


@pytest.fixture(scope="module")
def onnx_int8(checkpoint, tmp_path_factory):
    """The int8 ONNX export of the checkpoint (8 calibration images), its printed text,
    and the folder it was written to."""
    folder = tmp_path_factory.mktemp("int8-onnx")
    out = folder / "seg-int8.onnx"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["export", "--checkpoint", str(checkpoint), "--quantize", "int8",
                     "--calibration-images", "8", "--validation-images", "6", "-o", str(out)])  # fmt: skip
    assert code == 0
    return out, printed.getvalue(), folder


def _calibration_like_input() -> np.ndarray:
    """A built-in training scene at the deploy size: what the model was calibrated on."""
    from edgenas.tasks import get_task

    data = get_task("seg").dataset(None, "train", size=None)
    return calibration_batches(data, 1, (1, 3, *SIZE))[0]


def test_int8_onnx_has_qdq_nodes_per_channel_weights_and_runs_in_ort_and_openvino(
    checkpoint, onnx_int8
):
    import openvino as ov

    from edgenas.checkpoint import load_checkpoint, model_from_checkpoint
    from edgenas.export import read_metadata, run_onnxruntime

    path, _text, folder = onnx_int8
    assert sorted(p.name for p in folder.iterdir()) == ["seg-int8.onnx"]  # no staging left
    graph = onnx_quantization(path)
    assert graph.quantize_nodes > 0 and graph.dequantize_nodes > graph.quantize_nodes
    assert graph.per_channel_weights > 0 and graph.per_tensor_weights == 0
    onnx.checker.check_model(onnx.load(str(path)))
    meta = read_metadata(path)
    assert meta["precision"] == "int8" and meta["task"] == "segmentation"

    image = _calibration_like_input()
    model = model_from_checkpoint(load_checkpoint(checkpoint)).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(image)).numpy()
    by_ort = run_onnxruntime(path, image)
    by_openvino = ov.Core().compile_model(str(path), "CPU")(image)[0]
    span = float(np.abs(expected).max())
    for got in (by_ort, by_openvino):
        assert got.shape == expected.shape
        # 8-bit: the mean error is a small share of the output range, and the class
        # picked per pixel mostly agrees with fp32.
        assert np.abs(got - expected).mean() < 0.05 * span
        assert (got.argmax(1) == expected.argmax(1)).mean() > 0.9
    # Dynamic height and width, like the fp32 export of trained weights.
    classes = expected.shape[1]
    assert run_onnxruntime(path, np.zeros((2, 3, 40, 48), np.float32)).shape == (2, classes, 40, 48)


def test_int8_onnx_prints_fp32_and_int8_accuracy_and_latency(onnx_int8):
    _path, text, _folder = onnx_int8
    assert "int8 vs fp32 (onnxruntime, 8 calibration images)" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    miou = [cell.strip() for cell in rows["miou"].split("│")[2:5]]
    assert all(cell for cell in miou)  # fp32, int8 and the change
    latency = next(row for name, row in rows.items() if name.startswith("latency ms (cpu"))
    assert "faster" in latency or "slower" in latency
    assert "calibrated on 8 images of <built-in>" in text


def test_int8_openvino_json_summary_has_both_accuracies_and_latencies(checkpoint, tmp_path, capsys):
    import openvino as ov

    out = tmp_path / "seg-int8.xml"
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(checkpoint), "--quantize", "int8",
                 "--format", "openvino", "--calibration-images", "4", "--validation-images", "4",
                 "-o", str(out),
                 "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)  # standard output holds only the JSON
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg-int8.bin", "seg-int8.xml"]
    quantization = report["quantization"]
    assert quantization["tool"] == "nncf" and quantization["graph"]["fake_quantize_nodes"] > 0
    assert quantization["calibration"] == {"source": "<built-in>", "split": "train", "images": 4}
    accuracy = quantization["accuracy"]
    assert accuracy["metric"] == "miou" and accuracy["images"] > 0
    for precision in ("fp32", "int8"):
        assert 0 <= accuracy[precision]["miou"] <= 1
    assert accuracy["delta"]["miou"] == pytest.approx(
        accuracy["int8"]["miou"] - accuracy["fp32"]["miou"]
    )
    latency = quantization["latency"]
    assert latency["device"] == "openvino-cpu" and latency["input_shape"] == [1, 3, *SIZE]
    assert latency["fp32_ms"] > 0 and latency["int8_ms"] > 0
    assert latency["speedup"] == pytest.approx(latency["fp32_ms"] / latency["int8_ms"])
    # The IR runs on OpenVINO's CPU plugin at another size (dynamic height and width).
    compiled = ov.Core().compile_model(str(out), "CPU")
    assert compiled(np.zeros((1, 3, 40, 48), np.float32))[0].shape[2:] == (40, 48)


def test_random_weights_quantize_for_latency_only(tmp_path, capsys):
    out = tmp_path / "latency-int8.onnx"
    assert main(["export", "--genotype", TINY, "--task", "depth", "--input", "1x3x24x32",
                 "--quantize", "int8", "--calibration-images", "4", "-o", str(out),
                 "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)["quantization"]
    assert report["accuracy"] is None
    assert report["calibration"]["source"] == "random images"
    assert report["latency"]["int8_ms"] > 0 and onnx_quantization(out).quantize_nodes > 0


def test_per_tensor_quantization_has_one_scale_per_weight(tmp_path):
    """The per-channel count is not a constant: without per_channel every weight has
    one scale."""
    from edgenas.export import export_onnx
    from edgenas.models import build_model

    model = build_model(TINY, "depth")
    export_onnx(model, (1, 3, 16, 16), tmp_path / "f.onnx")
    batches = random_batches(2, (1, 3, 16, 16))
    quantize_onnx(tmp_path / "f.onnx", tmp_path / "t.onnx", batches, per_channel=False)
    graph = onnx_quantization(tmp_path / "t.onnx")
    assert graph.per_channel_weights == 0 and graph.per_tensor_weights > 0
    assert onnx_quantization(tmp_path / "f.onnx").quantize_nodes == 0


def test_calibration_batches_group_images_to_the_input_batch():
    from edgenas.tasks import get_task

    data = get_task("seg").dataset(None, "val", size=None)
    batches = calibration_batches(data, 5, (2, 3, 16, 20))
    assert [b.shape for b in batches] == [(2, 3, 16, 20)] * 3  # 5 images, last padded
    assert all(b.dtype == np.float32 and b.min() >= 0 and b.max() <= 1 for b in batches)
    np.testing.assert_array_equal(batches[2][0], batches[2][1])
