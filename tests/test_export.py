"""Export pipeline: ONNX parity with PyTorch, metadata, dynamic shapes, OpenVINO IR."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from test_models import TASKS, VARIANTS, uniform_genotype
from torch import nn

from edgenas.export import ExportVerificationError, export_onnx, read_metadata, run_onnxruntime
from edgenas.models import build_model


@pytest.mark.parametrize(
    "index", range(len(VARIANTS)), ids=lambda i: "-".join(map(str, VARIANTS[i]))
)
def test_every_variant_exports_with_onnxruntime_parity(index, tmp_path):
    task, options = TASKS[index % len(TASKS)]  # every head is exported by 10 variants
    torch.manual_seed(index)
    model = build_model(uniform_genotype(*VARIANTS[index]), task, **options)
    report = export_onnx(model, (1, 3, 24, 32), tmp_path / "m.onnx")
    assert report.max_rel_err <= 1e-4
    # Independent check: run the written file ourselves.
    image = torch.randn(1, 3, 24, 32)
    with torch.no_grad():
        expected = model.eval()(image).numpy()
    got = run_onnxruntime(tmp_path / "m.onnx", image.numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_report_metadata_and_checker(tmp_path):
    genotype = uniform_genotype("ib", 6, 5, 25, True)
    model = build_model(genotype, "segmentation", num_classes=4).train()
    report = export_onnx(model, (1, 3, 32, 40), tmp_path / "seg.onnx", metadata={"note": "hi"})
    assert model.training  # mode restored
    assert report.output_shape == (1, 4, 32, 40)
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.macs > 0 and report.opset == 17
    assert set(report.seconds) == {"export", "simplify", "check", "verify"}
    onnx.checker.check_model(onnx.load(report.path), full_check=True)
    meta = read_metadata(report.path)
    assert meta["genotype"] == genotype.encode()
    assert meta["task"] == "segmentation"
    assert meta["task.num_classes"] == "4"
    assert meta["input_shape"] == "1x3x32x40"
    assert meta["note"] == "hi"
    assert "version" in meta
    # Static by default.
    dims = onnx.load(report.path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 32, 40]


@pytest.mark.parametrize(("task", "options"), TASKS, ids=[t for t, _ in TASKS])
def test_dynamic_export_runs_at_other_sizes(task, options, tmp_path):
    torch.manual_seed(0)
    model = build_model(uniform_genotype("micro", 1, 3, 25, True), task, **options).eval()
    export_onnx(model, (1, 3, 32, 32), tmp_path / "d.onnx", dynamic=True)
    image = torch.randn(3, 3, 27, 45)
    with torch.no_grad():
        expected = model(image).numpy()
    got = run_onnxruntime(tmp_path / "d.onnx", image.numpy())
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_openvino_ir(tmp_path):
    import openvino as ov

    model = build_model(uniform_genotype("ds", 1, 5, 0, True), "sr", scale=3).eval()
    report = export_onnx(model, (1, 3, 16, 16), tmp_path / "sr.xml", openvino=True)
    assert report.format == "openvino" and "openvino" in report.seconds
    assert (tmp_path / "sr.xml").is_file() and (tmp_path / "sr.bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.bin", "sr.xml"]
    compiled = ov.Core().compile_model(
        str(tmp_path / "sr.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    image = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        expected = model(image).numpy()
    np.testing.assert_allclose(compiled(image.numpy())[0], expected, rtol=1e-4, atol=1e-4)


class NoisyNet(nn.Module):
    """Adds fresh noise at every call: its ONNX export can never match PyTorch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + torch.rand_like(x[:, :2])


def test_mismatch_fails_loudly_and_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "noisy.onnx"
    with pytest.raises(ExportVerificationError, match="differs from PyTorch"):
        export_onnx(NoisyNet(), (1, 3, 8, 8), target)
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no staging folder left either


def test_existing_file_survives_a_failed_export(tmp_path):
    target = tmp_path / "keep.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(ExportVerificationError):
        export_onnx(NoisyNet(), (1, 3, 8, 8), target)
    assert target.read_bytes() == b"previous"


def test_example_input_is_used_for_tracing_and_checked(tmp_path):
    model = build_model(uniform_genotype("conv", 1, 3, 0, True), "depth").eval()
    example = torch.rand(1, 3, 16, 24)
    report = export_onnx(model, (1, 3, 16, 24), tmp_path / "e.onnx", example=example)
    with torch.no_grad():
        expected = model(example).numpy()
    assert report.max_abs_err == pytest.approx(
        float(np.abs(run_onnxruntime(tmp_path / "e.onnx", example.numpy()) - expected).max()),
        abs=1e-12,
    )
    with pytest.raises(ValueError, match="example shape"):
        export_onnx(model, (1, 3, 16, 16), tmp_path / "f.onnx", example=example)
