"""The LDP training recipe (paper Sec. 2.4) and evaluation, as a plain Python API.

``train(model, task, train_data, val_data, budget=Budget(seconds=60))`` trains with
Adam (betas 0.9/0.999, eps 1e-8), learning rate 7e-4 held for 10 epochs and then
multiplied by 0.95 every 5 epochs (at epochs 10, 15, 20, ...), the task's loss and
augmentation, and stops at the budget (epochs or wall-clock seconds of training,
evaluation not counted). ``evaluate(model_or_onnx, task, data)`` returns the task's
metrics; ``task.normalised_accuracy(metrics)`` maps them to [0, 1] for the search.

Seeds make runs repeatable: the shuffling order, patch draws and augmentation of epoch
``e`` derive from ``(seed, e)``. Checkpoints are written atomically (temp file +
``os.replace``) after every epoch and read with ``torch.load(weights_only=True)``;
``resume=`` continues from the epoch after the last completed one.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from edgenas.errors import UserError

CHECKPOINT_FORMAT = "edgenas-checkpoint-v1"


@dataclass(frozen=True)
class Budget:
    """Stop after ``epochs`` epochs, ``seconds`` of training or ``steps`` steps (first hit)."""

    epochs: int | None = None
    seconds: float | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.seconds is None and self.steps is None:
            raise ValueError("a budget needs epochs, seconds or steps")
        for name in ("epochs", "seconds", "steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"budget {name} must be positive, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the recipe; defaults are the LDP paper's."""

    batch_size: int = 8
    lr: float = 7e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lr_hold_epochs: int = 10
    lr_decay: float = 0.95
    lr_decay_every: int = 5
    seed: int = 0
    workers: int = 0
    augment: bool = True
    class_weights: bool = False
    eval_every_epoch: bool = False
    eval_batch_size: int = 8


@dataclass
class TrainResult:
    """What a training run did and how good the model is on the validation data."""

    metrics: dict[str, float]
    normalised_accuracy: float
    epochs: int
    steps: int
    images: int
    seconds: float
    images_per_second: float
    final_loss: float
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: str | None = None


def lr_factor(epoch: int, config: TrainConfig = TrainConfig()) -> float:
    """Learning-rate multiplier of ``epoch`` (0-based): 1 for the first 10 epochs,
    then 0.95 ** k where k counts the 5-epoch periods started since epoch 10."""
    if epoch < config.lr_hold_epochs:
        return 1.0
    return config.lr_decay ** ((epoch - config.lr_hold_epochs) // config.lr_decay_every + 1)


# ----- checkpoints -----------------------------------------------------------------------


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_spec(model: nn.Module) -> dict | None:
    """``{"genotype", "task", "options"}`` of an edgenas network, None for other modules."""
    genotype = getattr(model, "genotype", None)
    if genotype is None or not hasattr(model, "task"):
        return None
    return {"genotype": genotype.encode(), "task": model.task, "options": dict(model.options)}


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True``; a bad file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not an edgenas checkpoint (written by `edgenas train`)")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network of a checkpoint and load its weights."""
    from edgenas.models.builder import build_model

    spec = ckpt.get("model_spec")
    if spec is None:
        raise UserError("this checkpoint holds no genotype; rebuild the model and load 'model'")
    model = build_model(spec["genotype"], spec["task"], **spec["options"])
    model.load_state_dict(ckpt["model"])
    return model


# ----- data loading ----------------------------------------------------------------------


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # loaders must not fight the training process for cores


def _loader(data: Dataset, batch_size: int, shuffle: bool, workers: int, seed: int, drop_last):
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=generator,
        drop_last=drop_last,
        worker_init_fn=_worker_init if workers else None,
    )


def _iterate(loader: DataLoader):
    """Iterate a loader; a UserError raised in a worker comes back as a one-line UserError."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except UserError:
            raise
        except Exception as err:
            text = str(err)
            if "UserError" in text:
                last = [line for line in text.splitlines() if "UserError:" in line][-1]
                raise UserError(last.split("UserError:", 1)[1].strip()) from None
            raise
        yield batch


# ----- evaluation ------------------------------------------------------------------------


class OnnxPredictor:
    """Run an ONNX model through onnxruntime like a torch module (NCHW float32)."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise UserError(f"ONNX file {path} does not exist")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise UserError(f"cannot load ONNX model {path}: {str(err).splitlines()[0]}") from None
        meta = self.session.get_inputs()[0]
        self.input_name = meta.name
        shape = meta.shape
        self.fixed_hw = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.path = path

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.fixed_batch is not None and images.shape[0] != self.fixed_batch:
            return torch.cat([self(images[i : i + 1]) for i in range(images.shape[0])])
        out = self.session.run(None, {self.input_name: images.numpy().astype("float32")})[0]
        return torch.from_numpy(out)


