"""INT8 post-training quantization of exported models, calibrated on images.

Two tools, one per runtime family:

* :func:`quantize_onnx`: onnxruntime static quantization of an ONNX file in the QDQ
  format (QuantizeLinear / DequantizeLinear pairs around each quantized operator; the
  format every ONNX runtime and OpenVINO read), int8 weights with one scale per output
  channel, uint8 activations with min-max ranges from the calibration images.
* :func:`quantize_openvino`: NNCF's post-training quantization of an OpenVINO model
  (FakeQuantize nodes the CPU plugin runs as int8 kernels), with NNCF's fast bias
  correction; measured better than reading the onnxruntime QDQ file into OpenVINO (see
  docs/deploy-int8.md).

Calibration images come as NCHW float32 arrays (:func:`calibration_batches` builds
them from a task's dataset; :func:`random_batches` from noise, for latency only).
Everything here is a pure function of files and arrays; the export command does the
rest (staging, verification, reports).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgenas.errors import UserError

if TYPE_CHECKING:  # numpy loads with the functions: the command line reads the constants
    import numpy as np

# The --quantize choices. fp16 would be a cast, not a calibration; it belongs to profile.
PRECISIONS = ("int8",)
# Images calibrated on by default: min-max ranges settle within a few dozen images of a
# dataset (docs/deploy-int8.md), and calibration time grows linearly with the count.
DEFAULT_CALIBRATION_IMAGES = 32


@dataclass(frozen=True)
class QuantizedGraph:
    """What an INT8 ONNX file holds: quantize / dequantize nodes and how its weights are
    scaled (a weight with one scale per output channel is per-channel)."""

    quantize_nodes: int
    dequantize_nodes: int
    per_channel_weights: int
    per_tensor_weights: int

    def to_dict(self) -> dict:
        return asdict(self)


# ----- calibration images ----------------------------------------------------------------


def evenly_spaced(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them when fewer)."""
    if count >= total:
        return list(range(total))
    return [int(i * total / count) for i in range(count)]


def _group(images: list[np.ndarray], batch: int) -> list[np.ndarray]:
    """Images (CHW) grouped into NCHW batches of ``batch`` (the last one padded by
    repeating images, for networks exported with a fixed batch size)."""
    import numpy as np

    batches = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        chunk += [chunk[i % len(chunk)] for i in range(batch - len(chunk))]
        batches.append(np.stack(chunk).astype(np.float32))
    return batches


