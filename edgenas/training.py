"""Training within a budget, and evaluation, as a plain Python API.

``train(model, task, train_data, val_data, budget=Budget(seconds=60))`` trains with the
task's recipe (:mod:`edgenas.tasks.recipes`: Adam, a learning rate that warms up and
decays over the *budget*, whether it is given in epochs, steps or seconds, the task's
loss and augmentation) and evaluates on ``val_data`` at the end. ``evaluate(model_or_onnx,
task, data)`` returns the task's metrics; ``task.normalised_accuracy(metrics)`` maps them
to [0, 1] for the search.

The training set is decoded once into memory when it fits (:mod:`edgenas.data.memory`);
each batch is then one index operation plus batched augmentation, on the accelerator
when there is one (:mod:`edgenas.accelerator`). Batch ``k`` depends only on the seed and
``k``, so a run resumed from a checkpoint written at any step repeats the
uninterrupted run exactly (with a budget in epochs or steps; a budget in seconds ends
wherever the clock says). Checkpoints are written atomically at the end, on Ctrl-C and
at most once a minute at epoch ends, and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from edgenas.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    cpu_state,
    load_checkpoint,
    load_weights,
    model_from_checkpoint,
    model_spec,
)
from edgenas.data.loading import iterate_loader, make_loader
from edgenas.errors import UserError
from edgenas.inference import OnnxPredictor, evaluate

__all__ = [
    "CHECKPOINT_FORMAT",
    "Budget",
    "OnnxPredictor",
    "TrainConfig",
    "TrainResult",
    "atomic_save",
    "cpu_state",
    "evaluate",
    "load_checkpoint",
    "model_from_checkpoint",
    "model_spec",
    "train",
]

CHECKPOINT_EVERY_S = 60.0


@dataclass(frozen=True)
class Budget:
    """Stop after ``epochs`` epochs, ``seconds`` of training or ``steps`` steps (first hit)."""

    epochs: float | None = None
    seconds: float | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.seconds is None and self.steps is None:
            raise ValueError("a budget needs epochs, seconds or steps")
        for name in ("epochs", "seconds", "steps"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"budget {name} must be a positive number, got {value}")

    def progress(self, step: int, seconds: float, steps_per_epoch: int) -> float:
        """Share of the budget spent after ``step`` steps and ``seconds`` of training."""
        shares = []
        if self.epochs is not None:
            shares.append(step / (self.epochs * steps_per_epoch))
        if self.steps is not None:
            shares.append(step / self.steps)
        if self.seconds is not None:
            shares.append(seconds / self.seconds)
        return max(shares)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run.

    The defaults are generic; :func:`edgenas.tasks.recipes.recipe_config` gives each
    task's measured defaults (``recipe="fast"``) or the LDP paper's (``recipe="ldp"``).

    ``schedule`` is ``cosine``, ``ldp`` or ``constant`` over the budget, after a linear
    warm-up over the first ``warmup`` share of it (:mod:`edgenas.schedules`).
    ``class_weights``: segmentation loss weighted by median-frequency balancing of the
    training labels; ``None`` turns it on when the classes are imbalanced (the rarest
    labelled class at least :data:`IMBALANCE_RATIO` times rarer than the most common).
    ``in_memory``: decode the training set once and keep it in memory (``None``: when it
    fits). ``accelerator`` / ``precision`` / ``channels_last``: see
    :func:`edgenas.accelerator.resolve_accelerator`.

    ``clock`` is what a ``seconds`` budget counts: ``wall`` (time on the wall clock) or
    ``cpu`` (CPU time the training thread got, see :func:`training_clock`). On a shared
    machine a wall-clock budget gives a network as many steps as the other tenants leave
    it, so two networks trained at different moments get different budgets; a CPU-time
    budget gives each the steps a quiet machine would.
    """

    batch_size: int = 8
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup: float = 0.03
    final_lr: float = 0.0
    seed: int = 0
    workers: int = 0
    augment: bool = True
    class_weights: bool | None = None
    eval_every_epoch: bool = False
    eval_batch_size: int = 8
    in_memory: bool | None = None
    accelerator: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    recipe: str = "custom"
    clock: str = "wall"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        from edgenas.schedules import SCHEDULES

        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"unknown schedule {self.schedule!r} (choose from {', '.join(SCHEDULES)})"
            )
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warm-up must be a share of the budget in [0, 1), got {self.warmup}")
        if self.workers < 0:
            raise ValueError(f"workers must be at least 0, got {self.workers}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r} (choose from {', '.join(CLOCKS)})")