def _predict(predictor, images: torch.Tensor, task_name: str) -> torch.Tensor:
    """Forward pass; ONNX models with a fixed input size get resized input and output."""
    fixed = getattr(predictor, "fixed_hw", None)
    if fixed is None or tuple(images.shape[-2:]) == fixed:
        return predictor(images)
    if task_name == "sr":
        raise UserError(
            f"the ONNX model takes a fixed {fixed[0]}x{fixed[1]} input but the image is "
            f"{images.shape[-2]}x{images.shape[-1]}; export it with dynamic axes"
        )
    from torch.nn import functional as F

    small = F.interpolate(images, size=fixed, mode="bilinear", align_corners=False)
    out = predictor(small)
    if out.dim() == 4:
        out = F.interpolate(out, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return out


def evaluate(
    model: nn.Module | str | Path | OnnxPredictor,
    task,
    data: Dataset,
    *,
    batch_size: int = 8,
    workers: int = 0,
    max_batches: int | None = None,
) -> dict[str, float]:
    """The task's metrics of a torch model or an ONNX file over ``data``.

    Predictions whose size differs from the target's (segmentation, depth) are resized
    to it bilinearly before scoring.
    """
    from torch.nn import functional as F

    from edgenas.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    if isinstance(model, str | Path):
        model = OnnxPredictor(model)
    info = data.info
    meter = task.meter(info)
    if task.name == "sr":
        batch_size = 1  # whole images of different sizes
    loader = _loader(data, batch_size, False, workers, 0, False)
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.inference_mode():
            for i, (images, targets) in enumerate(_iterate(loader)):
                if max_batches is not None and i >= max_batches:
                    break
                pred = _predict(model, images, task.name)
                dense = pred.dim() == 4 and task.name in ("depth", "segmentation")
                if dense and pred.shape[-2:] != targets.shape[-2:]:
                    pred = F.interpolate(
                        pred, size=targets.shape[-2:], mode="bilinear", align_corners=False
                    )
                meter.update(pred, targets)
    finally:
        if was_training:
            model.train()
    return meter.compute()


# ----- training --------------------------------------------------------------------------


class _Progress:
    """A rich progress bar with loss, metric, images/s and ETA (or nothing)."""

    def __init__(self, enabled: bool, total: float, unit: str) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.progress.start()
        self.bar = self.progress.add_task("train", total=total, status="")
        self.unit = unit

    def update(self, completed: float, status: str) -> None:
        if self.enabled:
            self.progress.update(self.bar, completed=completed, status=status)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


def train(
    model: nn.Module,
    task,
    train_data: Dataset,
    val_data: Dataset | None = None,
    budget: Budget = Budget(seconds=60),
    config: TrainConfig = TrainConfig(),
    *,
    checkpoint: str | Path | None = None,
    resume: str | Path | dict | None = None,
    progress: bool = False,
    extra: dict | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_data`` for ``budget`` and evaluate it on ``val_data``.

    Args:
        model: a network from :func:`edgenas.build_model` (or any module with the
            task's input/output convention).
        task: a :class:`~edgenas.tasks.Task` or its name.
        train_data, val_data: datasets (e.g. ``task.demo_data()``).
        budget: epochs, seconds of training, or steps; the first reached stops training.
        config: hyper-parameters (the paper's recipe by default).
        checkpoint: path written atomically after every epoch and at the end.
        resume: a checkpoint (path or loaded dict) to continue from.
        progress: show a rich progress bar.
        extra: plain values stored in the checkpoint (e.g. dataset description).

    Returns a :class:`TrainResult` with the validation metrics and the normalised
    accuracy (NaN metrics and 0 accuracy when ``val_data`` is None).
    """
    from edgenas.data.augment import AugmentConfig, augment_dense
    from edgenas.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    info = getattr(train_data, "info", None)
    if len(train_data) == 0:
        raise UserError("the training data is empty")
    if resume is None:
        task.init_output(model, train_data)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=config.betas, eps=config.eps
    )
    start_epoch, steps, images_seen, elapsed, history = 0, 0, 0, 0.0, []
    if resume is not None:
        ckpt = load_checkpoint(resume) if not isinstance(resume, dict) else resume
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, steps = int(ckpt["epoch"]), int(ckpt["step"])
        images_seen, history = int(ckpt["images"]), list(ckpt.get("history", []))
        elapsed = float(ckpt.get("seconds", 0.0))

    batch_size = min(config.batch_size, len(train_data))
    steps_per_epoch = max(1, len(train_data) // batch_size)
    if budget.epochs is not None:
        total, unit = budget.epochs * steps_per_epoch, "steps"
    elif budget.steps is not None:
        total, unit = budget.steps, "steps"
    else:
        total, unit = budget.seconds, "seconds"
    bar = _Progress(progress, float(total), unit)
    augment = AugmentConfig(enabled=config.augment)
    ignore = getattr(info, "ignore_index", 255)

    def save(epoch: int, metrics: dict) -> None:
        if checkpoint is None:
            return
        atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "model_spec": model_spec(model),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": steps,
                "images": images_seen,
                "seconds": elapsed,
                "config": asdict(config),
                "metrics": metrics,
                "history": history,
                "dataset": _info_dict(info),
                "extra": extra or {},
            },
            checkpoint,
        )

    run_start = time.perf_counter()
    session_train_time = 0.0
    last_loss = float("nan")
    metrics: dict[str, float] = {}
    epoch = start_epoch
    stop = False
    model.train()
    try:
        while not stop:
            if budget.epochs is not None and epoch >= budget.epochs:
                break
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(epoch, config)
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            seed = config.seed * 100_003 + epoch
            loader = _loader(train_data, batch_size, True, config.workers, seed, True)
            aug_gen = torch.Generator().manual_seed(seed)
            loss_sum, loss_n, completed = 0.0, 0, True
            tick = time.perf_counter()
            for images, targets in _iterate(loader):
                images, targets = augment_dense(
                    images, targets, task.name, aug_gen, augment, ignore
                )
                pred = model(images)
                if task.name == "segmentation":
                    loss = task.loss(pred, targets, info, class_weights=config.class_weights)
                else:
                    loss = task.loss(pred, targets, info)
                if not math.isfinite(loss.item()):
                    raise UserError(
                        f"training diverged (loss {float(loss)}) at step {steps}; "
                        "try a smaller learning rate or another genotype"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                images_seen += images.shape[0]
                loss_sum += loss.item()
                loss_n += 1  # noqa: SIM113 - the loop also breaks early
                last_loss = loss_sum / loss_n
                now = time.perf_counter()
                session_train_time += now - tick
                tick = now
                rate = images_seen / max(elapsed + session_train_time, 1e-9)
                status = f"epoch {epoch + 1} loss {last_loss:.4f} {rate:.1f} img/s"
                if metrics:
                    status += f" {task.primary_metric} {metrics.get(task.primary_metric, 0):.4f}"
                done = {
                    "steps": (steps - 0)
                    if budget.epochs is None
                    else (epoch * steps_per_epoch + loss_n),
                    "seconds": session_train_time,
                }[unit]
                bar.update(done, status)
                if budget.steps is not None and steps >= budget.steps:
                    stop, completed = True, loss_n >= steps_per_epoch
                    break
                if budget.seconds is not None and session_train_time >= budget.seconds:
                    stop, completed = True, loss_n >= steps_per_epoch
                    break
            record = {"epoch": epoch + 1, "loss": last_loss, "lr": optimizer.param_groups[0]["lr"]}
            if completed:
                epoch += 1
            is_last = stop or (budget.epochs is not None and epoch >= budget.epochs)
            if val_data is not None and (config.eval_every_epoch or is_last):
                metrics = evaluate(model, task, val_data, batch_size=config.eval_batch_size)
                record.update(metrics)
            history.append(record)
            save(epoch, metrics)
    finally:
        bar.close()
    elapsed += session_train_time
    if val_data is not None and not metrics:
        metrics = evaluate(model, task, val_data, batch_size=config.eval_batch_size)
    del run_start
    return TrainResult(
        metrics=metrics,
        normalised_accuracy=task.normalised_accuracy(metrics) if metrics else 0.0,
        epochs=epoch,
        steps=steps,
        images=images_seen,
        seconds=elapsed,
        images_per_second=images_seen / elapsed if elapsed > 0 else math.nan,
        final_loss=last_loss,
        history=history,
        checkpoint=str(checkpoint) if checkpoint is not None else None,
    )


def _info_dict(info) -> dict:
    if info is None:
        return {}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(info).items()}
