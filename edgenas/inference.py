"""Predictions and metrics of a torch model or an ONNX file over a dataset."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from edgenas.data.loading import iterate_loader, make_loader
from edgenas.errors import UserError, first_line
from edgenas.model_files import check_image_model


def _check_model_file(path: Path, what: str) -> None:
    """The exported model must be an existing, non-empty file."""
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give the model file")
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty; export it again")


class OnnxPredictor:
    """Run an ONNX model through onnxruntime like a torch module (NCHW float32)."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        path = Path(path)
        _check_model_file(path, "ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise UserError(f"cannot load ONNX model {path}: {first_line(err)}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        check_image_model(
            path,
            [(i.name, i.shape, i.type) for i in inputs],
            [o.name for o in outputs],
        )
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        self.fixed_hw = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.path = path

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.fixed_batch is not None and images.shape[0] != self.fixed_batch:
            return torch.cat([self(images[i : i + 1]) for i in range(images.shape[0])])
        out = self.session.run(None, {self.input_name: images.numpy().astype("float32")})[0]
        return torch.from_numpy(out)


class OpenVinoPredictor:
    """Run an OpenVINO IR (``.xml`` beside its ``.bin``) on OpenVINO's CPU plugin like a
    torch module (NCHW float32), at f32 (the plugin would pick bf16 on CPUs that have it).
    Models exported with dynamic height and width take any image size."""

    def __init__(self, path: str | Path) -> None:
        import openvino as ov

        path = Path(path)
        _check_model_file(path, "OpenVINO IR")
        if not path.with_suffix(".bin").is_file():
            raise UserError(f"{path} is an OpenVINO IR without its weights file {path.stem}.bin")
        core = ov.Core()
        try:
            graph = core.read_model(str(path))
            config = {"INFERENCE_PRECISION_HINT": "f32"}
            config["INFERENCE_NUM_THREADS"] = max(1, torch.get_num_threads())
            self.compiled = core.compile_model(graph, "CPU", config)
        except Exception as err:
            first = first_line(err)
            raise UserError(f"cannot load OpenVINO IR {path}: {first}") from None
        inputs = [
            (
                port.get_any_name(),
                [d.get_length() if d.is_static else None for d in port.get_partial_shape()],
                port.get_element_type().get_type_name(),
            )
            for port in graph.inputs
        ]
        check_image_model(path, inputs, [port.get_any_name() for port in graph.outputs])
        dims = inputs[0][1]
        self.fixed_hw = tuple(dims[2:]) if all(d is not None for d in dims[2:]) else None
        self.fixed_batch = dims[0]
        self.path = path

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.fixed_batch is not None and images.shape[0] != self.fixed_batch:
            return torch.cat([self(images[i : i + 1]) for i in range(images.shape[0])])
        out = self.compiled(images.numpy().astype("float32"))[0]
        return torch.from_numpy(out.copy())


def load_predictor(path: str | Path) -> OnnxPredictor | OpenVinoPredictor:
    """The predictor of an exported file: OpenVINO for ``.xml``, onnxruntime otherwise."""
    if Path(path).suffix == ".xml":
        return OpenVinoPredictor(path)
    return OnnxPredictor(path)


def _predict(predictor, images: torch.Tensor, task_name: str) -> torch.Tensor:
    """Forward pass; ONNX models with a fixed input size get resized input and output."""
    fixed = getattr(predictor, "fixed_hw", None)
    if fixed is None or tuple(images.shape[-2:]) == fixed:
        return predictor(images)
    if task_name == "sr":
        raise UserError(
            f"{_model_name(predictor)} takes a fixed {fixed[0]}x{fixed[1]} input but the image is "
            f"{images.shape[-2]}x{images.shape[-1]}; export one with dynamic height and width: "
            "`edgenas export --checkpoint CKPT` (or `--run runs/NAME` for a search)"
        )
    from torch.nn import functional as F

    small = F.interpolate(images, size=fixed, mode="bilinear", align_corners=False)
    out = predictor(small)
    if out.dim() == 4:
        out = F.interpolate(out, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return out


def _model_name(model) -> str:
    path = getattr(model, "path", None)
    return str(path) if path is not None else "the model"


def check_prediction(pred, images, targets, task_name: str, info, model=None) -> None:
    """Refuse a model whose output does not fit the task, naming what it gives and what
    the task needs (a depth model evaluated as segmentation would score nonsense).

    Depth needs one channel, super-resolution three at ``scale`` times the input's
    size, segmentation one per class of the data, classification a score per class.
    """
    name = _model_name(model)
    got = "x".join(map(str, pred.shape))
    if task_name == "classification":
        if pred.dim() != 2 or pred.shape[1] != info.num_classes:
            raise UserError(
                f"{name} outputs {got}, but classification on this data needs N x "
                f"{info.num_classes} class scores; evaluate it with the task it was made for"
            )
        return
    channels = {"depth": 1, "sr": 3, "segmentation": info.num_classes}[task_name]
    what = {
        "depth": "1 channel (depth)",
        "sr": "3 channels (RGB)",
        "segmentation": f"{channels} channels (one per class of {info.root})",
    }[task_name]
    if pred.dim() != 4 or pred.shape[1] != channels:
        guess = {1: " (a depth model?)", 3: " (a super-resolution model?)"}.get(
            int(pred.shape[1]) if pred.dim() == 4 else -1, ""
        )
        raise UserError(
            f"{name} outputs {got}{guess}, but --task {task_name} needs {what}; "
            "evaluate it with the task it was made for"
        )
    if task_name == "sr" and tuple(pred.shape[-2:]) != tuple(targets.shape[-2:]):
        low = images.shape[-2:]
        factor = pred.shape[-2] / low[0]
        raise UserError(
            f"{name} upscales {low[0]}x{low[1]} to {pred.shape[-2]}x{pred.shape[-1]} "
            f"(x{factor:g}), but --scale {info.scale} needs "
            f"{targets.shape[-2]}x{targets.shape[-1]}; evaluate it with --scale {factor:g}"
        )


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an image batch to ``size`` (H, W), a no-op at that size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    from torch.nn import functional as F

    return F.interpolate(
        images, size=tuple(size), mode="bilinear", align_corners=False, antialias=True
    ).clamp_(0, 1)


def evaluate(
    model: nn.Module | str | Path | OnnxPredictor | OpenVinoPredictor,
    task,
    data: Dataset,
    *,
    batch_size: int = 8,
    workers: int = 0,
    max_batches: int | None = None,
    input_size: tuple[int, int] | None = None,
) -> dict[str, float]:
    """The task's metrics of a torch model, an ONNX file or an OpenVINO IR over ``data``
    (see :func:`evaluation_meter`)."""
    return evaluation_meter(
        model, task, data, batch_size=batch_size, workers=workers,
        max_batches=max_batches, input_size=input_size,
    ).compute()  # fmt: skip


def class_iou(model, task, data: Dataset, *, input_size=None) -> dict[str, float | None]:
    """Segmentation: IoU of each class of ``data`` by name (None for a class that
    appears in neither the labels nor the predictions), for reports."""
    meter = evaluation_meter(model, task, data, input_size=input_size)
    names = list(data.info.class_names)
    values = meter.iou_per_class().tolist()
    return {
        (names[i] if i < len(names) else f"class {i}"): (None if v != v else float(v))
        for i, v in enumerate(values)
    }


def evaluation_meter(
    model: nn.Module | str | Path | OnnxPredictor | OpenVinoPredictor,
    task,
    data: Dataset,
    *,
    batch_size: int = 8,
    workers: int = 0,
    max_batches: int | None = None,
    input_size: tuple[int, int] | None = None,
):
    """The task's meter after a pass of ``model`` over ``data`` (``.compute()``: metrics).

    ``input_size`` (H, W): depth / segmentation / classification images are resized to
    it before the forward pass (e.g. the training size), while targets stay as the
    dataset gives them (e.g. full resolution). Predictions whose size differs from the
    target's are resized to it bilinearly before scoring. Datasets of whole images
    (``data.size is None``) are evaluated one image at a time.
    """
    from torch.nn import functional as F

    from edgenas.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    if isinstance(model, str | Path):
        model = load_predictor(model)
    info = data.info
    meter = task.meter(info)
    if task.name == "sr" or (hasattr(data, "size") and data.size is None):
        batch_size = 1  # whole images, possibly of different sizes
    loader = make_loader(data, batch_size, workers=workers)
    was_training = isinstance(model, nn.Module) and model.training
    device = torch.device("cpu")
    if isinstance(model, nn.Module):
        model.eval()
        device = next(model.parameters(), torch.zeros(())).device
    try:
        with torch.inference_mode():
            for i, (images, targets) in enumerate(iterate_loader(loader)):
                if max_batches is not None and i >= max_batches:
                    break
                if input_size is not None and task.name != "sr":
                    images = resize_images(images, input_size)
                pred = _predict(model, images.to(device), task.name).float().cpu()
                if i == 0:
                    check_prediction(pred, images, targets, task.name, info, model)
                dense = pred.dim() == 4 and task.name in ("depth", "segmentation")
                if dense and pred.shape[-2:] != targets.shape[-2:]:
                    pred = F.interpolate(
                        pred, size=targets.shape[-2:], mode="bilinear", align_corners=False
                    )
                meter.update(pred, targets)
    finally:
        if was_training:
            model.train()
    return meter