CLOCKS = ("wall", "cpu")


def training_clock(clock: str, accelerator_kind: str) -> Callable[[], float]:
    """The function a training's ``seconds`` budget reads its time from.

    ``cpu`` counts the CPU time of the calling thread when torch computes on it alone
    (one intra-op thread, on the CPU): time spent waiting for a core another process
    holds does not count. With more threads, their CPU time is not the calling
    thread's, and on a GPU the work is not CPU time at all, so both fall back to the
    wall clock.
    """
    if clock == "cpu" and accelerator_kind == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def clock_in_effect(config: TrainConfig) -> str:
    """``cpu`` or ``wall``: what a seconds budget of ``config`` counts in this process
    (``config.clock`` after :func:`training_clock`'s fall-back)."""
    from edgenas.accelerator import resolve_accelerator

    kind = resolve_accelerator(config.accelerator, config.precision, config.channels_last).kind
    return "cpu" if training_clock(config.clock, kind) is time.thread_time else "wall"


IMBALANCE_RATIO = 5.0


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
    steps_per_second: float = math.nan
    accelerator: str = "cpu fp32"
    in_memory: bool = False
    class_weights: list[float] | None = None
    # What ``seconds`` counted: "cpu" (the training thread's CPU time) or "wall".
    clock: str = "wall"


# ----- batches -----------------------------------------------------------------------------


