"""Resource-aware fine-grained progressive shrinking (HR-NAS Sec. 3.3, Eq. 6-7).

Training loss = task loss + lambda(t) * sum_i Delta_i |alpha_i| / mean(Delta), where
alpha_i is a unit's importance (the BN scale after a depthwise channel, or the
projector BN scale of a token) and Delta_i its cost (:mod:`edgenas.hrnas.costs`).
Dividing by the mean unit cost at the start makes lambda independent of the cost's unit
(MACs or milliseconds). lambda ramps linearly from 0 to its value over
``warmup_epochs`` (the warm-up schedule), so the network first learns which units
matter.

Every ``shrink_every`` epochs (and once at the end) units with |alpha| < epsilon are
removed physically (channel counts per kernel rounded up to a multiple of ``align``;
:func:`edgenas.hrnas.extract.shrink_model`): the layers and Adam's moments are sliced (:class:`edgenas.hrnas.surgery.Surgery`), BatchNorm statistics are
recalibrated on a few training batches, costs are recomputed (the marginal token cost
changes as tokens disappear; latency slopes are looked up at the new widths), and the
step (units per block, MACs, params, predicted and measured latency, metrics) is handed
to ``on_step`` (the CLI writes it to the run store).

The loop reuses :mod:`edgenas.training`'s loader, augmentation and learning-rate helpers
(its ``train()`` has no hook for an extra loss term or a mid-run model surgery).

A run is resumable: with ``state_path`` the whole state (the shrunk network's
architecture and weights, Adam's state, the position in the budget down to the batch
and the augmentation generator, the recorded steps) is saved atomically at every epoch
end and shrink step and on Ctrl-C; ``resume=`` continues it, and an interrupted and
resumed run records the same steps as an uninterrupted one (tested).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgenas.checkpoint import cpu_state
from edgenas.errors import UserError, first_line
from edgenas.hrnas.arch import architecture
from edgenas.hrnas.config import ShrinkConfig
from edgenas.hrnas.costs import UnitCosts, mean_unit_cost, penalty, removed_cost
from edgenas.hrnas.extract import removed_units, select_units, shrink_model
from edgenas.hrnas.supernet import HRSupernet
from edgenas.hrnas.surgery import Surgery
from edgenas.hrnas.target import LambdaController, TargetCost, select_to_target, shrunk_copy


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
    # With a target: the cost in its unit (MACs or ms) at the deploy size after the step.
    target_cost: float | None = None
    seconds: float = 0.0
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def removed_total(self) -> int:
        return sum(sum(r.values()) for r in self.removed.values())


@dataclass
class ShrinkResult:
    """Every shrink step, and the training that led to them."""

    steps: list[ShrinkStep] = field(default_factory=list)
    epochs: int = 0
    train_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    batches: int = 0  # optimiser steps over the whole run


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


# The official HR-NAS recipe's L2 weight decay: 1e-5 on convolution and linear weights
# only (its "mnas" rule), added to the loss as 0.5 * wd * sum w^2 (AdamW's own decoupled
# decay is 0 while pruning).
HRNAS_WEIGHT_DECAY = 1e-5
HRNAS_ADAM_EPS = 1e-3  # configs/seg_*.yml: epsilon 0.001


def one_cycle(progress: float, max_lr: float) -> tuple[float, float]:
    """``(learning rate, Adam beta1)`` of torch's ``OneCycleLR`` with its defaults (the
    official HR-NAS schedule: 30% cosine warm-up from max_lr/25 to max_lr while beta1
    falls from 0.95 to 0.85, then cosine down to max_lr/25/1e4 while beta1 returns),
    as a function of the share of the budget spent, so that a --seconds budget (whose
    step count is not known up front) follows the same curve."""
    p = min(max(progress, 0.0), 1.0)

    def cos(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    initial = max_lr / 25.0
    if p <= 0.3:
        pct = p / 0.3
        return cos(initial, max_lr, pct), cos(0.95, 0.85, pct)
    pct = (p - 0.3) / 0.7
    return cos(max_lr, initial / 1e4, pct), cos(0.85, 0.95, pct)


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """The official recipe's weight decay term (see :data:`HRNAS_WEIGHT_DECAY`)."""
    terms = [p.pow(2).sum() for p in model.parameters() if p.dim() in (2, 4)]
    return 0.5 * HRNAS_WEIGHT_DECAY * torch.stack(terms).sum()


