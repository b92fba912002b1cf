"""The plain settings of HR-NAS: the supernet's shape and the shrinking recipe.

Kept free of torch so that the command line can read every default from here when it
builds its parser (``edgenas --help`` stays fast); :mod:`edgenas.hrnas.supernet` and
:mod:`edgenas.hrnas.shrink` re-export both classes.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import ClassVar

PROJECTORS = ("resize-first", "conv-first")


@dataclass(frozen=True)
class SupernetConfig:
    """Shape of the supernet; every field is a plain value (stored with each run)."""

    widths: tuple[int, ...] = (16, 24, 32, 48)
    branches: tuple[int, ...] = (1, 2, 3, 4, 4)
    depth: int = 1
    expansion: float = 2.0
    tokens: int = 8
    fusion_tokens: int = 0
    token_size: int = 8
    heads: int = 1
    stem_channels: int = 16
    head_channels: int = 32
    # The transformers' projector order: "resize-first" (the official HR-NAS code:
    # resize to s x s, then the 1x1 conv) or "conv-first" (1x1 conv at full resolution,
    # then resize), the order of checkpoints and runs made before edgenas switched; the
    # two differ in the positional map, so a stored network keeps the order it learned.
    projector: str = "resize-first"

    def __post_init__(self) -> None:
        b = self.branches
        if not b or b[0] != 1 or any(y - x not in (0, 1) for x, y in itertools.pairwise(b)):
            raise ValueError(
                f"branches {b} must start at 1 and grow by at most 1 per module, e.g. 1,2,3,4,4"
            )
        if max(b) > len(self.widths):
            raise ValueError(f"{max(b)} branches need {max(b)} widths, got {len(self.widths)}")
        if self.depth < 1 or self.expansion <= 0 or min(self.widths) < 1:
            raise ValueError("depth, expansion and widths must be positive")
        if self.tokens < 0 or self.fusion_tokens < 0:
            raise ValueError("token counts cannot be negative")
        if self.projector not in PROJECTORS:
            raise ValueError(f"projector must be one of {', '.join(PROJECTORS)}")
        if (self.token_size**2) % self.heads:
            raise ValueError(f"token dimension {self.token_size**2} not divisible by heads")

    def to_dict(self) -> dict:
        """JSON-ready dictionary (tuples as lists); :meth:`from_dict` reads it back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> SupernetConfig:
        """The configuration :meth:`to_dict` wrote; one stored before the projector
        order was recorded is a "conv-first" network."""
        data = {"projector": "conv-first", **data}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# Named supernet shapes (`edgenas shrink --supernet`), as overrides of SupernetConfig's
# defaults. "full" is the default: four widths, five modules, 8 tokens per transformer,
# expansion 2 (1.83M parameters). "small" is the supernet a few minutes of CPU training
# can train: three widths, three modules, no transformers, expansion 1 (93K parameters).
# On CamVid at 180x240 for 300 s the full supernet got a quarter of a U-Net's steps and
# lost to it on both axes; the small one, chosen on a development split of CamVid's
# training images, was faster than the U-Net and on CamVid val more accurate in 14
# seeds of 17 (docs/hrnas.md).
SUPERNET_PRESETS: dict[str, dict] = {
    "full": {},
    "small": {"widths": (16, 32, 64), "branches": (1, 2, 3), "tokens": 0, "expansion": 1.0},
}


# Where a latency coster's per-unit slopes come from: "measured" (each part timed on
# the device into its lookup table) or "kernels" (the device's fused-kernel predictor,
# `edgenas devices calibrate DEVICE`: the runtime lists the kernels it would run and the
# learned per-type models give their times, so a slope carries no timing noise).
LATENCY_MODELS = ("measured", "kernels")


OPTIMIZERS = ("fast", "ldp", "hrnas")
# Per optimiser: (learning rate at batch 32, importance learning-rate factor). "fast" is
# the recipe of `edgenas train` and of the baselines a run is compared with
# (edgenas.tasks.recipes: Adam at the task's rate, warm-up then cosine over the budget, a
# class-weighted loss for segmentation), so that the shrunk network and the baselines
# learn the same way; its importances train at 12x, about the per-step movement LDP's
# 7e-4 x 50 gives them, so the L1 term still empties units within minutes. "hrnas" is
# the official HR-NAS segmentation recipe (configs/seg_*.yml: AdamW, base_lr 0.04 for a
# total batch of 32, scaled linearly with the batch; one-cycle schedule; the importances
# train at the same rate as everything else). "ldp" is LDP's Adam at 7e-4 (not scaled).
# "fast" has no rate of its own: None is the task's rate of `edgenas train` (3e-3 for
# segmentation), resolved by edgenas.hrnas.shrink.learning_rate.
OPTIMIZER_DEFAULTS = {"fast": (None, 12.0), "ldp": (7e-4, 50.0), "hrnas": (0.04, 1.0)}


