"""Numeric precision of a measurement: what a model file holds and what a runtime runs.

Three precisions matter on edge devices: ``fp32`` (what training gives), ``fp16``
(half-precision kernels on GPUs, NPUs and CPUs with FP16 units) and ``int8``
(quantized models: QDQ ONNX from ``edgenas export --quantize int8``, or an OpenVINO IR
with FakeQuantize nodes from NNCF). The functions here are pure decisions on names and
graph contents; the profile command and the backends act on them.
"""

from __future__ import annotations

from collections.abc import Iterable

from edgenas.errors import UserError

PRECISIONS = ("fp32", "fp16", "int8")

# Operators that only occur in quantized graphs: the QDQ pairs onnxruntime's static
# quantization writes, the older integer operator format, and OpenVINO's FakeQuantize.
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "FakeQuantize",
    }
)


def graph_precision(op_types: Iterable[str], float16_weights: bool = False) -> str:
    """The precision a graph's weights are stored in: ``int8`` when any quantization
    operator is present, ``fp16`` when its float weights are half precision, else
    ``fp32``."""
    if any(op in QUANTIZED_OPS for op in op_types):
        return "int8"
    return "fp16" if float16_weights else "fp32"


def unsupported_reason(backend: str, precision: str) -> str | None:
    """Why a device backend cannot run ``precision`` at all (None when it can, or may:
    OpenVINO plugins are asked at compile time, see :func:`check_plugin_precision`).

    onnxruntime's CPU provider has no fp16 convolution kernels (it would run casts
    around fp32 ones), and the Android runner measures the ONNX file on the phone's
    CPU provider: neither gives an fp16 figure worth comparing.
    """
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
    if precision == "fp16" and backend in ("onnxruntime", "adb"):
        return (
            "onnxruntime's CPU provider has no fp16 kernels (it would time casts around "
            "fp32 ones); profile fp16 on an OpenVINO device whose plugin has FP16, or use "
            "--precision int8"
        )
    return None


def check_plugin_precision(plugin: str, capabilities: Iterable[str], precision: str) -> None:
    """Refuse fp16 on an OpenVINO plugin without FP16 capability: the plugin would
    silently run fp32 and the figure would be labelled wrongly."""
    caps = set(capabilities)
    if precision == "fp16" and "FP16" not in caps:
        raise UserError(
            f"OpenVINO {plugin} on this machine has no FP16 support (capabilities: "
            f"{', '.join(sorted(caps)) or 'none'}); it would run fp32. Use --precision "
            "int8, or a device whose plugin lists FP16 (a GPU or NPU)"
        )


def check_model_precision(model_precision: str, requested: str) -> None:
    """A quantized (or half-precision) file cannot be measured at a wider precision:
    the float weights are gone. Quantizing a float model is the caller's job."""
    if requested == model_precision or (model_precision == "fp32" and requested != "fp32"):
        return
    raise UserError(
        f"the model is stored as {model_precision}; --precision {requested} needs the fp32 "
        "model (profile the file `edgenas export` wrote before quantizing)"
    )
