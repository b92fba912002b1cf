"""The search configuration: one plain dataclass with every default written out.

The run store keeps ``SearchConfig.to_dict()`` of the resolved config, so a run can be
resumed, reported and compared without knowing which defaults were in force.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from edgenas.task_names import TASK_ALIASES

_SI = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}

# The latency target (ms on ``SearchConfig.device``) that `edgenas search` sets when the
# user gives no target at all. Only the command line applies it: a SearchConfig built in
# Python has exactly the targets it is given.
DEFAULT_TARGET_LATENCY_MS = 25.0
# Proxy training input (H, W) when none is given; for super-resolution the LR patch.
DEFAULT_PROXY_INPUT = (64, 80)
DEFAULT_SR_PROXY_INPUT = (24, 24)
# Share of the training data the alpha-grid searches train on when none is given.
DEFAULT_GRID_SUBSAMPLE = 0.2
# The space a run searches when its stored config predates the space fields (the
# paper's full operator lists): resuming such a run must replay the same space.
LEGACY_SPACE = {
    "ops": ("conv", "ds", "ib", "micro"),
    "kernels": (3, 5),
    "se": (0, 25),
    "residual": (True, False),
    "layers": (1, 2, 3),
}


def parse_count(text: str) -> float:
    """``1.8M`` -> 1.8e6, ``1G`` -> 1e9, ``250k`` -> 2.5e5, ``1200`` -> 1200."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"bad count {text!r}: write a positive number like 1.8M, 500k or 1G")
    return float(match[1]) * _SI[match[2]]


