"""`edgenas profile --precision`: int8 measured for real, fp16 only where it exists.

A tiny float ONNX network is quantized on the fly (random calibration) and measured in
onnxruntime and OpenVINO; the result must say int8 in the model, the runtime and the
provenance, and name the file the user gave. The refusals are checked on the decisions
themselves (pure functions) and through the console script.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edgenas.devices.modelinfo import inspect_model, sha256_file
from edgenas.devices.precision import (
    check_model_precision,
    check_plugin_precision,
    graph_precision,
    unsupported_reason,
)

from edgenas.cli import main
from edgenas.cli.profile_cmd import ON_THE_FLY
from edgenas.errors import UserError

FAST = ["--runs", "3", "--warmup", "1", "--sessions", "1", "--cooldown", "0"]


@pytest.fixture(scope="module")
def float_onnx(tmp_path_factory) -> Path:
    """A two-convolution float network, 1x3x16x16."""
    import torch

    from edgenas.latency_table import export_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 3, 3, padding=1),
    ).eval()
    path = tmp_path_factory.mktemp("precision") / "net.onnx"
    export_model(model, (1, 3, 16, 16), path, verified=True)
    return path


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))


def test_graph_precision_reads_the_operators():
    assert graph_precision(["Conv", "Relu"]) == "fp32"
    assert graph_precision(["Conv"], float16_weights=True) == "fp16"
    assert graph_precision(["QuantizeLinear", "DequantizeLinear", "Conv"]) == "int8"
    assert graph_precision(["Convolution", "FakeQuantize"]) == "int8"


def test_fp16_is_refused_where_no_fp16_kernels_exist():
    assert "fp16 kernels" in unsupported_reason("onnxruntime", "fp16")
    assert "fp16 kernels" in unsupported_reason("adb", "fp16")
    assert unsupported_reason("openvino", "fp16") is None  # the plugin is asked instead
    assert unsupported_reason("onnxruntime", "int8") is None
    assert "unknown precision" in unsupported_reason("onnxruntime", "bf8")
    with pytest.raises(UserError, match="no FP16 support"):
        check_plugin_precision("CPU", ["FP32", "INT8"], "fp16")
    check_plugin_precision("GPU", ["FP32", "FP16", "INT8"], "fp16")
    check_plugin_precision("CPU", ["FP32"], "fp32")


def test_a_quantized_file_cannot_be_measured_wider():
    check_model_precision("fp32", "int8")  # quantized on the fly
    check_model_precision("int8", "int8")
    with pytest.raises(UserError, match="stored as int8"):
        check_model_precision("int8", "fp32")


@pytest.mark.parametrize("device", ["cpu", "openvino-cpu"])
def test_int8_of_a_float_model_is_quantized_and_measured(float_onnx, tmp_path, device):
    out = tmp_path / "r.json"
    code = main(["profile", str(float_onnx), "--device", device, *FAST, "--precision", "int8",
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text())
    assert data["model"]["precision"] == "int8"
    assert data["model"]["quantized"] == ON_THE_FLY
    assert data["model"]["path"] == str(float_onnx)  # the user's file, not the temp copy
    assert data["model"]["sha256"] == sha256_file(float_onnx)
    assert data["model"]["size_bytes"] == float_onnx.stat().st_size
    assert data["runtime"]["precision"] == "int8"
    assert data["timings"]["median_ms"] > 0


def test_a_float_model_reports_f32_and_an_int8_file_is_measured_as_it_is(
    float_onnx, tmp_path, capsys
):
    from edgenas.quantize import quantize_onnx, random_batches

    assert inspect_model(float_onnx).precision == "fp32"
    int8 = tmp_path / "int8.onnx"
    quantize_onnx(float_onnx, int8, random_batches(2, (1, 3, 16, 16)))
    assert inspect_model(int8).precision == "int8"
    out = tmp_path / "r.json"
    assert main(["profile", str(int8), *FAST, "--precision", "int8", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["model"]["path"] == str(int8) and "quantized" not in data["model"]
    assert data["runtime"]["precision"] == "int8"
    capsys.readouterr()
    assert main(["profile", str(int8), *FAST, "--precision", "fp32"]) == 2
    assert "stored as int8" in capsys.readouterr().err