@dataclass(frozen=True)
class ShrinkConfig:
    """Hyper-parameters of progressive shrinking.

    The budget is ``epochs``, ``seconds`` or both (the first reached ends training);
    with neither, :attr:`DEFAULT_EPOCHS` epochs. ``optimizer`` is ``fast`` (the
    default: the training recipe of ``edgenas train`` and of the baselines a run is
    compared with, class-weighted for segmentation), ``ldp`` (LDP's Adam) or ``hrnas``
    (the official HR-NAS recipe: AdamW with a one-cycle schedule, see
    :func:`edgenas.hrnas.shrink.make_optimizer`); ``lr`` and ``alpha_lr_mult`` default
    per optimiser (:data:`OPTIMIZER_DEFAULTS`; ``lr`` None with ``fast``: the task's).

    ``target_flops`` (MACs) or ``target_latency_ms`` (ms on the device) at the deploy
    size turn the fixed ``lam`` into the starting value of a controller that adapts it
    and stops pruning at the target (:mod:`edgenas.hrnas.target`).
    """

    DEFAULT_EPOCHS: ClassVar[int] = 5

    lam: float = 2e-3
    epsilon: float = 2e-2
    align: int = 8
    epochs: int | None = None
    seconds: float | None = None
    # The paper shrinks every 5 epochs; 1 (shrink after every epoch) is the fast setting
    # for CPU budgets of a few epochs.
    shrink_every: int = 5
    warmup_epochs: float = 1.0
    alpha_lr_mult: float | None = None
    recalibrate_batches: int = 4
    batch_size: int = 8
    lr: float | None = None  # None with "fast": the task's rate (see OPTIMIZER_DEFAULTS)
    seed: int = 0
    workers: int = 0
    augment: bool = True
    eval_batches: int | None = None
    # Where the supernet trains (auto: CUDA when present). Shrink steps, costs, exports
    # and latency measurements run on a CPU copy of the state either way.
    accelerator: str = "auto"
    optimizer: str = "fast"
    # What a seconds budget counts: "cpu" (the training thread's CPU time, so other
    # processes' load does not take steps from the run, or from the baselines trained
    # for its seconds) or "wall" (edgenas.training.training_clock; falls back to wall
    # time with several torch threads or on a GPU). Runs stored before the field: wall.
    clock: str = "cpu"
    target_flops: float | None = None
    target_latency_ms: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.seconds is None:
            object.__setattr__(self, "epochs", self.DEFAULT_EPOCHS)
        from edgenas.training import CLOCKS

        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        base_lr, alpha_mult = OPTIMIZER_DEFAULTS[self.optimizer]
        if self.lr is None and base_lr is not None:
            scale = self.batch_size / 32 if self.optimizer == "hrnas" else 1.0
            object.__setattr__(self, "lr", base_lr * scale)
        if self.alpha_lr_mult is None:
            object.__setattr__(self, "alpha_lr_mult", alpha_mult)
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.lam < 0 or self.epsilon < 0:
            raise ValueError("lambda and epsilon cannot be negative")
        if self.align < 1:
            raise ValueError("align must be at least 1")
        if self.shrink_every < 1:
            raise ValueError("shrink_every must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.target_flops is not None and self.target_latency_ms is not None:
            raise ValueError("give one target: --target-flops or --target-latency, not both")
        for name in ("target_flops", "target_latency_ms"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and value < float("inf")):
                raise ValueError(f"{name.replace('_', ' ')} must be positive, got {value}")

    @property
    def target(self) -> tuple[str, float] | None:
        """``("flops", MACs)``, ``("latency", ms)`` or None (the fixed-lambda path)."""
        if self.target_flops is not None:
            return "flops", float(self.target_flops)
        if self.target_latency_ms is not None:
            return "latency", float(self.target_latency_ms)
        return None
