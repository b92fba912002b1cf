"""What the search needs to know about a genotype, computed on this machine.

:class:`CandidateEvaluator` owns the task, the (proxy-sized) datasets, the fixed scoring
batch and the device measurer. The search talks to it through four questions: the
training-free score (training speed or NASWOT), the static resources (parameters,
FLOPs), the predicted latency of an untrained child, and "train it, evaluate it,
measure it". Nothing here knows about tabu lists or the run store.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import Subset

from edgenas.errors import UserError
from edgenas.search.config import SearchConfig
from edgenas.search.latency import LatencyService, LatencySetup


@dataclass
class TrainedCandidate:
    """Outcome of proxy training plus the measured resources of one genotype."""

    genotype: str
    metrics: dict[str, float]
    accuracy: float
    params: int
    flops: int
    latency_ms: float | None
    timings: dict[str, float] = field(default_factory=dict)
    loss_history: list[list[float]] = field(default_factory=list)  # [[step, loss], ...]


# A recorded loss curve keeps at most this many points (the monitor plots it).
LOSS_POINTS = 64


class LossCurve:
    """``on_step`` of :func:`edgenas.training.train` that keeps a loss curve of at most
    ``max_points`` points, evenly spaced: when full, every other point goes and the
    stride between kept steps doubles (a long training costs no more than a short one).
    """

    def __init__(self, max_points: int = LOSS_POINTS) -> None:
        self.max_points = max_points
        self.stride = 1
        self.points: list[list[float]] = []

    def __call__(self, step: int, loss: float) -> None:
        if step % self.stride or not math.isfinite(loss):
            return
        self.points.append([step, round(float(loss), 6)])
        if len(self.points) > self.max_points:
            self.stride *= 2
            self.points = [p for p in self.points if p[0] % self.stride == 0]


def loss_history(result, curve: LossCurve | None = None) -> list[list[float]]:
    """A training's loss curve, ``[[step, loss], ...]``: the per-step ``curve`` when
    one was recorded, else the loss of each epoch in ``result.history``; the final
    loss is always the last point."""
    points = (
        list(curve.points)
        if curve is not None and curve.points
        else [
            [int(r["step"]), round(float(r["loss"]), 6)]
            for r in result.history
            if isinstance(r.get("loss"), int | float) and math.isfinite(r["loss"])
        ]
    )
    final = result.final_loss
    if math.isfinite(final) and (not points or points[-1][0] != result.steps):
        if len(points) >= LOSS_POINTS:  # the final point takes the last one's place
            points = points[: LOSS_POINTS - 1]
        points.append([result.steps, round(float(final), 6)])
    return points


def records_every_step(accelerator: str | None) -> bool:
    """Whether a training on ``accelerator`` can report its loss at every step for free:
    the CPU loop reads the loss every step anyway, a GPU loop only every 25 steps (an
    ``on_step`` callback would make it wait for the GPU at every step)."""
    name = (accelerator or "auto").lower()
    return name == "cpu" or (name == "auto" and not torch.cuda.is_available())


# NASWOT images are downsized to at most this many pixels (the default proxy size,
# 64x80): scoring a 40-network pool at CamVid's 180x240 took 6-7 s per network here,
# most of a 20-minute search's time, and the score compares activation patterns,
# which a smaller image still separates.
SCORE_MAX_PIXELS = 64 * 80


def _downsized(images: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """``images`` (N, C, H, W) resized (area) to at most ``max_pixels`` per image."""
    height, width = images.shape[-2:]
    factor = (max_pixels / (height * width)) ** 0.5
    if factor >= 1.0:
        return images
    size = (max(8, round(height * factor)), max(8, round(width * factor)))
    return torch.nn.functional.interpolate(images, size=size, mode="area")


def _in_memory(dataset):
    """The dataset as an in-memory bank (decoded once), or itself when it does not fit."""
    from edgenas.data.memory import build_bank

    return build_bank(dataset) or dataset


def _subsample(dataset, fraction: float, seed: int):
    """A seeded random subset of ``fraction`` of a dataset (at least one item)."""
    if fraction >= 1.0:
        return dataset
    count = max(1, round(len(dataset) * fraction))
    indices = sorted(random.Random(seed).sample(range(len(dataset)), count))
    subset = Subset(dataset, indices)
    subset.info = dataset.info  # type: ignore[attr-defined]
    return subset


def open_search_data(config: SearchConfig, size: tuple[int, int]):
    """``(train, val)`` of a search's data, dense tasks resized to ``size`` (SR: LR
    patches of the proxy size); opening reads no image."""
    from edgenas.data.open import open_train_val
    from edgenas.task_names import canonical_task

    task = canonical_task(config.task)
    sr = task == "sr"
    return open_train_val(
        task, config.data, config.val_data, fmt=config.data_format,
        size=None if sr else size, scale=config.scale,
        patch=min(config.proxy_input) if sr else 48, seed=config.seed,
    )  # fmt: skip


class CandidateEvaluator:
    """Scores, sizes, trains and measures genotypes for one search configuration."""

    def __init__(self, config: SearchConfig, latency=None) -> None:
        """``latency``: where latency questions go (a :class:`LatencyService` or a
        remote one with its methods); None: a local service on ``config.device``."""
        from edgenas.tasks import get_task

        self.config = config
        self.task = get_task(config.task)
        self.train_data, self.val_data = self._open_data(tuple(config.proxy_input))
        self.info = self.train_data.info
        self.train_config = config.train_config()
        self._bank = None
        self._final_data = None
        self._speed_pair = None
        if config.score == "speed":
            self._check_speed_score()
        self.score_images = self._score_batch()
        # For super-resolution the deploy size is the low-resolution input.
        self.deploy_shape = (1, 3, *config.deploy_input)
        self.wants_latency = config.target_latency_ms is not None
        self.latency = latency if latency is not None else LatencyService(self.latency_setup())

    # ------------------------------------------------------------------ data
    def _open_data(self, size: tuple[int, int]):
        """``(train, val)`` of the run's data, dense tasks resized to ``size`` (SR: LR
        patches of the proxy size), the training set subsampled as configured."""
        train_data, val_data = open_search_data(self.config, size)
        train_data = _subsample(train_data, self.config.subsample, self.config.seed)
        return train_data, val_data

    def _check_speed_score(self) -> None:
        """``--score speed`` times training steps on the CPU: a GPU training would be
        ranked by its CPU cost, which can differ a lot from its GPU cost."""
        from edgenas.accelerator import resolve_accelerator

        config = self.train_config
        kind = resolve_accelerator(config.accelerator, config.precision, config.channels_last).kind
        if kind != "cpu":
            raise UserError(
                f"--score speed times training steps on the CPU, but candidates train on "
                f"{kind}: use --score naswot, or --accelerator cpu"
            )

    def _score_batch(self) -> torch.Tensor:
        """One fixed batch of training images (seeded), the same for every genotype."""
        rng = random.Random(self.config.seed)
        count = min(self.config.score_batch, len(self.train_data))
        if count < 2:
            raise UserError("NASWOT needs at least 2 training images")
        indices = rng.sample(range(len(self.train_data)), count)
        images = torch.stack([self.train_data[i][0] for i in indices])
        return _downsized(images, SCORE_MAX_PIXELS)

    @property
    def train_source(self):
        """The training data as an in-memory bank (decoded once, shared by every
        candidate's training), or the dataset itself when it does not fit."""
        if self._bank is None:
            self._bank = _in_memory(self.train_data)
        return self._bank

    def final_data(self):
        """``(train_source, val_data)`` of the final training (and the baselines beside
        it): at ``final_input`` when it differs from the proxy size (dense tasks), else
        the proxy's own data."""
        config = self.config
        final = tuple(config.final_input or config.proxy_input)
        if self.task.name == "sr" or final == tuple(config.proxy_input):
            return self.train_source, self.val_data
        if self._final_data is None:
            train_data, val_data = self._open_data(final)
            self._final_data = (_in_memory(train_data), val_data)
        return self._final_data

    # ---------------------------------------------------------------- models
    def build(self, genotype: str) -> torch.nn.Module:
        """The genotype's network with the task head sized for the data, seeded weights."""
        torch.manual_seed(self.config.seed)
        return self.task.build_model(genotype, self.info)

    def params(self, genotype: str) -> int:
        """The parameter count of :meth:`build`'s network, without building it (about
        1 ms with a warm cache against 30 ms for a build: sizes thousands of draws, e.g.
        a pool within a target)."""
        from edgenas.models.param_count import genotype_params

        return genotype_params(genotype, self.task.name, **self.task.head_options(self.info))

    def score(self, genotype: str) -> float:
        """The run's training-free score (``config.score``) of a fresh seeded network:
        NASWOT on the fixed batch, or training steps per second."""
        return self._score_model(self.build(genotype))

    def pool_entry(self, genotype: str) -> tuple[float, int, int]:
        """``(score, params, MACs)`` of a pool genotype, one network built."""
        model = self.build(genotype)
        # First, on the fresh network (a speed score then leaves it trained a few steps,
        # which changes neither its parameter count nor its MACs).
        score = self._score_model(model)
        sizes = self.static_resources(genotype, model)
        return score, int(sizes["params"]), int(sizes["flops"])

    def _score_model(self, model: torch.nn.Module) -> float:
        if self.config.score == "speed":
            return self.training_speed(model)
        from edgenas.naswot import naswot_score

        return naswot_score(model, self.score_images)

    def training_speed(self, model: torch.nn.Module) -> float:
        """Training steps per second of ``model`` on :meth:`speed_batch`, in the
        proxy's memory layout, on the CPU (the ``--score speed`` score). The model is
        left trained by a few steps, in training mode."""
        from edgenas.accelerator import resolve_accelerator
        from edgenas.training import training_clock
        from edgenas.training_speed import training_steps_per_second

        config = self.train_config
        layout = resolve_accelerator("cpu", "fp32", config.channels_last).channels_last
        images, targets = self.speed_batch()
        return training_steps_per_second(
            model,
            lambda pred, target: self.task.loss(pred, target, self.info),
            images,
            targets,
            channels_last=layout,
            # One thread's CPU time, or the wall clock when torch computes on several.
            clock=training_clock("cpu", "cpu"),
        )

    def speed_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One seeded training minibatch of the proxy's batch size and input size."""
        if self._speed_pair is None:
            data = self.train_data  # a dataset (an SR patch bank cannot be indexed)
            count = min(self.train_config.batch_size, len(data))
            indices = random.Random(self.config.seed).sample(range(len(data)), count)
            pairs = [data[i] for i in indices]
            self._speed_pair = (
                torch.stack([p[0] for p in pairs]),
                torch.stack([p[1] for p in pairs]),
            )
        return self._speed_pair

    def static_resources(self, genotype: str, model=None) -> dict[str, float]:
        """Parameters and MACs at the deploy input size (of ``model`` if already built)."""
        from edgenas.models.complexity import count_macs, count_params

        model = model if model is not None else self.build(genotype)
        return {"params": count_params(model), "flops": count_macs(model, self.deploy_shape)}

    # --------------------------------------------------------------- latency
    def latency_setup(self) -> LatencySetup:
        """The device and network shape a latency service needs (no data)."""
        return LatencySetup(
            device=self.config.device,
            threads=self.config.threads,
            task=self.task.name,
            deploy_shape=tuple(self.deploy_shape),
            task_options=self.task.head_options(self.info),
            reference_model=self.config.target_latency_reference,
            reference_latency_ms=(
                self.config.target_latency_ms if self.config.target_latency_reference else None
            ),
        )

    def predicted_latency(self, genotype: str) -> float:
        """Latency predicted from the device's lookup table (new parts are measured)."""
        return self.latency.predicted(genotype)

    def network_latency(self, genotype: str) -> float:
        """The whole network measured on the device, without touching the lookup
        table (one session; a table prediction may first measure every new part)."""
        return self.latency.network(genotype)

    def paired_latency(self, genotype: str) -> float:
        """Whole-network latency timed alternating with the run's reference, as every
        candidate was, without calibrating the table again (the final genotype)."""
        return self.latency.paired_network(genotype)

    def measured_latency(self, genotype: str, model=None) -> float:
        """Whole-network latency measured on the device; it also calibrates the table's
        overhead term, so predictions for later children improve as the search goes."""
        return self.latency.measured(genotype, model)

    def resources(
        self, genotype: str, *, measured: bool, model=None
    ) -> tuple[dict[str, float], str | None]:
        """Params, FLOPs and (if a latency target is set) latency; with its source.
        ``model``: the genotype's network if already built (weights do not matter)."""
        values = self.static_resources(genotype, model)
        source = None
        if self.wants_latency:
            if measured:
                values["latency_ms"] = self.measured_latency(genotype, model)
                source = "measured"
            else:
                values["latency_ms"], source = self.predicted_latency(genotype), "predicted"
        return values, source

    # -------------------------------------------------------------- training
    def train(self, genotype: str) -> TrainedCandidate:
        """Proxy-train, evaluate on the validation data, measure the resources."""
        from edgenas.training import Budget, train

        config = self.config
        start = time.perf_counter()
        model = self.build(genotype)
        budget = Budget(seconds=config.train_seconds, steps=config.train_steps)
        curve = LossCurve() if records_every_step(self.train_config.accelerator) else None
        result = train(
            model, self.task, self.train_source, self.val_data, budget, self.train_config,
            on_step=curve,
        )  # fmt: skip
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        values, _source = self.resources(genotype, measured=True, model=model)
        accuracy = result.normalised_accuracy
        if math.isnan(accuracy):
            accuracy = 0.0
        return TrainedCandidate(
            genotype=genotype,
            metrics={k: float(v) for k, v in result.metrics.items()},
            accuracy=float(accuracy),
            params=int(values["params"]),
            flops=int(values["flops"]),
            latency_ms=values.get("latency_ms"),
            timings={
                "train": train_seconds,
                "measure": time.perf_counter() - start,
                "steps": float(result.steps),
            },
            loss_history=loss_history(result, curve),
        )

    def close(self) -> None:
        """Release the device and the measurer's temporary files."""
        self.latency.close()