def _step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of step ``step``: patch positions and augmentation."""
    return torch.Generator().manual_seed((seed * 2_654_435_761 + step * 40_503) % (2**63))


class BatchStream:
    """Batch ``k`` of a run for any ``k``: drawn from an in-memory bank, or streamed from
    the dataset through a DataLoader. Either way the sample order of epoch ``e`` is
    :func:`~edgenas.data.memory.epoch_order` of ``(seed, e)``."""

    def __init__(
        self,
        data: Dataset,
        batch_size: int,
        *,
        seed: int,
        workers: int = 0,
        in_memory: bool | None = None,
        device: torch.device | None = None,
    ) -> None:
        from edgenas.data.memory import build_bank

        self.data = data
        self.seed = seed
        self.workers = workers
        self.bank = build_bank(data, workers) if in_memory is not False else None
        if in_memory and self.bank is None:
            raise UserError("the training data does not fit in memory; leave in_memory unset")
        if self.bank is not None and device is not None and device != self.bank.device:
            self.bank = self.bank.to(device)
        self.length = len(self.bank if self.bank is not None else data)
        if self.length == 0:
            raise UserError("the training data is empty")
        self.batch_size = min(batch_size, self.length)
        self.steps_per_epoch = max(1, self.length // self.batch_size)
        self.pin = device is not None and device.type == "cuda"

    @property
    def info(self):
        return getattr(self.bank, "info", None) or getattr(self.data, "info", None)

    def _indices(self, order: torch.Tensor, position: int) -> torch.Tensor:
        return order[position * self.batch_size : (position + 1) * self.batch_size]

    def batches(self, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Generator]]:
        """``(images, targets, generator)`` for steps ``start, start + 1, ...``."""
        from edgenas.data.memory import epoch_order

        step = start
        while True:
            epoch, position = divmod(step, self.steps_per_epoch)
            order = epoch_order(self.length, self.seed, epoch)
            if self.bank is not None:
                for j in range(position, self.steps_per_epoch):
                    generator = _step_generator(self.seed, step)
                    images, targets = self.bank.batch(self._indices(order, j), generator)
                    yield images, targets, generator
                    step += 1
                continue
            if hasattr(self.data, "set_epoch"):
                self.data.set_epoch(epoch)
            used = order[position * self.batch_size : self.steps_per_epoch * self.batch_size]
            loader = make_loader(
                self.data,
                self.batch_size,
                workers=self.workers,
                order=used.tolist(),
                drop_last=True,
                pin_memory=self.pin,
            )
            for images, targets in iterate_loader(loader):
                yield images, targets, _step_generator(self.seed, step)
                step += 1


# ----- segmentation class weights -------------------------------------------------------------


def median_frequency_weights(counts: torch.Tensor, image_pixels: torch.Tensor) -> torch.Tensor:
    """SegNet's median-frequency balancing: ``freq(c) / median(freq)`` inverted, where
    ``freq(c)`` is class c's pixels over the labelled pixels of the images that contain c.

    ``counts``: images x classes pixel counts; ``image_pixels``: labelled pixels per image.
    Classes that never occur get weight 0 (they cannot contribute to the loss anyway).
    """
    counts = counts.double()
    present = counts > 0
    pixels_where_present = (present.double() * image_pixels.double()[:, None]).sum(0)
    freq = counts.sum(0) / pixels_where_present.clamp(min=1)
    seen = freq > 0
    weights = torch.zeros_like(freq)
    if seen.any():
        weights[seen] = freq[seen].median() / freq[seen]
    return weights.float()


def _label_counts(stream: BatchStream, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image class pixel counts (images x classes) and labelled pixels per image, from
    the bank, or from up to 256 evenly spaced samples of a streamed dataset."""
    bank = stream.bank
    if bank is not None:
        labels = bank.targets.reshape(len(bank), -1).long().cpu()
    else:
        step = max(1, len(stream.data) // 256)
        labels = torch.stack(
            [stream.data[i][1].reshape(-1).long() for i in range(0, len(stream.data), step)]
        )
    valid = (labels >= 0) & (labels < classes)
    counts = torch.zeros(labels.shape[0], classes, dtype=torch.int64)
    counts.scatter_add_(1, torch.where(valid, labels, 0), valid.long())
    return counts, valid.sum(1)


def stream_class_weights(
    task, stream: BatchStream, info, setting: bool | None = None
) -> torch.Tensor | None:
    """Median-frequency class weights of a segmentation run on ``stream``'s data (None:
    unweighted, outside segmentation or where the classes are balanced and ``setting``
    is None); what :func:`train` and the shrinking's ``fast`` recipe use."""
    if task.name != "segmentation" or setting is False or info is None:
        return None
    counts, pixels = _label_counts(stream, info.num_classes)
    totals = counts.sum(0)
    occurring = totals[totals > 0]
    imbalanced = occurring.numel() > 1 and occurring.max() >= IMBALANCE_RATIO * occurring.min()
    if setting is None and not imbalanced:
        return None
    return median_frequency_weights(counts, pixels)


# ----- training ----------------------------------------------------------------------------


class _Progress:
    """A rich progress bar with loss, steps/s, images/s, learning rate and ETA (or nothing)."""

    def __init__(self, enabled: bool, total: float) -> None:
        self.enabled = enabled
        self.last = 0.0
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

    def update(self, completed: float, status: str, force: bool = False) -> None:
        """Redraw at most five times a second (rich is not free in a tight loop)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self.last >= 0.2:
            self.last = now
            self.progress.update(self.bar, completed=completed, status=status)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


def _info_dict(info) -> dict:
    if info is None:
        return {}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(info).items()}


def train(
    model: nn.Module,
    task,
    train_data: Dataset,
    val_data: Dataset | None = None,
    budget: Budget = Budget(seconds=60),
    config: TrainConfig | None = None,
    *,
    checkpoint: str | Path | None = None,
    resume: str | Path | dict | None = None,
    progress: bool = False,
    extra: dict | None = None,
    on_step: Callable[[int, float], None] | None = None,
    eval_input: tuple[int, int] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_data`` for ``budget`` and evaluate it on ``val_data``.

    Args:
        model: a network from :func:`edgenas.build_model` or
            :func:`edgenas.models.reference.build_reference` (any module with the
            task's input/output convention works). It comes back on the CPU.
        task: a :class:`~edgenas.tasks.Task` or its name.
        train_data, val_data: datasets (e.g. ``task.demo_data()``), or for
            ``train_data`` an in-memory bank (:func:`edgenas.data.memory.build_bank`)
            to share between runs.
        budget: epochs, seconds of training, or steps; the first reached stops training,
            and the learning-rate schedule spans it.
        config: hyper-parameters (default: the task's recipe).
        checkpoint: path written atomically at the end, on Ctrl-C (or SIGTERM, which the
            command line raises as Ctrl-C) once training has started, and at epoch ends
            at most once a minute.
        resume: a checkpoint (path or loaded dict) to continue from, towards ``budget``.
        progress: show a rich progress bar.
        extra: plain values stored in the checkpoint (e.g. dataset description).
        on_step: called as ``on_step(step, loss)`` after every step.
        eval_input: (H, W) validation images are resized to for the forward pass (e.g.
            the training size, with ``val_data`` at full resolution); see
            :func:`edgenas.inference.evaluate`.
        on_start: called as ``on_start(step, steps_per_epoch)`` once everything is set
            up and the first step is next (from then on Ctrl-C saves the checkpoint).

    Returns a :class:`TrainResult` with the validation metrics and the normalised
    accuracy (no metrics and 0 accuracy when ``val_data`` is None).
    """
    from edgenas.accelerator import resolve_accelerator
    from edgenas.data.augment import AugmentConfig, augment_dense
    from edgenas.schedules import lr_factor
    from edgenas.tasks import get_task
    from edgenas.tasks.recipes import recipe_config

    task = get_task(task) if isinstance(task, str) else task
    config = config if config is not None else recipe_config(task.name)
    try:
        config.validate()
    except ValueError as err:
        raise UserError(str(err)) from None
    accelerator = resolve_accelerator(config.accelerator, config.precision, config.channels_last)
    stream = BatchStream(
        train_data,
        config.batch_size,
        seed=config.seed,
        workers=config.workers,
        in_memory=config.in_memory,
        device=accelerator.device,
    )
    info = stream.info
    steps_per_epoch = stream.steps_per_epoch
    if resume is None:
        task.init_output(model, train_data)
    model.cpu()
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume) if not isinstance(resume, dict) else resume
        where = f"checkpoint {resume}" if not isinstance(resume, dict) else "the resumed checkpoint"
        load_weights(model, ckpt["model"], where)
    accelerator.prepare(model)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        weight_decay=config.weight_decay,
    )
    scaler = accelerator.grad_scaler()
    step, images_seen, elapsed, history = 0, 0, 0.0, []
    if ckpt is not None:
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except (KeyError, ValueError) as err:
            raise UserError(
                f"the optimizer state of {where} does not fit its network ({err}); "
                "start the training again without --resume"
            ) from None
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        step, images_seen = int(ckpt["step"]), int(ckpt["images"])
        history, elapsed = list(ckpt.get("history", [])), float(ckpt.get("seconds", 0.0))
    weights = stream_class_weights(task, stream, info, config.class_weights)
    if weights is not None:
        weights = weights.to(accelerator.device)
    augment = AugmentConfig(enabled=config.augment)
    ignore = getattr(info, "ignore_index", 255)
    sync_every = 1 if accelerator.kind == "cpu" else 25  # .item() waits for the GPU
    clock = training_clock(config.clock, accelerator.kind)
    clock_name = "cpu" if clock is time.thread_time else "wall"
    bar = _Progress(progress, 1.0)
    last_save = time.perf_counter()

    def loss_of(pred: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        pred = pred.float()
        if task.name == "segmentation":
            return task.loss(pred, targets, info, weights=weights)
        return task.loss(pred, targets, info)

    def save(metrics: dict) -> None:
        nonlocal last_save
        last_save = time.perf_counter()
        if checkpoint is None:
            return
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "model_spec": model_spec(model),
                "model": state,
                "optimizer": cpu_state(optimizer.state_dict()),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": step // steps_per_epoch,
                "step": step,
                "images": images_seen,
                "seconds": elapsed + session_seconds,
                "clock": clock_name,  # what "seconds" counts (this session's clock)
                "budget": budget.to_dict(),
                "config": asdict(config),
                "metrics": metrics,
                "history": history,
                "dataset": _info_dict(info),
                "extra": extra or {},
            },
            checkpoint,
        )

    def fraction() -> float:
        return budget.progress(step, elapsed + session_seconds, steps_per_epoch)

    session_seconds = 0.0
    loss_sum = torch.zeros((), device=accelerator.device)
    loss_count, last_loss, epoch_loss = 0, math.nan, math.nan
    metrics: dict[str, float] = {}
    lr = config.lr
    model.train()
    batches = stream.batches(step)
    tick = clock()
    try:
        if on_start is not None:  # inside the try: a Ctrl-C right after it saves too
            on_start(step, steps_per_epoch)
        while fraction() < 1.0:
            done = fraction()
            lr = config.lr * lr_factor(
                config.schedule,
                done,
                warmup=config.warmup,
                final=config.final_lr,
                epoch=step / steps_per_epoch if budget.epochs is not None else None,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            images, targets, generator = next(batches)
            images = accelerator.images(images)
            targets = accelerator.to_device(targets)
            images, targets = augment_dense(images, targets, task.name, generator, augment, ignore)
            with accelerator.autocast():
                pred = model(images)
            loss = loss_of(pred, targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            step += 1
            images_seen += images.shape[0]
            loss_sum += loss.detach()
            loss_count += 1
            if step % sync_every == 0 or on_step is not None:
                value = float(loss_sum) / loss_count
                if not math.isfinite(value):
                    raise UserError(
                        f"training diverged (loss {value}) at step {step}; "
                        "try a smaller learning rate (--lr) or another network"
                    )
                last_loss = value
            now = clock()
            session_seconds += now - tick
            tick = now
            if on_step is not None:
                on_step(step, last_loss)
            total_seconds = max(elapsed + session_seconds, 1e-9)
            bar.update(
                min(fraction(), 1.0),
                f"step {step} loss {last_loss:.4f} {step / total_seconds:.1f} steps/s "
                f"{images_seen / total_seconds:.0f} img/s lr {lr:.2g}",
            )
            if step % steps_per_epoch == 0:
                epoch_loss = float(loss_sum) / max(loss_count, 1)
                loss_sum.zero_()
                loss_count = 0
                record = {
                    "epoch": step // steps_per_epoch,
                    "step": step,
                    "loss": epoch_loss,
                    "lr": lr,
                    "seconds": elapsed + session_seconds,
                }
                if val_data is not None and config.eval_every_epoch and fraction() < 1.0:
                    metrics = evaluate(
                        model, task, val_data, batch_size=config.eval_batch_size,
                        input_size=eval_input,
                    )  # fmt: skip
                    record.update(metrics)
                    model.train()
                    tick = clock()  # evaluation is not training time
                history.append(record)
                if checkpoint is not None and time.perf_counter() - last_save >= CHECKPOINT_EVERY_S:
                    save(metrics)
                    tick = clock()
        if loss_count:
            last_loss = float(loss_sum) / loss_count
            history.append(
                {
                    "epoch": step / steps_per_epoch,
                    "step": step,
                    "loss": last_loss,
                    "lr": lr,
                    "seconds": elapsed + session_seconds,
                }
            )
        elif math.isnan(last_loss):
            last_loss = epoch_loss
    except KeyboardInterrupt:
        bar.close()
        save(metrics)  # Ctrl-C: keep what was learned; resume continues from here
        _back_to_cpu(model)
        raise
    finally:
        bar.close()
    if val_data is not None:
        try:
            metrics = evaluate(
                model, task, val_data, batch_size=config.eval_batch_size, input_size=eval_input
            )
        except KeyboardInterrupt:
            save(metrics)  # the whole budget is trained: keep it; resume evaluates it
            _back_to_cpu(model)
            raise
        if history:
            history[-1].update(metrics)
    save(metrics)
    seconds = elapsed + session_seconds
    _back_to_cpu(model)
    return TrainResult(
        metrics=metrics,
        normalised_accuracy=task.normalised_accuracy(metrics) if metrics else 0.0,
        epochs=step // steps_per_epoch,
        steps=step,
        images=images_seen,
        seconds=seconds,
        images_per_second=images_seen / seconds if seconds > 0 else math.nan,
        final_loss=last_loss,
        history=history,
        checkpoint=str(checkpoint) if checkpoint is not None else None,
        steps_per_second=step / seconds if seconds > 0 else math.nan,
        accelerator=accelerator.describe(),
        in_memory=stream.bank is not None,
        class_weights=[round(float(w), 4) for w in weights] if weights is not None else None,
        clock=clock_name,
    )


def _back_to_cpu(model: nn.Module) -> None:
    """Return a trained model as callers expect it: on the CPU, in the default layout."""
    model.cpu()
    model.to(memory_format=torch.contiguous_format)


def with_overrides(config: TrainConfig, **changes) -> TrainConfig:
    """``config`` with the given fields replaced (``None`` values ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
