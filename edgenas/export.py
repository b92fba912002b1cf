"""Export a torch model to a verified ONNX file (and optionally OpenVINO IR).

Pipeline: torch -> ONNX (TorchScript exporter, opset 17) -> onnxsim -> ``onnx.checker``
-> onnxruntime run compared with PyTorch on the same random input. The file appears at
its destination only after every stage passed; a failed verification raises
:class:`ExportVerificationError` and leaves nothing behind.

Why the TorchScript exporter: the ``torch.export``-based exporter needs onnxscript and
takes several seconds per model; a search exports hundreds of small static CNNs, for
which the TorchScript exporter is fast and mature.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from edgenas.atomic import atomic_path
from edgenas.errors import UserError, first_line

DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"
METADATA_PREFIX = "edgenas."
# Errors are judged relative to the output's largest magnitude (an untrained network's
# outputs can be large). 1e-3 is the tolerance of PyTorch's own ONNX export checks:
# trained networks with near-degenerate batch-norm statistics amplify float32 rounding
# differences between runtimes to a few 1e-4 (0.05 of an 8-bit level for an image).
DEFAULT_RTOL = 1e-3


class ExportVerificationError(UserError):
    """The exported model disagrees with PyTorch beyond the tolerance."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` produced and measured."""

    path: str
    format: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dynamic: bool
    opset: int
    params: int
    macs: int
    max_abs_err: float
    max_rel_err: float
    seconds: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    extra_files: list[str] = field(default_factory=list)
    # INT8 exports: how the model was quantized and fp32 vs int8 accuracy and latency
    # (see :func:`export_int8`); None for float exports, whose JSON has no such key.
    quantization: dict | None = None

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["output_shape"] = list(self.output_shape)
        if self.quantization is None:
            del data["quantization"]
        return data


