"""What an exported model file must look like for edgenas to run it, checked without torch.

`edgenas eval` (and the predictors of :mod:`edgenas.inference`) feed a model one float32
batch of RGB images and read one output. :func:`check_image_model` refuses anything
else in one line naming what the model takes; :func:`read_onnx` applies it to an ONNX
file straight from its protobuf, so the command line can refuse a model (and read its
``edgenas.*`` metadata) before it loads torch or a runtime.
"""

from __future__ import annotations

from pathlib import Path

from edgenas.errors import UserError, first_line

SUPPORTED_MODELS = (
    "eval runs models with one input, a float32 Nx3xHxW image batch (only N, H and W may "
    "be symbolic), and one output"
)
# Element type names of a float32 input: onnxruntime's, OpenVINO's and ONNX's own.
FLOAT32_NAMES = (None, "tensor(float)", "f32", "FLOAT")


def _dims(shape) -> str:
    return "x".join(str(d) if isinstance(d, int) else str(d or "?") for d in shape)


def check_image_model(path: str | Path, inputs: list, outputs: list) -> None:
    """Refuse an exported model the predictors cannot feed, naming what it takes.

    ``inputs``: (name, shape, element type name) per input, symbolic dimensions as
    strings or None; ``outputs``: the output names.
    """
    if len(inputs) != 1:
        names = ", ".join(name for name, _shape, _type in inputs)
        raise UserError(f"{path} has {len(inputs)} inputs ({names}); {SUPPORTED_MODELS}")
    name, shape, element = inputs[0]
    if len(shape) != 4 or shape[1] != 3:
        raise UserError(f"{path} takes {name} {_dims(shape)}; {SUPPORTED_MODELS}")
    if element not in FLOAT32_NAMES:
        raise UserError(f"{path} takes {name} as {element}; {SUPPORTED_MODELS}")
    fixed = [isinstance(d, int) for d in shape[2:]]
    if fixed[0] != fixed[1]:
        raise UserError(
            f"{path} takes {name} {_dims(shape)}: a fixed height with a free width or the "
            f"other way round; {SUPPORTED_MODELS}, with both H and W fixed or both free"
        )
    if len(outputs) != 1:
        raise UserError(
            f"{path} has {len(outputs)} outputs ({', '.join(outputs)}); {SUPPORTED_MODELS}"
        )


def read_onnx(path: str | Path) -> dict[str, str]:
    """Check that ``path`` is an ONNX model edgenas can run (see :func:`check_image_model`)
    and return its ``edgenas.*`` metadata (keys as stored, e.g. ``edgenas.task``).

    Initializers listed among the graph inputs (older exporters do that) are weights,
    not inputs. The file is parsed, not run: onnxruntime still has the last word.
    """
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends: not an ONNX file
        raise UserError(f"cannot load ONNX model {path}: {first_line(err)}") from None
    weights = {init.name for init in proto.graph.initializer}
    inputs = []
    for value in proto.graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim
        ]
        element = onnx.TensorProto.DataType.Name(tensor.elem_type)
        inputs.append((value.name, dims, element))
    check_image_model(path, inputs, [value.name for value in proto.graph.output])
    return {prop.key: prop.value for prop in proto.metadata_props}
