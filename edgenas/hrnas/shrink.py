"""Resource-aware fine-grained progressive shrinking (HR-NAS Sec. 3.3, Eq. 6-7).

Training loss = task loss + lambda(t) * sum_i Delta_i |alpha_i| / mean(Delta), where
alpha_i is a unit's importance (the BN scale after a depthwise channel, or the
projector BN scale of a token) and Delta_i its cost (:mod:`edgenas.hrnas.costs`).
Dividing by the mean unit cost at the start makes lambda independent of the cost's unit
(MACs or milliseconds). lambda ramps linearly from 0 to its value over
``warmup_epochs`` (the warm-up schedule), so the network first learns which units
matter.

Every ``shrink_every`` epochs (and once at the end) units with |alpha| < epsilon are
removed physically (channel counts per kernel rounded up to a multiple of ``align``) (:func:`edgenas.hrnas.extract.shrink_model`): the layers and Adam's
moments are sliced (:class:`edgenas.hrnas.surgery.Surgery`), BatchNorm statistics are
recalibrated on a few training batches, costs are recomputed (the marginal token cost
changes as tokens disappear; latency slopes are looked up at the new widths), and the
step (units per block, MACs, params, predicted and measured latency, metrics) is handed
to ``on_step`` (the CLI writes it to the run store).

The loop reuses :mod:`edgenas.training`'s loader, augmentation and learning-rate helpers
(its ``train()`` has no hook for an extra loss term or a mid-run model surgery).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from edgenas.errors import UserError
from edgenas.hrnas.arch import architecture
from edgenas.hrnas.costs import UnitCosts, mean_unit_cost, penalty, removed_cost
from edgenas.hrnas.extract import removed_units, select_units, shrink_model
from edgenas.hrnas.supernet import HRSupernet


@dataclass(frozen=True)
class ShrinkConfig:
    """Hyper-parameters of progressive shrinking (training recipe: LDP's Adam)."""

    lam: float = 2e-3
    epsilon: float = 2e-2
    align: int = 8
    epochs: int | None = None
    seconds: float | None = None
    shrink_every: int = 1
    warmup_epochs: float = 1.0
    alpha_lr_mult: float = 50.0
    recalibrate_batches: int = 4
    batch_size: int = 8
    lr: float = 7e-4
    seed: int = 0
    workers: int = 0
    augment: bool = True
    eval_batches: int | None = None
    # Where the supernet trains (auto: CUDA when present). Shrink steps, costs, exports
    # and latency measurements run on a CPU copy of the state either way.
    accelerator: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs is None and self.seconds is None:
            raise ValueError("shrinking needs a budget: epochs or seconds")
        if self.lam < 0 or self.epsilon < 0:
            raise ValueError("lambda and epsilon cannot be negative")
        if self.align < 1:
            raise ValueError("align must be at least 1")
        if self.shrink_every < 1:
            raise ValueError("shrink_every must be at least 1")


@dataclass
class ShrinkStep:
    """One shrink step: what was removed and what the network is now."""

    step: int
    epoch: int
    removed: dict[str, dict[str, int]]
    units: dict[str, dict[str, int]]
    macs: int
    params: int
    lam: float
    loss: float
    metrics: dict[str, float]
    accuracy: float
    predicted_ms: float | None = None
    slope_predicted_ms: float | None = None
    measured_ms: float | None = None
    seconds: float = 0.0
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def removed_total(self) -> int:
        return sum(sum(r.values()) for r in self.removed.values())


@dataclass
class ShrinkResult:
    steps: list[ShrinkStep] = field(default_factory=list)
    epochs: int = 0
    train_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)