def parse_milliseconds(text: str) -> float:
    """``30ms`` or ``30`` -> 30.0; ``0.03s`` -> 30.0."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*", text)
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"bad latency {text!r}: write a positive time like 30ms or 0.03s")
    value = float(match[1])
    return value * 1000.0 if match[2] == "s" else value


@dataclass
class SearchConfig:
    """Everything that defines an LDP search run.

    Sizes: ``proxy_input`` is the (H, W) of short proxy training; ``deploy_input`` the
    (H, W) at which FLOPs and latency are counted (the size the model will run at).
    ``proxy_input=None`` resolves to :data:`DEFAULT_PROXY_INPUT`, or for ``task="sr"``
    to :data:`DEFAULT_SR_PROXY_INPUT` (LR patches).

    Targets: any of ``target_params``, ``target_flops`` (MACs), ``target_latency_ms``
    (on ``device``); several combine as a product of compactness terms (see
    :mod:`edgenas.search.objectives`). All three default to None: with none given,
    parameters are the resource with no target, and G reduces to ``a * A + (1 - a)``.
    The command line differs on purpose: `edgenas search` with no target flag sets
    ``target_latency_ms`` to :data:`DEFAULT_TARGET_LATENCY_MS` (25 ms on ``device``).

    ``subsample``: the share of the training data the evaluator trains on; None
    resolves to :data:`DEFAULT_GRID_SUBSAMPLE` with an ``alpha_grid`` (the grid's short
    searches), else 1.0. The main search after a grid always uses all the data.
    ``threads`` are threads on the latency ``device``; ``torch_threads`` are torch's
    intra-op threads per process (search and ``executor="process"`` workers alike).
    ``workers``: processes of ``executor="process"`` (unused inline).
    """

    task: str = "depth"
    data: str | None = None
    val_data: str | None = None
    data_format: str | None = None
    scale: int = 2
    proxy_input: tuple[int, int] | None = None
    deploy_input: tuple[int, int] = (120, 160)
    device: str = "cpu"
    threads: int = 1
    target_params: float | None = None
    target_flops: float | None = None
    target_latency_ms: float | None = None
    alpha: float = 0.5
    alpha_grid: tuple[float, ...] = ()
    subsample: float | None = None
    scales: tuple[int, ...] = (2, 3)
    # CPU-friendly widths: a latency target of tens of ms on one CPU thread needs narrow
    # networks anyway; widen with --channels for bigger targets or faster devices.
    channels: tuple[int, ...] = (8, 16, 24, 32)
    # Operator lists of the space. The defaults keep the blocks that train within a
    # search's short proxy budgets (docs/search.md, "A space that trains"): plain and
    # depthwise-separable convolutions and inverted bottlenecks, residual, without
    # squeeze-and-excitation. LEGACY_SPACE is the paper's full list.
    ops: tuple[str, ...] = ("conv", "ds", "ib")
    kernels: tuple[int, ...] = (3, 5)
    se: tuple[int, ...] = (0,)
    residual: tuple[bool, ...] = (True,)
    layers: tuple[int, ...] = (1, 2, 3)
    pool_size: int = 40
    score_batch: int = 16
    score_workers: int = 1
    parents: int = 4
    children: int = 4
    max_iterations: int = 2
    patience: int = 10
    tabu_tenure: int = 5
    train_seconds: float | None = 6.0
    train_steps: int | None = None
    final_seconds: float | None = 60.0
    final_steps: int | None = None
    # None: the task's recipe (edgenas.tasks.recipes), e.g. 16 for sr, 8 for seg/depth.
    batch_size: int | None = None
    recipe: str = "fast"
    accelerator: str = "auto"
    executor: str = "inline"
    workers: int = 2
    torch_threads: int = 1
    top_k: int = 5
    # Reference models trained beside the final model with its budget, for the report
    # (edgenas.baselines): None = the task's defaults, () = none.
    baselines: tuple[str, ...] | None = None
    seed: int = 0
    run_name: str = "search"
    runs_dir: str = "runs"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Resolve the defaults that depend on other fields, so :meth:`to_dict` (what the
        run store keeps) always holds concrete values."""
        if self.proxy_input is None:
            sr = TASK_ALIASES.get(self.task, self.task) == "sr"
            self.proxy_input = DEFAULT_SR_PROXY_INPUT if sr else DEFAULT_PROXY_INPUT
        if self.subsample is None:
            self.subsample = DEFAULT_GRID_SUBSAMPLE if self.alpha_grid else 1.0

    def targets(self) -> dict[str, float]:
        """The compactness targets by resource name (``params``, ``flops``, ``latency_ms``)."""
        found = {
            "params": self.target_params,
            "flops": self.target_flops,
            "latency_ms": self.target_latency_ms,
        }
        return {name: value for name, value in found.items() if value is not None}

    def primary_resource(self) -> str:
        """The resource of plots and the Pareto front: latency if targeted, else FLOPs if
        targeted, else parameters."""
        targets = self.targets()
        for name in ("latency_ms", "flops", "params"):
            if name in targets:
                return name
        return "params"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"a (--alpha) must be in [0, 1], got {self.alpha}")
        for a in self.alpha_grid:
            if not 0.0 <= a <= 1.0:
                raise ValueError(f"--alpha-grid values must be in [0, 1], got {a}")
        if not 0.0 < self.subsample <= 1.0:
            raise ValueError(f"--subsample must be in (0, 1], got {self.subsample}")
        positive = {
            "pool_size": self.pool_size,
            "parents": self.parents,
            "children": self.children,
            "max_iterations": self.max_iterations,
            "patience": self.patience,
            "tabu_tenure": self.tabu_tenure,
            "workers": self.workers,
            "score_workers": self.score_workers,
            "threads": self.threads,
            "torch_threads": self.torch_threads,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {value}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch-size must be at least 1, got {self.batch_size}")
        if self.recipe not in ("fast", "ldp"):
            raise ValueError(f"recipe must be fast or ldp, got {self.recipe!r}")
        if self.score_batch < 2:
            raise ValueError(f"score-batch must be at least 2, got {self.score_batch}")
        if self.parents > self.pool_size:
            raise ValueError(f"parents ({self.parents}) cannot exceed the pool ({self.pool_size})")
        if self.train_seconds is None and self.train_steps is None:
            raise ValueError("a training budget (train seconds or steps) is required")
        if self.final_seconds is None and self.final_steps is None:
            raise ValueError("a final training budget (final seconds or steps) is required")
        if self.executor not in ("inline", "process"):
            raise ValueError(f"executor must be inline or process, got {self.executor!r}")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.run_name):
            raise ValueError(f"run name {self.run_name!r}: use letters, digits, '.', '_' or '-'")

    def space(self):
        """The :class:`~edgenas.space.LDPSpace` this run searches (``ValueError`` on
        choice lists that build no space)."""
        from edgenas.space import LDPSpace

        return LDPSpace(
            scales=tuple(self.scales),
            channels=tuple(self.channels),
            ops=tuple(self.ops),
            kernels=tuple(self.kernels),
            se=tuple(self.se),
            residual=tuple(self.residual),
            layers=tuple(self.layers),
        )

    def train_config(self):
        """The training config of proxy and final training (the task's recipe)."""
        from edgenas.tasks.recipes import recipe_config

        return recipe_config(
            self.task,
            self.recipe,
            batch_size=self.batch_size,
            seed=self.seed,
            accelerator=self.accelerator,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        if "ops" not in values:  # stored before the space fields: the paper's full lists
            values.update({k: v for k, v in LEGACY_SPACE.items() if k not in values})
        tuples = (
            "proxy_input", "deploy_input", "alpha_grid", "scales", "channels", "baselines",
            *LEGACY_SPACE,
        )  # fmt: skip
        for key in tuples:
            if key in values and values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values)