def calibration_batches(dataset, count: int, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Up to ``count`` images of ``dataset`` (evenly spaced, so a sorted folder gives
    every scene), resized to ``shape`` (NCHW: the deploy size) and grouped into batches
    of its N.

    The images are the network's inputs as the task's reader gives them (the
    low-resolution image for super-resolution), without augmentation.
    """
    from edgenas.inference import resize_images

    images = []
    for index in evenly_spaced(len(dataset), count):
        image = dataset[index][0]
        images.append(resize_images(image[None].float(), tuple(shape[2:]))[0].numpy())
    if not images:
        raise UserError(
            f"no images to calibrate on in {getattr(dataset.info, 'root', 'the data')}; "
            "give --calibration-data DIR with images of the task's layout"
        )
    return _group(images, shape[0])


def random_batches(count: int, shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """``count`` uniform [0, 1) images of ``shape`` in batches of its N: the ranges of
    networks with random weights, for a latency-only int8 model."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = [rng.random(shape[1:], dtype=np.float32) for _ in range(count)]
    return _group(images, shape[0])


# ----- onnxruntime -------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer advises on the root logger ("consider pre-processing"):
    the models are already simplified by onnxsim, so the advice is noise here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _reader(batches: Sequence[np.ndarray], input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """Feeds the calibration batches once, in order."""

        def __init__(self) -> None:
            self._batches = iter(batches)

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def _input_name(path: Path) -> str:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in proto.graph.initializer}
    return next(v.name for v in proto.graph.input if v.name not in initializers)


def quantize_onnx(
    source: str | Path,
    destination: str | Path,
    batches: Sequence[np.ndarray],
    *,
    per_channel: bool = True,
) -> None:
    """Quantize the float ONNX file ``source`` to INT8 QDQ at ``destination``.

    onnxruntime static quantization: weights int8 (symmetric; one scale per output
    channel with ``per_channel``), activations uint8 with min-max ranges over
    ``batches`` (NCHW float32 arrays the model takes). The ``edgenas.*`` metadata of
    ``source`` is kept.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if not batches:
        raise UserError("no calibration images: give --calibration-data DIR")
    source = Path(source)
    with _quiet_root_logger():
        quantize_static(
            str(source),
            str(destination),
            _reader(batches, _input_name(source)),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def onnx_quantization(path: str | Path) -> QuantizedGraph:
    """Count the QDQ nodes of an ONNX file and how its weights are scaled.

    A weight is a constant (initializer) fed to a DequantizeLinear; it is per-channel
    when its scale is a vector (one value per output channel).
    """
    import numpy as np
    import onnx

    proto = onnx.load(str(path))
    constants = {init.name: init for init in proto.graph.initializer}
    per_channel = per_tensor = 0
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in constants:
            continue
        if constants[node.input[0]].data_type != onnx.TensorProto.INT8:
            continue  # int32 biases: their scale follows the weight's and the input's
        scale = constants.get(node.input[1])
        dims = list(scale.dims) if scale is not None else []
        if dims and int(np.prod(dims)) > 1:
            per_channel += 1
        else:
            per_tensor += 1
    types = [node.op_type for node in proto.graph.node]
    return QuantizedGraph(
        quantize_nodes=types.count("QuantizeLinear"),
        dequantize_nodes=types.count("DequantizeLinear"),
        per_channel_weights=per_channel,
        per_tensor_weights=per_tensor,
    )


# ----- OpenVINO through NNCF ---------------------------------------------------------------


def quantize_openvino(
    source: str | Path,
    destination: str | Path,
    batches: Sequence[np.ndarray],
) -> None:
    """Quantize a float model (ONNX file or OpenVINO IR) with NNCF to an INT8 OpenVINO
    IR at ``destination`` (``.xml``; the ``.bin`` lands beside it).

    NNCF's default post-training quantization: int8 per-channel symmetric weights,
    activations with ranges over ``batches``, then fast bias correction (which shifts
    each quantized layer's bias to cancel the mean error quantization brings).
    """
    import nncf
    import openvino as ov

    if not batches:
        raise UserError("no calibration images: give --calibration-data DIR")
    nncf.set_log_level(logging.ERROR)
    model = ov.Core().read_model(str(source))
    # NNCF draws its own progress bars on standard output, which --json keeps for the
    # JSON: the export command shows its own progress instead.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        quantized = nncf.quantize(
            model,
            nncf.Dataset(list(batches)),
            subset_size=len(batches),
            target_device=nncf.TargetDevice.CPU,
        )
    ov.save_model(quantized, str(destination), compress_to_fp16=False)


def openvino_fake_quantize_nodes(path: str | Path) -> int:
    """FakeQuantize nodes of an OpenVINO IR (what NNCF inserts; 0 for a float IR)."""
    import openvino as ov

    model = ov.Core().read_model(str(path))
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


# ----- fp32 vs int8 -------------------------------------------------------------------------


def output_difference(fp32: str | Path, int8: str | Path, batch: np.ndarray) -> dict:
    """How far the int8 model's output is from the fp32 model's on one input batch:
    the largest and the mean absolute difference, relative to the fp32 output's
    largest magnitude (0.01: 1% of the output range)."""
    import numpy as np
    import torch

    from edgenas.inference import load_predictor

    images = torch.from_numpy(batch)
    reference = load_predictor(fp32)(images).numpy()
    quantized = load_predictor(int8)(images).numpy()
    scale = max(float(np.abs(reference).max()), 1e-12)
    difference = np.abs(reference - quantized)
    return {
        "max_rel": float(difference.max()) / scale,
        "mean_rel": float(difference.mean()) / scale,
    }


def accuracy_pair(fp32, int8, task, data, input_size) -> dict:
    """The task's metrics of both models on ``data`` (the project's own evaluation:
    PSNR/SSIM for super-resolution, mIoU for segmentation, REL/delta1 for depth) and
    int8 minus fp32 per metric."""
    from edgenas.inference import evaluate
    from edgenas.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    before = evaluate(fp32, task, data, input_size=input_size)
    after = evaluate(int8, task, data, input_size=input_size)
    return {
        "metric": task.primary_metric,
        "fp32": before,
        "int8": after,
        "delta": {name: after[name] - before[name] for name in before},
    }


def latency_pair(fp32, int8, device: str, input_shape, protocol) -> dict:
    """Median latency of both models on ``device`` (``cpu``: onnxruntime on this
    machine; ``openvino-cpu`` for IR) and the speed-up fp32 / int8.

    The ``protocol.sessions`` sessions of the two models alternate (fp32, int8, fp32,
    ...), so that a machine that gets busier or quieter meanwhile moves both alike;
    each latency is the median of its session medians.
    """
    import statistics
    from dataclasses import replace

    from edgenas.devices.profile import profile_model
    from edgenas.export import INPUT_NAME

    shapes = {INPUT_NAME: tuple(input_shape)}
    one_session = replace(protocol, sessions=1)
    medians: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(protocol.sessions):
        for name, path in (("fp32", fp32), ("int8", int8)):
            result = profile_model(path, device, one_session, input_shapes=shapes)
            medians[name].append(result.median_ms)
    before, after = (statistics.median(medians[name]) for name in ("fp32", "int8"))
    return {
        "device": device,
        "input_shape": list(input_shape),
        "protocol": protocol.to_dict(),
        "fp32_ms": before,
        "int8_ms": after,
        "speedup": before / after if after > 0 else None,
        "sessions_ms": medians,
    }


class SpacedSubset:
    """Up to ``count`` evenly spaced items of a dataset, with its ``info`` and ``size``
    (what the evaluation reads): a bounded accuracy check on a large validation set."""

    def __init__(self, dataset, count: int) -> None:
        self.dataset = dataset
        self.indices = evenly_spaced(len(dataset), count)
        self.info = dataset.info
        self.size = getattr(dataset, "size", None)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]