def recalibrate_batchnorm(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Re-estimate every BN's running statistics as the plain average over ``batches``."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not batches or not bns:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            for images in batches:
                model(images)
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
        model.train(was_training)


def _importance_params(model: HRSupernet) -> list[nn.Parameter]:
    out = []
    for _, block in model.blocks():
        out += [block.channel_importance(k) for k in block.present_kernels()]
        if block.transformer is not None:
            out.append(block.transformer.importance)
    return out


def make_optimizer(model: HRSupernet, config: ShrinkConfig) -> torch.optim.Optimizer:
    """Adam over every parameter; the importance scales (a second parameter group) get
    ``alpha_lr_mult`` times the learning rate, so that within a CPU budget of minutes
    the L1 term can actually drive unimportant ones to zero (Adam moves a parameter by
    about the learning rate per step, whatever the gradient's size)."""
    alphas = {id(p) for p in _importance_params(model)}
    rest = [p for p in model.parameters() if id(p) not in alphas]
    return torch.optim.Adam(
        [
            {"params": rest, "lr_mult": 1.0, "lr": config.lr},
            {
                "params": _importance_params(model),
                "lr_mult": config.alpha_lr_mult,
                "lr": config.lr * config.alpha_lr_mult,
            },
        ],
        lr=config.lr,
        betas=(0.9, 0.999),
        eps=1e-8,
    )


def run_shrink(
    model: HRSupernet,
    task,
    train_data,
    val_data,
    config: ShrinkConfig,
    *,
    input_shape: tuple[int, ...],
    cost_fn: Callable[[HRSupernet], UnitCosts],
    measure_fn: Callable[[HRSupernet], float] | None = None,
    blocks_ms_fn: Callable[[HRSupernet], float] | None = None,
    on_step: Callable[[ShrinkStep, HRSupernet], None] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ShrinkResult:
    """Train ``model`` with the resource penalty and shrink it progressively (in place).

    Args:
        cost_fn: unit costs of the model as it is now (FLOPs or latency).
        measure_fn: measured latency (ms) of the model as it is now, or None.
        blocks_ms_fn: summed lookup-table latency (ms) of the searching blocks as they
            are now; with it the predicted latency of a step is the step-0 measurement
            plus the change of this sum. Without it, the step-0 measurement minus the
            summed cost (slopes) of every removed unit (also kept as
            ``slope_predicted_ms``).
        on_step: called after each shrink step (step 0 = the untouched supernet).
        progress: ``progress(fraction done, status)``.
    """
    from edgenas.accelerator import resolve_accelerator
    from edgenas.data.augment import AugmentConfig, augment_dense
    from edgenas.data.loading import iterate_loader, make_loader
    from edgenas.hrnas.costs import count_hrnas_macs as count_macs
    from edgenas.hrnas.surgery import Surgery
    from edgenas.inference import evaluate
    from edgenas.models.complexity import count_params
    from edgenas.schedules import ldp_epoch_factor

    accelerator = resolve_accelerator(config.accelerator, "fp32")
    info = train_data.info
    if len(train_data) == 0:
        raise UserError("the training data is empty")
    torch.manual_seed(config.seed)
    batch_size = min(config.batch_size, len(train_data))
    steps_per_epoch = max(1, len(train_data) // batch_size)
    augment = AugmentConfig(enabled=config.augment)
    ignore = getattr(info, "ignore_index", 255)
    optimizer = make_optimizer(model, config)
    result = ShrinkResult()

    costs = cost_fn(model)
    scale = mean_unit_cost(model, costs)
    calib_loader = make_loader(
        train_data, batch_size, shuffle=True, workers=config.workers, seed=config.seed + 7,
        drop_last=True,
    )  # fmt: skip
    calib: list[torch.Tensor] = []
    for images, _ in iterate_loader(calib_loader):
        calib.append(images)
        if len(calib) >= config.recalibrate_batches:
            break

    start = time.perf_counter()
    slope_predicted: float | None = None  # measured at step 0, then minus removed slopes
    base: dict[str, float] = {}  # step-0 measurement and block-table sum
    last_loss = math.nan

    def record(step: int, epoch: int, removed, lam: float) -> None:
        nonlocal slope_predicted
        metrics = (
            evaluate(model, task, val_data, batch_size=8, max_batches=config.eval_batches)
            if val_data is not None
            else {}
        )
        measured = measure_fn(model) if measure_fn is not None else None
        blocks_ms = blocks_ms_fn(model) if blocks_ms_fn is not None and measured else None
        if step == 0:
            slope_predicted = measured
            if measured is not None:
                base.update(measured=measured, blocks=blocks_ms or 0.0)
        predicted = slope_predicted
        if blocks_ms is not None and step > 0:
            predicted = base["measured"] + blocks_ms - base["blocks"]
        arch = architecture(model)
        units = {
            b.name: {"k3": b.k3, "k5": b.k5, "k7": b.k7, "tokens": b.tokens} for b in arch.blocks
        }
        item = ShrinkStep(
            step=step,
            epoch=epoch,
            removed=removed,
            units=units,
            macs=count_macs(model, input_shape),
            params=count_params(model),
            lam=lam,
            loss=last_loss,
            metrics=metrics,
            accuracy=task.normalised_accuracy(metrics) if metrics else 0.0,
            predicted_ms=predicted,
            slope_predicted_ms=slope_predicted,
            measured_ms=measured,
            seconds=time.perf_counter() - start,
            train_seconds=result.train_seconds,
        )
        result.steps.append(item)
        if on_step is not None:
            on_step(item, model)

    record(
        0,
        0,
        {name: dict.fromkeys(("k3", "k5", "k7", "tokens"), 0) for name, _ in model.blocks()},
        0.0,
    )

    def on_cpu(optimizer: torch.optim.Optimizer) -> None:
        # Surgery, cost counting, ONNX export and measurement work on CPU tensors.
        model.cpu()
        _move_optimizer_state(optimizer, torch.device("cpu"))

    def on_accelerator(optimizer: torch.optim.Optimizer) -> None:
        model.to(accelerator.device)
        _move_optimizer_state(optimizer, accelerator.device)

    def shrink_now(epoch: int, lam: float) -> None:
        nonlocal costs, optimizer, slope_predicted
        selection = select_units(model, config.epsilon, config.align)
        removed = removed_units(model, selection)
        if slope_predicted is not None:
            slope_predicted = slope_predicted - removed_cost(costs, removed)
        surgery = Surgery()
        shrink_model(model, selection, surgery)
        optimizer = surgery.transfer(optimizer, model, lambda m: make_optimizer(m, config))
        recalibrate_batchnorm(model, calib)
        costs = cost_fn(model)
        record(len(result.steps), epoch, removed, lam)

    epoch, step, stop = 0, 0, False
    lam = 0.0
    model.train()
    on_accelerator(optimizer)
    while not stop:
        if config.epochs is not None and epoch >= config.epochs:
            break
        base_lr = config.lr * ldp_epoch_factor(epoch)
        for group in optimizer.param_groups:
            group["lr"] = base_lr * group["lr_mult"]
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(epoch)
        seed = config.seed * 100_003 + epoch
        loader = make_loader(
            train_data, batch_size, shuffle=True, workers=config.workers, seed=seed,
            drop_last=True,
        )  # fmt: skip
        aug_gen = torch.Generator().manual_seed(seed)
        tick = time.perf_counter()
        loss_sum = 0.0
        for i, (images, targets) in enumerate(iterate_loader(loader)):
            images, targets = accelerator.images(images), accelerator.to_device(targets)
            images, targets = augment_dense(images, targets, task.name, aug_gen, augment, ignore)
            done = epoch + i / steps_per_epoch
            lam = (
                config.lam * min(1.0, done / config.warmup_epochs)
                if config.warmup_epochs
                else config.lam
            )
            pred = model(images)
            loss = task.loss(pred, targets, info)
            if not math.isfinite(loss.item()):
                raise UserError(f"shrinking diverged (loss {float(loss)}) at step {step}")
            total = loss + lam * penalty(model, costs, scale) if lam > 0 else loss
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item()
            last_loss = loss_sum / (i + 1)
            elapsed = result.train_seconds + time.perf_counter() - tick
            if progress is not None:
                frac = (
                    (epoch + (i + 1) / steps_per_epoch) / config.epochs
                    if config.epochs is not None
                    else elapsed / config.seconds
                )
                progress(min(1.0, frac), f"epoch {epoch + 1} loss {last_loss:.4f} lambda {lam:.2g}")
            if config.seconds is not None and elapsed >= config.seconds:
                stop = True
                break
        spent = time.perf_counter() - tick
        result.train_seconds += spent
        result.epoch_seconds.append(spent)
        epoch += 1
        finished = stop or (config.epochs is not None and epoch >= config.epochs)
        if epoch % config.shrink_every == 0 or finished:
            on_cpu(optimizer)
            shrink_now(epoch, lam)
            model.train()
            on_accelerator(optimizer)
    result.epochs = epoch
    on_cpu(optimizer)
    return result


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move an optimizer's state tensors (Adam's moments) to ``device`` in place."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != "step":
                state[key] = value.to(device)
