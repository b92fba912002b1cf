"""What a measurement needs to know about a model file: hash, opset, input shapes.

ONNX files are read with ``onnx``; OpenVINO IR (``.xml`` beside its ``.bin``) with
OpenVINO, for the OpenVINO devices that run it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from edgenas.devices.precision import graph_precision

from edgenas.errors import UserError, first_line

# ONNX TensorProto element types -> numpy dtype names (the ones models actually use).
_ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
}


@dataclass(frozen=True)
class TensorSpec:
    """A graph input: name, dtype name and concrete shape (free dimensions resolved)."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelInfo:
    """An ONNX model file as the profiler sees it."""

    path: str
    sha256: str
    opset: int | None
    inputs: tuple[TensorSpec, ...]
    size_bytes: int
    node_names: tuple[str, ...] = field(default=(), repr=False)
    genotype: str | None = None
    # How the weights are stored: fp32, fp16 or int8 (edgenas.devices.precision).
    precision: str = "fp32"

    def to_dict(self) -> dict:
        data = {
            "path": self.path,
            "sha256": self.sha256,
            "opset": self.opset,
            "size_bytes": self.size_bytes,
            "inputs": [t.to_dict() for t in self.inputs],
            "precision": self.precision,
        }
        if self.genotype is not None:  # the network's genotype, from the file's metadata
            data["genotype"] = self.genotype
        return data


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inspect_model(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None):
    """Read a model file's inputs (ONNX, OpenVINO IR ``.xml``, or ``.tflite``); free
    dimensions come from ``input_shapes``.

    A free dimension without an override becomes 1 for the batch axis (axis 0) and is an
    error elsewhere (the latency of an unknown image size means nothing).
    """
    import onnx

    path = Path(path)
    if path.is_dir():
        raise UserError(f"model {path} is a folder; give an ONNX file")
    if not path.is_file():
        raise UserError(f"model file {path} not found")
    if path.suffix == ".xml":
        return _inspect_openvino_ir(path, dict(input_shapes or {}))
    if path.suffix == ".tflite":  # only the Android benchmark_model runner reads these
        if input_shapes:
            raise UserError("--input is not supported for .tflite files")
        return ModelInfo(str(path), sha256_file(path), None, (), path.stat().st_size)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError and friends
        raise UserError(f"{path} is not a readable ONNX file ({type(err).__name__})") from None
    if not model.graph.node:
        # Protobuf reads an empty file (and many other bytes) as a model without a graph.
        raise UserError(f"{path} holds no ONNX graph (an empty or different kind of file)")
    overrides = dict(input_shapes or {})
    initializers = {init.name for init in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        ttype = value.type.tensor_type
        dims = [
            dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None
            for dim in ttype.shape.dim
        ]
        dims = list(_resolve_dims(path, value.name, dims, overrides))
        inputs.append(
            TensorSpec(value.name, _ONNX_DTYPES.get(ttype.elem_type, "float32"), tuple(dims))
        )
    if overrides:
        raise UserError(f"{path} has no input named {', '.join(overrides)}")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return ModelInfo(
        path=str(path),
        sha256=sha256_file(path),
        opset=opset,
        inputs=tuple(inputs),
        size_bytes=path.stat().st_size,
        node_names=tuple(n.name for n in model.graph.node),
        # Written by `edgenas export` (edgenas.export.METADATA_PREFIX + "genotype"):
        # it maps the per-layer profile back to the genotype's blocks.
        genotype=next((p.value for p in model.metadata_props if p.key == "edgenas.genotype"), None),
        precision=graph_precision(
            (n.op_type for n in model.graph.node),
            float16_weights=any(
                init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer
            ),
        ),
    )


def shapes_for_single_input(info_path: str | Path, shape: tuple[int, ...]) -> dict:
    """Map a single ``--input`` shape to the model's only input name (ONNX or IR)."""
    if Path(info_path).suffix == ".xml":
        import openvino as ov

        names = [port.get_any_name() for port in ov.Core().read_model(str(info_path)).inputs]
    else:
        import onnx

        model = onnx.load(str(info_path), load_external_data=False)
        initializers = {init.name for init in model.graph.initializer}
        names = [v.name for v in model.graph.input if v.name not in initializers]
    if len(names) != 1:
        raise UserError(
            f"{info_path} has {len(names)} inputs; --input only sets the shape of a single-input model"
        )
    return {names[0]: tuple(shape)}


def _resolve_dims(
    path: Path, name: str, dims: list[int | None], overrides: dict
) -> tuple[int, ...]:
    """Concrete input dims from the file's (``None`` = free) and an ``--input`` override."""
    if name in overrides:
        shape = tuple(overrides.pop(name))
        if len(shape) != len(dims) or any(
            d not in (None, s) for d, s in zip(dims, shape, strict=True)
        ):
            raise UserError(
                f"--input {'x'.join(map(str, shape))} does not fit input {name!r} of {path} "
                f"(its shape is {'x'.join('?' if d is None else str(d) for d in dims)})"
            )
        return shape
    resolved = []
    for axis, dim in enumerate(dims):
        if dim is not None:
            resolved.append(dim)
        elif axis == 0:
            resolved.append(1)
        else:
            raise UserError(
                f"input {name!r} of {path} has a free dimension at axis {axis}; "
                "give the shape with --input, e.g. --input 1x3x240x320"
            )
    return tuple(resolved)


def _inspect_openvino_ir(path: Path, overrides: dict) -> ModelInfo:
    """ModelInfo of an OpenVINO IR: its inputs read by OpenVINO; hash and size of .xml+.bin."""
    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise UserError(f"{path} is an OpenVINO IR without its weights file {weights.name}")
    try:
        import openvino as ov
    except ImportError:
        raise UserError("reading OpenVINO IR needs openvino: pip install openvino") from None
    try:
        model = ov.Core().read_model(str(path))
    except Exception as err:
        first = first_line(err)
        raise UserError(f"{path} is not a readable OpenVINO IR ({first})") from None
    inputs = []
    for port in model.inputs:
        name = port.get_any_name()
        dims = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        shape = _resolve_dims(path, name, dims, overrides)
        dtype = port.get_element_type().to_dtype().name
        inputs.append(TensorSpec(name, dtype, shape))
    if overrides:
        raise UserError(f"{path} has no input named {', '.join(overrides)}")
    digest = hashlib.sha256()
    for part in (path, weights):
        digest.update(bytes.fromhex(sha256_file(part)))
    return ModelInfo(
        path=str(path),
        sha256=digest.hexdigest(),
        opset=None,
        inputs=tuple(inputs),
        size_bytes=path.stat().st_size + weights.stat().st_size,
        node_names=tuple(op.get_friendly_name() for op in model.get_ordered_ops()),
        # fp16-compressed IR weights are decompressed to fp32 at load: only FakeQuantize
        # nodes (NNCF's int8) change what runs.
        precision=graph_precision(op.get_type_name() for op in model.get_ordered_ops()),
    )


def random_inputs(info: ModelInfo, seed: int = 0) -> dict:
    """Deterministic random feeds for every input (values do not change latency here)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in info.inputs:
        if spec.dtype.startswith("float"):
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(spec.dtype)
        else:
            feeds[spec.name] = np.zeros(spec.shape, dtype=spec.dtype)
    return feeds
