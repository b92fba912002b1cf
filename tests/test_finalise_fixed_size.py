"""The fixed-size twin of a final model (``<name>.static.onnx``, edgenas.finalise)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgenas.finalise import (
    FASTER,
    DeployedModel,
    FixedSizeFile,
    _fixed_size_twin,
    finalise_model,
    fixed_size_text,
)
from edgenas.models import build_model
from edgenas.tasks.defaults import default_genotype

SHAPE = (1, 3, 32, 40)


def _input_dims(path) -> list:
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]


def _run(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return build_model(default_genotype("seg"), "seg").eval()


def test_twin_is_fixed_size_and_computes_what_the_any_size_file_does(tmp_path, network):
    example = torch.rand(SHAPE)
    messages = []
    deployed = finalise_model(
        network, tmp_path, SHAPE, example, "cpu", threads=1, fixed_size=True, log=messages.append
    )
    assert deployed.fixed is not None
    static, dynamic = tmp_path / "best.static.onnx", tmp_path / "best.onnx"
    assert deployed.fixed.onnx_path == str(static)
    # The twin takes exactly the deploy size; the headline file any size.
    assert _input_dims(static) == list(SHAPE)
    assert all(isinstance(d, str) for d in _input_dims(dynamic)[2:])
    np.testing.assert_allclose(_run(static, example), _run(dynamic, example), rtol=1e-4, atol=1e-5)
    latency = json.loads((tmp_path / "best.static.latency.json").read_text())
    assert latency["timings"]["median_ms"] == pytest.approx(deployed.fixed.latency_ms)
    ratio = deployed.fixed.latency_ms / deployed.latency_ms
    assert deployed.fixed.ratio == pytest.approx(ratio)
    assert deployed.fixed.faster == (ratio < FASTER)
    verdict = "faster, use it where the input size is fixed" if ratio < FASTER else "no faster"
    assert any(m.startswith(f"fixed-size {static}: ") for m in messages)
    # Stored with the run's summary and rendered for reports.
    data = deployed.to_dict()
    assert data["fixed"]["latency_ms"] == deployed.fixed.latency_ms
    assert fixed_size_text(data) == (
        f"{static}: {deployed.fixed.latency_ms:.2f} ms at 1x3x32x40 on cpu (measured), "
        f"{ratio:.2f}x the any-size file: {verdict}"
    )


def test_no_twin_unless_asked_and_an_earlier_twin_does_not_outlive_its_weights(tmp_path, network):
    # An earlier training's twin in the folder (train --overwrite, a resumed run).
    (tmp_path / "best.static.onnx").write_bytes(b"old weights")
    (tmp_path / "best.static.latency.json").write_text("{}")
    deployed = finalise_model(network, tmp_path, SHAPE, torch.rand(SHAPE), "cpu", threads=1,
                              log=lambda _m: None)  # fmt: skip
    assert deployed.fixed is None
    assert not (tmp_path / "best.static.onnx").exists()
    assert not (tmp_path / "best.static.latency.json").exists()
    assert fixed_size_text(deployed.to_dict()) is None
    assert fixed_size_text({}) is None


class _Noise(nn.Module):
    """Its output is random, so no export of it can verify."""

    def forward(self, x):
        return x + torch.rand_like(x)


def test_a_twin_that_does_not_verify_is_skipped_and_leaves_nothing(tmp_path):
    measured = []
    twin, why = _fixed_size_twin(
        _Noise(), tmp_path, SHAPE, torch.rand(SHAPE), None, "best", measured.append
    )
    assert twin is None and measured == [] and why
    assert list(tmp_path.iterdir()) == []


def test_a_twin_that_cannot_be_measured_does_not_cost_the_run_its_model(tmp_path, network):
    """The device fails while measuring the twin (a phone unplugged, a Ray actor lost):
    the run keeps best.onnx and its latency, says why in one line, and leaves no twin."""
    from edgenas.devices.profile import profile_model
    from edgenas.devices.protocol import Protocol

    def profiler(path, shapes):
        if path.name.endswith(".static.onnx"):
            raise RuntimeError("device went away\nsecond line")
        return profile_model(path, "cpu", Protocol(runs=5, sessions=1), threads=1,
                             input_shapes=shapes)  # fmt: skip

    messages = []
    deployed = finalise_model(network, tmp_path, SHAPE, torch.rand(SHAPE), "cpu",
                              profiler=profiler, fixed_size=True, log=messages.append)  # fmt: skip
    assert deployed.fixed is None and deployed.latency_ms > 0
    assert (tmp_path / "best.onnx").is_file() and (tmp_path / "best.latency.json").is_file()
    assert not (tmp_path / "best.static.onnx").exists()
    assert not (tmp_path / "best.static.latency.json").exists()
    assert "no fixed-size best.static.onnx (device went away); best.onnx stands" in messages


def test_runs_stored_before_the_twin_read_without_it():
    old = {"onnx_path": "best.onnx", "latency_ms": 3.0}  # a summary's "deployed" before
    assert fixed_size_text(old) is None
    made = DeployedModel("a.onnx", "a.json", SHAPE, 4.0, "cpu", "host", 1e-6,
                         FixedSizeFile("a.static.onnx", "a.static.json", 3.0, 0.75))  # fmt: skip
    assert fixed_size_text(made.to_dict()) == (
        "a.static.onnx: 3.00 ms at 1x3x32x40 on cpu (measured), 0.75x the any-size file: "
        "faster, use it where the input size is fixed"
    )
    same = DeployedModel("a.onnx", "a.json", SHAPE, 4.0, "cpu", "emulated", 1e-6,
                         FixedSizeFile("a.static.onnx", "a.static.json", 3.9, 0.975))  # fmt: skip
    assert fixed_size_text(same.to_dict()).endswith(
        "(emulated), 0.97x the any-size file: no faster"
    )
