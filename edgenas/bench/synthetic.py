"""Synthetic ONNX models of known relative cost, for testing the gate itself.

A chain of ``layers`` identical 3x3 convolutions + ReLU: latency grows about linearly
with ``layers``, so 21 layers is a ~5% slower model than 20 and 25 layers ~25% slower.
Built with ``onnx.helper`` (no torch), deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path

from edgenas.atomic import atomic_path


def conv_chain_onnx(
    path: str | Path, layers: int, *, channels: int = 16, size: int = 32, seed: int = 0
) -> Path:
    """Write a ``layers``-deep conv chain taking ``1 x channels x size x size``; returns path."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if layers < 1:
        raise ValueError("layers must be >= 1")
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    current = "input"
    for i in range(layers):
        weight = (rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32)
        bias = np.zeros(channels, dtype=np.float32)
        inits += [numpy_helper.from_array(weight, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        nodes.append(
            helper.make_node("Conv", [current, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1])
        )
        current = "output" if i == layers - 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"c{i}"], [current]))
    shape = [1, channels, size, size]
    graph = helper.make_graph(
        nodes,
        f"conv_chain_{layers}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path