def _torch_to_onnx(
    model: nn.Module, example: torch.Tensor, output_ndim: int, path: Path, dynamic: bool, opset: int
) -> None:
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
        out_axes = {0: "batch"}
        if output_ndim == 4:
            out_axes.update({2: "out_height", 3: "out_width"})
        dynamic_axes[OUTPUT_NAME] = out_axes
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export (see module
        # docstring), and tracing warns about shape arithmetic that is intended here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )


def _simplify(proto: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    with _without_folding_notes():
        simplified, ok = onnxsim.simplify(proto, check_n=0)
    if not ok:  # onnxsim's own check is off; ``ok`` is False only on internal failure
        raise RuntimeError("onnxsim could not simplify the model")
    return simplified


# What onnxsim's constant folding prints (from C++, straight to file descriptor 2) for
# every node it leaves unfolded, e.g. the HR-NAS transformer's Add of a reshaped
# positional map at a fixed size: ``WARNING: failed to run "Add" op (name is ...),
# skip...``. The node is kept as it is and the file is correct (it is verified after),
# so these lines only alarm; a run used to print a dozen of them.
FOLDING_NOTE = "WARNING: failed to run "


@contextlib.contextmanager
def _without_folding_notes():
    """Capture what is written to file descriptor 2 meanwhile (native code writes there,
    whatever ``sys.stderr`` is) and write back every line except onnxsim's
    :data:`FOLDING_NOTE` lines."""
    import sys

    fd = 2
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(fd)
    except OSError:  # no descriptor 2 (a daemon): nothing to show or to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), fd)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().splitlines(keepends=True)
                if not line.startswith(FOLDING_NOTE.encode())
            ]
            if kept:
                os.write(fd, b"".join(kept))


def _errors(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """Max absolute error, and the same relative to the reference's largest magnitude."""
    if reference.shape != candidate.shape:
        raise ExportVerificationError(
            f"exported output shape {candidate.shape} differs from PyTorch's {reference.shape}"
        )
    abs_err = float(np.max(np.abs(reference - candidate))) if reference.size else 0.0
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return abs_err, abs_err / max(scale, 1e-12)


def run_onnxruntime(path: str | Path, array: np.ndarray) -> np.ndarray:
    """Run an ONNX file on one input with onnxruntime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: array})[0]


def _extra_verification_shapes(shape: tuple[int, ...], dynamic: bool) -> list[tuple[int, ...]]:
    """With dynamic axes, a second batch size and image size to verify at."""
    if dynamic and len(shape) == 4:
        n, c, h, w = shape
        return [(n + 1, c, max(8, h * 3 // 4 + 1), max(8, w * 3 // 4 + 1))]
    return []


def _reference_pairs(
    model: nn.Module,
    first: tuple[torch.Tensor, torch.Tensor],
    shapes: list[tuple[int, ...]],
):
    """(input, PyTorch output) pairs: the export example, then the same example resized
    to each of ``shapes`` (odd batch members mirrored), so that every check runs on the
    kind of input the example is: a trained network is checked on real images throughout.
    """
    yield first
    example = first[0][:1].float()
    for n, _c, h, w in shapes:
        resized = torch.nn.functional.interpolate(
            example, size=(h, w), mode="bilinear", align_corners=False
        )
        batch = torch.cat([resized.flip(-1) if i % 2 else resized for i in range(n)])
        with torch.no_grad():
            yield batch, model(batch)


def verify_onnx(
    model: nn.Module,
    path: str | Path,
    first: tuple[torch.Tensor, torch.Tensor],
    other_shapes: list[tuple[int, ...]],
    rtol: float,
) -> tuple[float, float]:
    """Compare onnxruntime with PyTorch on the export example (``first`` = input and
    PyTorch's output) and on it resized to ``other_shapes`` (NCHW); return the worst
    errors."""
    worst_abs = worst_rel = 0.0
    for example, output in _reference_pairs(model, first, other_shapes):
        expected = output.numpy()
        got = run_onnxruntime(path, example.numpy())
        abs_err, rel_err = _errors(expected, got)
        worst_abs, worst_rel = max(worst_abs, abs_err), max(worst_rel, rel_err)
    if worst_rel > rtol:
        raise ExportVerificationError(
            f"onnxruntime output differs from PyTorch: max abs error {worst_abs:.3g}, "
            f"relative {worst_rel:.3g} > tolerance {rtol:g}"
        )
    return worst_abs, worst_rel


def _set_metadata(proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    existing = {prop.key: prop for prop in proto.metadata_props}
    for key, value in metadata.items():
        full_key = key if key.startswith(METADATA_PREFIX) else METADATA_PREFIX + key
        prop = existing.get(full_key) or proto.metadata_props.add()
        prop.key, prop.value = full_key, str(value)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``edgenas.*`` metadata stored in an ONNX file (keys without the prefix)."""
    proto = onnx.load(str(path), load_external_data=False)
    return {
        prop.key[len(METADATA_PREFIX) :]: prop.value
        for prop in proto.metadata_props
        if prop.key.startswith(METADATA_PREFIX)
    }


def default_metadata(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, str]:
    """Genotype (or reference model name), task and options of an edgenas model, input
    shape and edgenas version."""
    from edgenas import __version__

    metadata = {"input_shape": "x".join(map(str, input_shape)), "version": __version__}
    genotype = getattr(model, "genotype", None)
    if genotype is not None:
        metadata["genotype"] = genotype.encode()
    reference = getattr(model, "reference", None)
    if isinstance(reference, str):
        metadata["model"] = reference
    task = getattr(model, "task", None)
    if task is not None:
        metadata["task"] = task
        for key, value in getattr(model, "options", {}).items():
            metadata[f"task.{key}"] = str(value)
    return metadata


@contextlib.contextmanager
def _staging_dir(destination: Path):
    """A temporary folder beside ``destination``, removed whatever happens."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".edgenas-export-", dir=destination.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _naming_failed_writes(destination: Path):
    """A failed write in the staging folder (a full disk, a file size limit) names the
    file the user asked for: the exporters write without a file name in the error, and
    the staging folder is gone by the time the user reads it."""
    try:
        yield
    except OSError as err:
        if err.filename is None or ".edgenas-export-" in str(err.filename):
            err.filename = str(destination)
        raise


def _publish(staged: Path, destination: Path) -> None:
    """Move a finished file from the staging folder to ``destination`` atomically.

    Through :func:`edgenas.atomic.atomic_path`, so the file ends with the mode an
    ordinary ``open()`` gives under the user's umask, whatever the exporter that wrote
    it into the private staging folder chose.
    """
    with atomic_path(destination) as tmp:
        os.replace(staged, tmp)


def _publish_ir(xml: Path, binary: Path, destination: Path) -> Path:
    """Publish an OpenVINO IR pair: the weights first, then the ``.xml`` that names them,
    so a reader never sees an ``.xml`` without its ``.bin``. If the ``.xml`` cannot be
    published, a ``.bin`` that did not exist before is removed again (nothing half
    written stays). Returns the ``.bin`` destination."""
    bin_destination = destination.with_suffix(".bin")
    existed = bin_destination.exists()
    _publish(binary, bin_destination)
    try:
        _publish(xml, destination)
    except BaseException:
        if not existed:
            bin_destination.unlink(missing_ok=True)
        raise
    return bin_destination


def export_onnx(
    model: nn.Module,
    input_shape: tuple[int, ...],
    path: str | Path,
    *,
    dynamic: bool = False,
    metadata: dict[str, str] | None = None,
    opset: int = DEFAULT_OPSET,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
    openvino: bool = False,
    example: torch.Tensor | None = None,
) -> ExportReport:
    """Export ``model`` to a simplified, checked and verified ONNX file at ``path``.

    Args:
        model: the network; exported in eval mode (its mode is restored afterwards).
        input_shape: NCHW shape to trace with (and to verify at).
        path: destination ``.onnx`` file (with ``openvino=True``: the IR ``.xml``; the
            ``.bin`` lands beside it).
        dynamic: make batch, height and width dynamic; then verification also runs at a
            second input size.
        metadata: extra ``edgenas.*`` metadata; genotype (or reference model name), task,
            input shape and version are added for edgenas models.
        opset: ONNX opset.
        rtol: tolerance on the max error relative to the output's largest magnitude.
        seed: seed of the random example when none is given.
        example: a real input of ``input_shape`` to trace and verify with (default:
            seeded standard-normal noise). Trained networks should be verified on data
            like what they will see: far out-of-distribution inputs (noise) can drive
            their activations to extremes where float32 rounding dominates.
        openvino: also convert to OpenVINO IR with ``openvino.convert_model`` and
            ``save_model``, verified the same way on OpenVINO's CPU plugin.

    Raises:
        ExportVerificationError: the exported model disagrees with PyTorch.
    """
    from edgenas.models.complexity import count_macs, count_params

    destination = Path(path)
    input_shape = tuple(int(d) for d in input_shape)
    seconds: dict[str, float] = {}
    was_training = model.training
    model.eval()
    try:
        with _naming_failed_writes(destination), _staging_dir(destination) as staging:
            raw, final = staging / "raw.onnx", staging / "model.onnx"
            if example is None:
                example = torch.randn(input_shape, generator=torch.Generator().manual_seed(seed))
            elif tuple(example.shape) != input_shape:
                raise ValueError(
                    f"example shape {tuple(example.shape)} != input shape {input_shape}"
                )

            start = time.perf_counter()
            with torch.no_grad():
                output = model(example)
                _torch_to_onnx(model, example, output.dim(), raw, dynamic, opset)
            seconds["export"] = time.perf_counter() - start

            start = time.perf_counter()
            proto = _simplify(onnx.load(str(raw)))
            seconds["simplify"] = time.perf_counter() - start

            all_metadata = {**default_metadata(model, input_shape), **(metadata or {})}
            _set_metadata(proto, all_metadata)
            start = time.perf_counter()
            onnx.checker.check_model(proto, full_check=True)
            onnx.save(proto, str(final))
            seconds["check"] = time.perf_counter() - start

            start = time.perf_counter()
            shapes = _extra_verification_shapes(input_shape, dynamic)
            max_abs, max_rel = verify_onnx(model, final, (example, output), shapes, rtol)
            seconds["verify"] = time.perf_counter() - start

            extra: list[str] = []
            if openvino:
                start = time.perf_counter()
                xml, binary = _to_openvino(
                    final, staging, (example, output), shapes, rtol, model, destination
                )
                seconds["openvino"] = time.perf_counter() - start
                extra.append(str(_publish_ir(xml, binary, destination)))
            else:
                _publish(final, destination)
    finally:
        model.train(was_training)

    return ExportReport(
        path=str(destination),
        format="openvino" if openvino else "onnx",
        input_shape=input_shape,
        output_shape=tuple(output.shape),
        dynamic=dynamic,
        opset=opset,
        params=count_params(model),
        macs=count_macs(model, input_shape),
        max_abs_err=max_abs,
        max_rel_err=max_rel,
        seconds=seconds,
        metadata=all_metadata,
        extra_files=extra,
    )


def _to_openvino(
    onnx_path: Path,
    staging: Path,
    first: tuple[torch.Tensor, torch.Tensor],
    other_shapes: list[tuple[int, ...]],
    rtol: float,
    model: nn.Module,
    destination: Path,
) -> tuple[Path, Path]:
    """Convert a verified ONNX file to OpenVINO IR and verify it on the CPU plugin
    (``destination``: where the IR will go, for error messages)."""
    import openvino as ov

    ov_model = ov.convert_model(str(onnx_path))
    xml = staging / "model.xml"
    try:
        ov.save_model(ov_model, str(xml), compress_to_fp16=False)
    except RuntimeError as err:
        # OpenVINO's C++ writer reports a full disk as "iostream error", not an OSError.
        raise UserError(
            f"could not write the OpenVINO IR {destination} ({first_line(err)}): is the disk "
            "full or a file size limit set? Free some space and run the command again"
        ) from None
    core = ov.Core()
    # f32 pinned: the CPU plugin silently picks bf16 on CPUs that support it.
    compiled = core.compile_model(
        core.read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    for example, output in _reference_pairs(model, first, other_shapes):
        got = compiled(example.numpy())[0]
        _abs_err, rel_err = _errors(output.numpy(), np.asarray(got))
        if rel_err > rtol:
            raise ExportVerificationError(
                f"OpenVINO output differs from PyTorch: relative error {rel_err:.3g} > {rtol:g}"
            )
    return xml, staging / "model.bin"


def export_int8(
    model: nn.Module,
    input_shape: tuple[int, ...],
    path: str | Path,
    batches: list[np.ndarray],
    *,
    calibration: dict,
    validation=None,
    openvino: bool = False,
    protocol=None,
    on_stage=None,
    **float_options,
) -> ExportReport:
    """Export ``model`` to INT8 at ``path``: the fp32 model exported and verified as by
    :func:`export_onnx`, quantized, measured against the fp32 model, then published.

    Args:
        batches: calibration inputs (NCHW float32 arrays at ``input_shape``).
        calibration: where they came from (``source``, ``split``, ``images``), reported.
        validation: a dataset to compare fp32 and int8 accuracy on with the task's
            metrics (None: no accuracy, e.g. random weights).
        openvino: an OpenVINO IR quantized by NNCF, timed on ``openvino-cpu``;
            otherwise an ONNX file quantized by onnxruntime (QDQ), timed on ``cpu``.
        protocol: the latency protocol (:class:`edgenas.devices.protocol.Protocol`).
        on_stage: called with a short text as each stage starts (progress display).
        float_options: :func:`export_onnx`'s options (dynamic, opset, rtol, example,
            metadata).

    The report is the fp32 export's with ``path`` the int8 file and ``quantization``
    holding the tool, calibration, graph counts, output difference, accuracy and
    latency. Nothing is written at ``path`` unless every stage passed.
    """
    from edgenas.devices.protocol import Protocol
    from edgenas.quantize import (
        accuracy_pair,
        latency_pair,
        onnx_quantization,
        openvino_fake_quantize_nodes,
        output_difference,
        quantize_onnx,
        quantize_openvino,
    )

    stage = on_stage or (lambda text: None)
    destination = Path(path)
    suffix = ".xml" if openvino else ".onnx"
    with _naming_failed_writes(destination), _staging_dir(destination) as staging:
        fp32, int8 = staging / f"fp32{suffix}", staging / f"int8{suffix}"
        stage("exporting and verifying the fp32 model")
        report = export_onnx(model, input_shape, fp32, openvino=openvino, **float_options)
        stage(f"quantizing to int8 on {calibration['images']} calibration images")
        start = time.perf_counter()
        if openvino:
            tool = "nncf"
            quantize_openvino(fp32, int8, batches)
            graph = {"fake_quantize_nodes": openvino_fake_quantize_nodes(int8)}
        else:
            tool = "onnxruntime"
            quantize_onnx(fp32, int8, batches)
            proto = onnx.load(str(int8))
            _set_metadata(proto, {"precision": "int8", "calibration": calibration["source"]})
            onnx.checker.check_model(proto)
            onnx.save(proto, str(int8))
            graph = onnx_quantization(int8).to_dict()
        report.seconds["quantize"] = time.perf_counter() - start

        start = time.perf_counter()
        difference = output_difference(fp32, int8, batches[0])
        accuracy = None
        if validation is not None:
            stage(f"comparing fp32 and int8 accuracy on {len(validation)} validation images")
            task = getattr(model, "task", None)
            size = None if task == "sr" else tuple(input_shape[2:])
            accuracy = accuracy_pair(fp32, int8, task, validation, size)
            accuracy.update(data=validation.info.root, images=len(validation))
        device = "openvino-cpu" if openvino else "cpu"
        stage(f"timing fp32 and int8 on {device}")
        protocol = protocol or Protocol(**INT8_PROTOCOL_OPTIONS)
        latency = latency_pair(fp32, int8, device, input_shape, protocol)
        report.seconds["compare"] = time.perf_counter() - start

        if openvino:
            _publish_ir(int8, int8.with_suffix(".bin"), destination)
        else:
            _publish(int8, destination)
    report.path = str(destination)
    report.extra_files = [str(destination.with_suffix(".bin"))] if openvino else []
    report.quantization = {
        "precision": "int8",
        "tool": tool,
        "method": QUANTIZATION_METHODS[tool],
        "calibration": calibration,
        "graph": graph,
        "output_difference": difference,
        "accuracy": accuracy,
        "latency": latency,
    }
    return report


# The latency protocol of the fp32 vs int8 comparison: short (the export waits on it)
# but three sessions, so that one disturbed session does not decide the speed-up.
INT8_PROTOCOL_OPTIONS = dict(warmup_runs=5, warmup_min_s=0.05, runs=20, min_time_s=0.1, sessions=3)

# How each tool quantizes (reported with the model; docs/deploy-int8.md explains why).
QUANTIZATION_METHODS = {
    "onnxruntime": "onnxruntime static quantization: QDQ format, int8 per-channel "
    "symmetric weights, uint8 activations, min-max ranges",
    "nncf": "NNCF post-training quantization: int8 per-channel symmetric weights, int8 "
    "activations, min-max ranges, fast bias correction",
}