def learning_rate(config: ShrinkConfig, task: str) -> float:
    """The run's base (peak) learning rate: ``config.lr``, or with ``fast`` and no rate
    given the rate `edgenas train` uses for ``task`` (:mod:`edgenas.tasks.recipes`)."""
    if config.lr is not None:
        return config.lr
    from edgenas.tasks.recipes import recipe_config

    return recipe_config(task).lr


def make_optimizer(model: HRSupernet, config: ShrinkConfig) -> torch.optim.Optimizer:
    """Adam (``fast``, ``ldp``) or AdamW with eps 1e-3 (``hrnas``, the official recipe)
    over every parameter; the importance scales (a second parameter group) get
    ``alpha_lr_mult`` times the learning rate. With ``ldp`` that factor is 50 by default
    (``fast``: 12, at a 4x higher rate), so that within
    a CPU budget of minutes the L1 term can actually drive unimportant ones to zero
    (Adam moves a parameter by about the learning rate per step, whatever the
    gradient's size); ``hrnas`` trains them at the base rate (1x), as the paper does."""
    lr = learning_rate(config, model.task)
    alphas = {id(p) for p in _importance_params(model)}
    rest = [p for p in model.parameters() if id(p) not in alphas]
    hrnas = config.optimizer == "hrnas"
    kind = torch.optim.AdamW if hrnas else torch.optim.Adam
    extra = {"weight_decay": 0.0} if hrnas else {}
    return kind(
        [
            {"params": rest, "lr_mult": 1.0, "lr": lr},
            {
                "params": _importance_params(model),
                "lr_mult": config.alpha_lr_mult,
                "lr": lr * config.alpha_lr_mult,
            },
        ],
        lr=lr,
        betas=(0.9, 0.999),
        eps=HRNAS_ADAM_EPS if hrnas else 1e-8,
        **extra,
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
    state_path: str | Path | None = None,
    resume: dict | None = None,
    target: TargetCost | None = None,
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
        on_step: called after each shrink step (step 0 = the untouched supernet), after
            the step is in the saved state.
        progress: ``progress(fraction done, status)``.
        state_path: where the resumable state (:func:`load_shrink_state`) is written,
            atomically: after every shrink step, at every epoch end and on Ctrl-C (then
            with the position inside the epoch).
        resume: a state from :func:`load_shrink_state` to continue from, towards the
            same ``config``; ``model`` must already have the state's structure
            (:func:`edgenas.hrnas.arch.build_architecture`). A finished state returns
            its result at once.
        target: with ``config.target_flops`` / ``target_latency_ms``, the cost in the
            target's unit (:class:`edgenas.hrnas.target.TargetCost`): lambda is then
            adapted and pruning stops at the target (:mod:`edgenas.hrnas.target`).
    """
    return _Shrinker(
        model,
        task,
        train_data,
        val_data,
        config,
        input_shape=input_shape,
        cost_fn=cost_fn,
        measure_fn=measure_fn,
        blocks_ms_fn=blocks_ms_fn,
        on_step=on_step,
        progress=progress,
        state_path=Path(state_path) if state_path is not None else None,
        target=target,
    ).run(resume)


SHRINK_STATE_FORMAT = "edgenas-hrnas-shrink-state-v1"


def load_shrink_state(path: str | Path) -> dict:
    """Read a state written by :func:`run_shrink` (``weights_only``); a missing or
    foreign file is a one-line :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = first_line(err)
        raise UserError(f"cannot read {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != SHRINK_STATE_FORMAT:
        raise UserError(f"{path} is not a shrinking state (written by `edgenas shrink`)")
    return state


class _Shrinker:
    """The state of one shrinking run and the loop that advances it (see
    :func:`run_shrink`); everything needed to continue is in :meth:`state_dict`."""

    def __init__(
        self,
        model: HRSupernet,
        task,
        train_data,
        val_data,
        config: ShrinkConfig,
        *,
        input_shape,
        cost_fn,
        measure_fn,
        blocks_ms_fn,
        on_step,
        progress,
        state_path: Path | None,
        target: TargetCost | None = None,
    ) -> None:
        from edgenas.accelerator import resolve_accelerator
        from edgenas.data.augment import AugmentConfig
        from edgenas.training import BatchStream, training_clock

        if len(train_data) == 0:
            raise UserError("the training data is empty")
        self.model, self.task, self.config = model, task, config
        self.train_data, self.val_data = train_data, val_data
        self.input_shape = tuple(input_shape)
        self.cost_fn, self.measure_fn, self.blocks_ms_fn = cost_fn, measure_fn, blocks_ms_fn
        self.on_step, self.progress, self.state_path = on_step, progress, state_path
        self.accelerator = resolve_accelerator(config.accelerator, "fp32")
        # What the seconds budget counts (epoch_spent and train_seconds are on it).
        self.clock = training_clock(config.clock, self.accelerator.kind)
        self.info = train_data.info
        # The training images are decoded once and kept in memory where they fit, as
        # `edgenas train` does (decoding them every epoch cost about 15 % of a 300 s
        # CamVid budget); BatchStream streams them otherwise.
        self.stream = BatchStream(
            train_data, config.batch_size, seed=config.seed, workers=config.workers,
            device=self.accelerator.device,
        )  # fmt: skip
        self.batch_size = self.stream.batch_size
        self.steps_per_epoch = self.stream.steps_per_epoch
        self.augment = AugmentConfig(enabled=config.augment)
        self.ignore = getattr(self.info, "ignore_index", 255)
        # The fast recipe weights segmentation classes as `edgenas train` does (and so
        # as the baselines the run is compared with are trained).
        # Its warm-up is the task's (edgenas.tasks.recipes: 0.02 for super-resolution).
        self.base_lr = learning_rate(config, task.name)  # resolved once, read every batch
        self.loss_options: dict[str, Any] = {}
        self.fast_warmup = 0.0
        if config.optimizer == "fast":
            from edgenas.tasks.recipes import recipe_config
            from edgenas.training import stream_class_weights

            self.fast_warmup = recipe_config(task.name).warmup
            weights = stream_class_weights(task, self.stream, self.info)
            if weights is not None:
                self.loss_options["weights"] = self.accelerator.to_device(weights)
        self.result = ShrinkResult()
        # Progress through the budget: whole epochs done, batches done in the current
        # one (after Ctrl-C), all batches, and where the next shrink step stands.
        self.epoch, self.batch, self.batches = 0, 0, 0
        self.loss_sum, self.epoch_spent = 0.0, 0.0
        self.lam, self.last_loss = 0.0, math.nan
        self.pending_shrink, self.finished = False, False
        self.slope_predicted: float | None = None  # measured at step 0, minus removed slopes
        self.base: dict[str, float] = {}  # step-0 measurement and block-table sum
        self.wall_offset = 0.0
        self.start = time.perf_counter()
        # Shrinking to a budget: the target's cost, lambda's controller, and the cost of
        # the network as it is (set at every step).
        if (target is None) != (config.target is None):
            raise ValueError("a target cost goes with a config target, and only then")
        self.target = target
        self.controller = (
            LambdaController(target.target, config.lam) if target is not None else None
        )
        self.current_cost: float | None = None

    # ----- state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything :meth:`load_state_dict` needs, as tensors and plain values."""
        model = self.model
        return {
            "format": SHRINK_STATE_FORMAT,
            "architecture": architecture(model).encode(),
            "supernet": model.config.to_dict(),
            "task": model.task,
            "options": dict(model.options),
            "model": cpu_state(model.state_dict()),
            "optimizer": cpu_state(self.optimizer.state_dict()),
            "epoch": self.epoch,
            "batch": self.batch,
            "batches": self.batches,
            "loss_sum": self.loss_sum,
            "epoch_spent": self.epoch_spent,
            "rng": torch.get_rng_state(),
            "lam": self.lam,
            "last_loss": self.last_loss,
            "scale": self.scale,
            "slope_predicted": self.slope_predicted,
            "base": dict(self.base),
            "pending_shrink": self.pending_shrink,
            "finished": self.finished,
            "wall_seconds": self.wall_seconds(),
            "controller": self.controller.state_dict() if self.controller else None,
            "target_cost": self.target.state_dict() if self.target else None,
            "current_cost": self.current_cost,
            "result": {
                "steps": [s.to_dict() for s in self.result.steps],
                "epochs": self.result.epochs,
                "train_seconds": self.result.train_seconds,
                "epoch_seconds": list(self.result.epoch_seconds),
                "batches": self.result.batches,
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (the model must have its structure already)."""
        if architecture(self.model).encode() != state["architecture"]:
            raise UserError("the saved shrinking state does not fit the network it resumes")
        self.model.load_state_dict(state["model"])
        self.optimizer = make_optimizer(self.model, self.config)
        self.optimizer.load_state_dict(state["optimizer"])
        for key in ("epoch", "batch", "batches", "loss_sum", "epoch_spent",
                    "lam", "last_loss", "scale", "slope_predicted", "pending_shrink",
                    "finished"):  # fmt: skip
            setattr(self, key, state[key])
        self.base = dict(state["base"])
        self.wall_offset = float(state["wall_seconds"])
        if self.controller is not None:
            self.controller.load_state_dict(state["controller"])
            self.target.load_state_dict(state["target_cost"])
            self.current_cost = state["current_cost"]
        torch.set_rng_state(state["rng"])
        saved = state["result"]
        self.result = ShrinkResult(
            steps=[ShrinkStep(**s) for s in saved["steps"]],
            epochs=saved["epochs"],
            train_seconds=saved["train_seconds"],
            epoch_seconds=list(saved["epoch_seconds"]),
            batches=saved["batches"],
        )

    def save(self) -> None:
        """Write :meth:`state_dict` to ``state_path`` whole or not at all (if given)."""
        if self.state_path is not None:
            from edgenas.checkpoint import atomic_save

            atomic_save(self.state_dict(), self.state_path)

    def wall_seconds(self) -> float:
        """Wall-clock seconds of the run so far, over every session of it."""
        return self.wall_offset + time.perf_counter() - self.start

    # ----- the loop ---------------------------------------------------------------
    def run(self, resume: dict | None) -> ShrinkResult:
        from edgenas.data.loading import iterate_loader, make_loader

        config, model = self.config, self.model
        torch.manual_seed(config.seed)
        if resume is None:
            self.optimizer = make_optimizer(model, config)
            costs = self.cost_fn(model)
            self.scale = mean_unit_cost(model, costs)
        else:
            self.load_state_dict(resume)
            if self.finished and not self.pending_shrink:
                model.cpu()
                return self.result
            costs = self.cost_fn(model)
        self.costs = costs
        # The batches BN statistics are re-estimated on: always the same ones.
        calib_loader = make_loader(
            self.train_data, self.batch_size, shuffle=True, workers=config.workers,
            seed=config.seed + 7, drop_last=True,
        )  # fmt: skip
        self.calib: list[torch.Tensor] = []
        for images, _ in iterate_loader(calib_loader):
            self.calib.append(images)
            if len(self.calib) >= config.recalibrate_batches:
                break
        if resume is None:
            if self.target is not None:
                self._measure_target()
            empty = dict.fromkeys(("k3", "k5", "k7", "tokens"), 0)
            self._record(0, 0, {name: dict(empty) for name, _ in model.blocks()}, 0.0)
        elif self.pending_shrink:  # stopped between an epoch's training and its shrink
            self._shrink(self.epoch, self.lam)
        while not self.finished:
            if config.epochs is not None and self.epoch >= config.epochs:
                break  # not reached: the last epoch sets finished
            self._epoch()
        self.result.epochs = self.epoch
        self._on_cpu()
        return self.result

    def _epoch(self) -> None:
        """Train one epoch (or the rest of it), then shrink when it is time."""
        from edgenas.data.augment import augment_dense

        config, model, task = self.config, self.model, self.task
        epoch = self.epoch
        self._set_lr(epoch, 0.0)
        skip = self.batch  # batches done before the interruption this run resumes from
        # Batch k of the run and its augmentation depend on (seed, k) only, so a resumed
        # run draws what an uninterrupted one would.
        batches = self.stream.batches(epoch * self.steps_per_epoch + skip)
        model.train()
        self._on_accelerator()
        tick = self.clock()
        stop = False
        try:
            for i in range(skip, self.steps_per_epoch):
                images, targets, aug_gen = next(batches)
                images = self.accelerator.images(images)
                targets = self.accelerator.to_device(targets)
                images, targets = augment_dense(
                    images, targets, task.name, aug_gen, self.augment, self.ignore
                )
                done = epoch + i / self.steps_per_epoch
                if config.optimizer != "ldp":  # schedules over the budget, per batch
                    self._set_lr(epoch, self._spent(tick, i))
                base = self.controller.lam if self.controller is not None else config.lam
                lam = base * min(1.0, done / config.warmup_epochs) if config.warmup_epochs else base
                pred = model(images)
                loss = task.loss(pred, targets, self.info, **self.loss_options)
                if not math.isfinite(loss.item()):
                    raise UserError(
                        f"shrinking diverged (loss {float(loss)}) at step {self.batches}"
                    )
                total = loss + lam * penalty(model, self.costs, self.scale) if lam > 0 else loss
                if config.optimizer == "hrnas":
                    total = total + l2_penalty(model)
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                self.optimizer.step()
                self.lam = lam
                self.batches += 1
                self.batch = i + 1
                self.loss_sum += loss.item()
                self.last_loss = self.loss_sum / (i + 1)
                if self.controller is not None and (i + 1) % self.control_every == 0:
                    self._control()
                elapsed = self.result.train_seconds + self.epoch_spent + self.clock() - tick
                if self.progress is not None:
                    frac = (
                        (epoch + (i + 1) / self.steps_per_epoch) / config.epochs
                        if config.epochs is not None
                        else elapsed / config.seconds
                    )
                    self.progress(
                        min(1.0, frac),
                        f"epoch {epoch + 1} loss {self.last_loss:.4f} lambda {lam:.2g}",
                    )
                if config.seconds is not None and elapsed >= config.seconds:
                    stop = True
                    break
        except KeyboardInterrupt:
            # Keep what this epoch learned: resume continues after the last whole step.
            self.epoch_spent += self.clock() - tick
            self._on_cpu()
            self.save()
            raise
        spent = self.epoch_spent + self.clock() - tick
        self.result.train_seconds += spent
        self.result.epoch_seconds.append(spent)
        self.result.batches = self.batches
        self.epoch = epoch + 1
        self.batch, self.loss_sum, self.epoch_spent = 0, 0.0, 0.0
        finished = stop or (config.epochs is not None and self.epoch >= config.epochs)
        self._on_cpu()
        if self.epoch % config.shrink_every == 0 or finished:
            self.pending_shrink, self.finished = True, finished
            self.save()  # a Ctrl-C during the shrink step resumes with the step
            self._shrink(self.epoch, self.lam)
        else:
            self.save()

    @property
    def control_every(self) -> int:
        """Batches between two updates of lambda's controller (four per epoch)."""
        return max(1, self.steps_per_epoch // 4)

    def _spent(self, tick: float, i: int) -> float:
        """Share of the budget spent before batch ``i`` of the current epoch."""
        config = self.config
        shares = []
        if config.epochs is not None:
            shares.append((self.epoch + i / self.steps_per_epoch) / config.epochs)
        if config.seconds is not None:
            elapsed = self.result.train_seconds + self.epoch_spent + self.clock() - tick
            shares.append(elapsed / config.seconds)
        return max(shares)  # with both budgets, the one nearer its end ends the run

    def _set_lr(self, epoch: int, progress: float) -> None:
        """The learning rate (and for ``hrnas`` Adam's beta1) of every group: the
        training recipe's warm-up and cosine at ``progress`` (``fast``), LDP's
        per-epoch factor, or the official one-cycle curve at ``progress``."""
        from edgenas.schedules import cosine_factor, ldp_epoch_factor

        config, lr = self.config, self.base_lr
        beta1 = None
        if config.optimizer == "fast":
            base_lr = lr * cosine_factor(progress, self.fast_warmup)
        elif config.optimizer == "hrnas":
            base_lr, beta1 = one_cycle(progress, lr)
        else:
            base_lr = lr * ldp_epoch_factor(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = base_lr * group["lr_mult"]
            if beta1 is not None:
                group["betas"] = (beta1, group["betas"][1])

    def _control(self) -> None:
        """One update of lambda's controller from the projected and current cost."""
        config = self.config
        if self.controller.reached:
            return
        projected = self.target.predict(shrunk_copy(self.model, config.epsilon, config.align))
        self.controller.update(projected, self.current_cost)

    def _selection(self):
        """The units a shrink step removes: those below epsilon; with a target no more
        than brings the cost to it, none once it is reached, and at the end of the
        budget as many more (by importance) as the target still needs."""
        config, model = self.config, self.model
        if self.controller is None:
            return select_units(model, config.epsilon, config.align)
        if self.controller.reached:
            return select_units(model, 0.0, config.align)  # keeps every unit
        threshold, _ = select_to_target(
            model,
            self.target.predict,
            self.target.target,
            config.epsilon,
            config.align,
            recheck=self.target.kind == "latency",
        )  # below epsilon only: the end of the budget adds more (_finish_at_target)
        return select_units(model, threshold, config.align)

    def _shrink(self, epoch: int, lam: float) -> None:
        """Remove the units below epsilon (or as the target needs) physically,
        recalibrate, record the step."""
        config, model = self.config, self.model
        selection = self._selection()
        removed = removed_units(model, selection)
        if self.slope_predicted is not None:
            self.slope_predicted = self.slope_predicted - removed_cost(self.costs, removed)
        surgery = Surgery()
        shrink_model(model, selection, surgery)
        self.optimizer = surgery.transfer(
            self.optimizer, model, lambda m: make_optimizer(m, config)
        )
        recalibrate_batchnorm(model, self.calib)
        if self.controller is not None:
            self._measure_target()
            if self.finished:
                removed = self._finish_at_target(removed)
        self.costs = self.cost_fn(model)
        self.pending_shrink = False
        self._record(len(self.result.steps), epoch, removed, lam)

    def _measure_target(self) -> None:
        """The cost of the network as it is; lambda's controller sees it."""
        self.current_cost = self.target.now(self.model)
        if self.current_cost <= self.target.target:
            self.controller.update(self.current_cost, self.current_cost)

    def _finish_at_target(self, removed, tries: int = 6):
        """At the end of the budget, while the cost is still above the target: remove
        more units by importance and measure again (at most ``tries`` times). MACs are
        exact, so one pass lands on the target; a latency pass is chosen by measured
        bisection, and a measurement of the result above the target (noise) starts
        another. Returns the removed counts of the whole step."""
        config, model = self.config, self.model
        for _ in range(tries):
            if self.controller.reached:
                break
            threshold, _ = select_to_target(
                model, self.target.predict, self.target.target, config.epsilon,
                config.align, force=True, recheck=self.target.kind == "latency",
            )  # fmt: skip
            selection = select_units(model, threshold, config.align)
            more = removed_units(model, selection)
            if not sum(sum(r.values()) for r in more.values()):
                break  # nothing left to remove
            surgery = Surgery()  # a fresh record: the optimiser now holds the cut params
            shrink_model(model, selection, surgery)
            self.optimizer = surgery.transfer(
                self.optimizer, model, lambda m: make_optimizer(m, config)
            )
            recalibrate_batchnorm(model, self.calib)
            removed = {
                name: {kind: n + more[name][kind] for kind, n in r.items()}
                for name, r in removed.items()
            }
            self._measure_target()
        return removed

    def _record(self, step: int, epoch: int, removed, lam: float) -> None:
        """Evaluate and measure the network as it is now; save; hand the step on."""
        from edgenas.hrnas.costs import count_hrnas_macs as count_macs
        from edgenas.inference import evaluate
        from edgenas.models.complexity import count_params

        model, config = self.model, self.config
        metrics = (
            evaluate(model, self.task, self.val_data, batch_size=8, max_batches=config.eval_batches)
            if self.val_data is not None
            else {}
        )
        measured = self.measure_fn(model) if self.measure_fn is not None else None
        blocks_ms = self.blocks_ms_fn(model) if self.blocks_ms_fn is not None and measured else None
        if step == 0:
            self.slope_predicted = measured
            if measured is not None:
                self.base.update(measured=measured, blocks=blocks_ms or 0.0)
        predicted = self.slope_predicted
        if blocks_ms is not None and step > 0:
            predicted = self.base["measured"] + blocks_ms - self.base["blocks"]
        arch = architecture(model)
        units = {
            b.name: {"k3": b.k3, "k5": b.k5, "k7": b.k7, "tokens": b.tokens} for b in arch.blocks
        }
        item = ShrinkStep(
            step=step,
            epoch=epoch,
            removed=removed,
            units=units,
            macs=count_macs(model, self.input_shape),
            params=count_params(model),
            lam=lam,
            loss=self.last_loss,
            metrics=metrics,
            accuracy=self.task.normalised_accuracy(metrics) if metrics else 0.0,
            predicted_ms=predicted,
            slope_predicted_ms=self.slope_predicted,
            measured_ms=measured,
            target_cost=self.current_cost,
            seconds=self.wall_seconds(),
            train_seconds=self.result.train_seconds,
        )
        self.result.steps.append(item)
        self.save()
        if self.on_step is not None:
            self.on_step(item, model)

    def _on_cpu(self) -> None:
        # Surgery, cost counting, ONNX export, measurement and saving use CPU tensors.
        self.model.cpu()
        _move_optimizer_state(self.optimizer, torch.device("cpu"))

    def _on_accelerator(self) -> None:
        self.model.to(self.accelerator.device)
        _move_optimizer_state(self.optimizer, self.accelerator.device)


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move an optimizer's state tensors (Adam's moments) to ``device`` in place."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != "step":
                state[key] = value.to(device)
