"""The search configuration: one plain dataclass with every default written out.

The run store keeps ``SearchConfig.to_dict()`` of the resolved config, so a run can be
resumed, reported and compared without knowing which defaults were in force.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edgenas.space.genotype import LAYOUTS
from edgenas.task_names import SR_SCALES, TASK_ALIASES

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
# Scale counts and block widths searched per task when none are given. CPU-friendly
# widths: a latency target of tens of ms on one CPU thread needs narrow networks
# anyway; widen with --channels for bigger targets or faster devices.
SPACE_BY_TASK = {
    "sr": {"scales": (2, 3), "channels": (8, 16, 24, 32)},
    "dense": {"scales": (2, 3, 4), "channels": (8, 16, 24, 32, 48, 64)},
}
LEGACY_SCALES_CHANNELS = {"scales": (2, 3), "channels": (8, 16, 24, 32)}
# Genotype layouts a super-resolution search can search (edgenas.space.genotype.LAYOUTS):
# "head", the pyramid at the LR resolution and a fixed pixel-shuffle head (S<n>:); or
# "paper", LDP Sec. 3.3's searched upsample block up1 and refine block ref0 at the HR
# resolution (S<n>U:). The default was chosen by measurement (docs/search-space.md,
# benchmarks/bench_sr_layout.py); --preset paper searches the paper's layout. A stored
# config without the key predates the choice: its search used "head".
SR_LAYOUTS = LAYOUTS  # the genotype layouts (edgenas.space.genotype)
DEFAULT_SR_LAYOUT = "head"
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


# Share of a --budget given to the final training of the best network when no final
# budget is named (each learned reference baseline gets the same again).
BUDGET_FINAL_SHARE = 0.25
# max_iterations when none is given: the demo's 2, or with a time budget the paper's
# 100 (the budget, split between the parents, is then what ends each tabu search).
DEFAULT_MAX_ITERATIONS = 2
BUDGET_MAX_ITERATIONS = 100
DEFAULT_FINAL_SECONDS = 60.0
DEFAULT_TRAIN_SECONDS = 6.0


def parse_duration(text: str) -> float:
    """``20m`` -> 1200.0, ``1h30m`` -> 5400.0, ``90s`` or ``90`` -> 90.0 (seconds)."""
    match = re.fullmatch(
        r"\s*(?:(?P<h>[0-9.]+)h)?\s*(?:(?P<m>[0-9.]+)m(?:in)?)?\s*(?:(?P<s>[0-9.]+)s?)?\s*",
        text,
    )
    parts = match.groupdict() if match else {}
    try:
        seconds = (
            float(parts.get("h") or 0) * 3600
            + float(parts.get("m") or 0) * 60
            + float(parts.get("s") or 0)
        )
    except ValueError:
        seconds = 0.0
    if not match or not any(parts.values()) or seconds <= 0:
        raise ValueError(f"bad duration {text!r}: write a positive time like 20m, 1h30m or 600s")
    return seconds


# The search loop's version, stored with each run: a run stored by another version
# would replay differently, so it is refused on resume instead of diverging.
# 2: parents re-selected between tabu searches, tabu tenure, warm starts, budgets.
# 3: the pool streams into the store in batches (one pool_scored event, no
#    parent_scored per network); executors wider than one train the best-rewarded
#    children of a tabu step together; failed candidates.
# 4: with a parameter target the pool is drawn within it.
# 5: super-resolution candidates train at the proxy's peak rate (recipes.PROXY_LR).
SEARCH_VERSION = 5
EXECUTORS = ("inline", "process", "ray")
SCORES = ("naswot", "speed")


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
    ``workers``: evaluations at once with ``executor="process"`` (processes) or
    ``"ray"`` (tasks); each tabu step then trains that many of its best-rewarded
    children together (unused inline). ``ray_address``: the cluster to join (None:
    a local Ray instance); ``task_timeout_s``: seconds after which a Ray task counts
    as stuck and is cancelled (None: :func:`edgenas.search.ray_executor.task_timeout`).

    ``budget_seconds``: the wall time of the whole run (pool, tabu search, final
    training, baselines, report); see :mod:`edgenas.search.budget`. With a budget,
    ``final_seconds`` defaults to :data:`BUDGET_FINAL_SHARE` of it and
    ``max_iterations`` to :data:`BUDGET_MAX_ITERATIONS`, and each parent's tabu search
    ends when its share of the time is spent.

    ``start_genotypes``: networks searched from first, before the score-ranked
    parents (a warm start). None resolves to the task's default genotype
    (:mod:`edgenas.tasks.defaults`, the one of the run's ``sr_layout`` for SR) when it
    lies in the space, else none; the paper preset starts from random parents only.

    ``sr_layout`` (super-resolution only; :data:`SR_LAYOUTS`): the genotype layout the
    space holds. None resolves, for ``task="sr"``, to ``"paper"`` with the paper preset
    and to :data:`DEFAULT_SR_LAYOUT` otherwise; it stays None for the other tasks.
    """

    task: str = "depth"
    data: str | None = None
    val_data: str | None = None
    data_format: str | None = None
    scale: int = 2
    proxy_input: tuple[int, int] | None = None
    deploy_input: tuple[int, int] = (120, 160)
    # (H, W) of the final training and the baselines beside it (dense tasks); None:
    # proxy_input. Lets the proxy train small and fast and the final model at full size.
    final_input: tuple[int, int] | None = None
    device: str = "cpu"
    threads: int = 1
    target_params: float | None = None
    target_flops: float | None = None
    target_latency_ms: float | None = None
    # A reference model (edgenas.models.reference, e.g. "unet") whose latency on the
    # device is the latency target: measured at the start of the run into
    # target_latency_ms, and the network every candidate's latency is paired with.
    target_latency_reference: str | None = None
    alpha: float = 0.5
    alpha_grid: tuple[float, ...] = ()
    subsample: float | None = None
    # None: the task's (SPACE_BY_TASK): dense tasks also search 4 scales and wider
    # blocks, which their default network (edgenas.tasks.defaults) needs.
    scales: tuple[int, ...] | None = None
    # CPU-friendly widths: a latency target of tens of ms on one CPU thread needs narrow
    # networks anyway; widen with --channels for bigger targets or faster devices.
    channels: tuple[int, ...] | None = None
    # Operator lists of the space. The defaults keep the blocks that train within a
    # search's short proxy budgets (docs/search.md): plain and separable convolutions
    # and inverted bottlenecks, without squeeze-and-excitation or micro-factorised
    # blocks, plus ``id`` (a block without layers), so that a search can make a network
    # shallower: on a CPU every layer costs time in training and at inference beyond
    # its MACs (docs/search-space.md, "Blocks without layers"). The separable conv is
    # ``sep`` (as in Xception), not the paper's ``ds`` (MobileNet's): the same inference
    # cost, a training step about 1.4x cheaper, and more accurate after the same
    # training time (docs/search-space.md, "Separable blocks"). LEGACY_SPACE is the
    # paper's full list.
    ops: tuple[str, ...] = ("conv", "sep", "ib", "id")
    kernels: tuple[int, ...] = (3, 5)
    se: tuple[int, ...] = (0,)
    residual: tuple[bool, ...] = (True, False)
    layers: tuple[int, ...] = (1, 2, 3)
    preset: str = "demo"
    sr_layout: str | None = None
    search_version: int = SEARCH_VERSION
    budget_seconds: float | None = None
    start_genotypes: tuple[str, ...] | None = None
    pool_size: int = 40
    score_batch: int = 16
    score_workers: int = 1
    parents: int = 4
    children: int = 4
    max_iterations: int | None = None
    patience: int = 10
    tabu_tenure: int = 5
    # The training-free score that ranks parents and rewards children (SCORES):
    # "naswot", the paper's; "speed", training steps per second (edgenas.training_speed),
    # since under a time budget the steps a network gets decide much of its accuracy.
    # None: "speed" when the proxy trains for seconds on this machine's CPU (the
    # default), else "naswot" (SearchConfig._default_score says why). Resolved once, at
    # construction: dataclasses.replace keeps the resolved value.
    score: str | None = None
    # None: DEFAULT_TRAIN_SECONDS, or with a budget planned from it at the start of the
    # run (edgenas.search.budget.proxy_seconds).
    train_seconds: float | None = None
    train_steps: int | None = None
    final_seconds: float | None = None
    final_steps: int | None = None
    # None: the task's recipe (edgenas.tasks.recipes), e.g. 16 for sr, 8 for seg/depth.
    batch_size: int | None = None
    recipe: str = "fast"
    # What the seconds budgets of the proxy, the final training and the baselines count
    # (edgenas.training.CLOCKS): CPU time gives every network the steps a quiet machine
    # would, so candidates trained at different moments of a shared machine's load,
    # and the final model and the baselines beside it, get the same compute.
    train_clock: str = "cpu"
    accelerator: str = "auto"
    executor: str = "inline"
    workers: int = 2
    ray_address: str | None = None
    task_timeout_s: float | None = None
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
        sr = TASK_ALIASES.get(self.task, self.task) == "sr"
        if self.proxy_input is None:
            self.proxy_input = DEFAULT_SR_PROXY_INPUT if sr else DEFAULT_PROXY_INPUT
        if self.subsample is None:
            self.subsample = DEFAULT_GRID_SUBSAMPLE if self.alpha_grid else 1.0
        space = SPACE_BY_TASK["sr" if sr else "dense"]
        if self.scales is None:
            self.scales = space["scales"]
        if self.channels is None:
            self.channels = space["channels"]
        if self.sr_layout is None and sr:
            self.sr_layout = "paper" if self.preset == "paper" else DEFAULT_SR_LAYOUT
        budget = self.budget_seconds
        if self.max_iterations is None:
            self.max_iterations = BUDGET_MAX_ITERATIONS if budget else DEFAULT_MAX_ITERATIONS
        if self.final_seconds is None and self.final_steps is None:
            self.final_seconds = (
                round(BUDGET_FINAL_SHARE * budget, 1) if budget else DEFAULT_FINAL_SECONDS
            )
        if self.train_seconds is None and self.train_steps is None and not budget:
            self.train_seconds = DEFAULT_TRAIN_SECONDS
        if self.score is None:
            self.score = self._default_score()
        if self.start_genotypes is None:
            self.start_genotypes = self._default_start()

    def _default_score(self) -> str:
        """``speed`` where it times what decides a candidate's proxy accuracy: a seconds
        budget trained on the CPU of this machine. Else the paper's ``naswot``: under a
        steps budget speed no longer decides how far a network trains, a GPU's cost is
        not what the CPU timing measures, and Ray workers may run on nodes of different
        speeds (and on GPUs the driver does not have)."""
        from edgenas.accelerator import device_kind

        if self.train_steps is not None or self.executor == "ray":
            return "naswot"
        # A bad accelerator name falls to naswot here; validate() reports it.
        return "speed" if device_kind(self.accelerator) == "cpu" else "naswot"

    def _default_start(self) -> tuple[str, ...]:
        """The task's default genotype (of the run's layout), if this run's space holds it."""
        from edgenas.space import decode
        from edgenas.tasks.defaults import DEFAULT_GENOTYPES, DENSE_GENOTYPE, SR_PAPER_GENOTYPE

        task = TASK_ALIASES.get(self.task, self.task)
        genotype = DEFAULT_GENOTYPES.get(task)
        if task == "sr" and self.sr_layout == "paper":
            genotype = SR_PAPER_GENOTYPE
        # Segmentation's default has id blocks; a space without them (--ops conv,sep,ib)
        # still starts from the dense genotype it was derived from. A space with the
        # paper's ds blocks instead of sep (or the reverse) starts from the same networks
        # built of the separable conv it has.
        fallback = DENSE_GENOTYPE if task != "sr" else None
        try:
            space = self.space()
        except ValueError:
            return ()  # validate() names the bad choice list
        options = [
            variant
            for option in (genotype, fallback)
            if option
            for variant in (option, option.replace("sep_", "ds_"), option.replace("ds_", "sep_"))
        ]
        for option in options:
            if space.is_valid(decode(option)):
                return (option,)
        return ()

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
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.train_clock not in ("wall", "cpu"):
            raise ValueError(f"train clock must be wall or cpu, got {self.train_clock!r}")
        if self.score_batch < 2:
            raise ValueError(f"score-batch must be at least 2, got {self.score_batch}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        sr = TASK_ALIASES.get(self.task, self.task) == "sr"
        if sr and self.scale not in SR_SCALES:
            raise ValueError(
                f"--scale must be one of {', '.join(map(str, SR_SCALES))}, got {self.scale}"
            )
        if self.sr_layout is not None:
            if not sr:
                raise ValueError(
                    f"--sr-layout applies to --task sr only (this run's task is {self.task}); "
                    "drop it"
                )
            if self.sr_layout not in SR_LAYOUTS:
                raise ValueError(
                    f"--sr-layout must be {' or '.join(SR_LAYOUTS)}, got {self.sr_layout!r}"
                )
        for name, value in (
            ("--target-params", self.target_params),
            ("--target-flops", self.target_flops),
            ("--target-latency", self.target_latency_ms),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value:g}")
        if self.target_latency_reference is not None:
            self._check_latency_reference()
        if self.top_k < 1:
            raise ValueError(f"--top-k must be at least 1, got {self.top_k}")
        if self.budget_seconds is not None:
            if not self.budget_seconds > 0:
                raise ValueError(f"budget must be a positive time, got {self.budget_seconds}")
            if self.final_seconds is None:
                raise ValueError("a --budget needs the final training in seconds, not steps")
            if self.alpha_grid:
                raise ValueError("--budget and --alpha-grid cannot be combined yet: drop one")
        for name, value in (
            ("--train-seconds", self.train_seconds),
            ("--final-seconds", self.final_seconds),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value:g}")
        for name, value in (
            ("--train-steps", self.train_steps),
            ("--final-steps", self.final_steps),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.start_genotypes:
            from edgenas.space import decode

            space = self.space()
        for genotype in self.start_genotypes or ():
            try:
                decoded = decode(genotype)
                problems = space.problems(decoded)
            except ValueError as err:
                problems = [str(err)]
            else:
                if decoded.layout != space.layout:
                    fix = f"--sr-layout {decoded.layout}" if sr else "an S<scales>: genotype"
                    problems = [f"{problems[0]}: use {fix}"]
            if problems:
                raise ValueError(
                    f"start genotype {genotype[:40]}... is not in the space: {problems[0]}"
                )
        if self.parents > self.pool_size:
            raise ValueError(f"parents ({self.parents}) cannot exceed the pool ({self.pool_size})")
        if self.train_seconds is None and self.train_steps is None and not self.budget_seconds:
            raise ValueError("a training budget (train seconds or steps) is required")
        if self.final_seconds is None and self.final_steps is None:
            raise ValueError("a final training budget (final seconds or steps) is required")
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}"
            )
        if self.executor != "ray" and (self.ray_address is not None or self.task_timeout_s):
            raise ValueError("--ray-address and --task-timeout need --executor ray")
        if self.task_timeout_s is not None and self.task_timeout_s <= 0:
            raise ValueError(f"task timeout must be positive, got {self.task_timeout_s:g} s")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.run_name):
            raise ValueError(f"run name {self.run_name!r}: use letters, digits, '.', '_' or '-'")

    def _check_latency_reference(self) -> None:
        """The latency reference is a model of this run's task, on a device this
        process can measure (a cluster's remote device would need the actor to)."""
        from edgenas.models.reference import REFERENCE_MODELS, reference_names

        name, own = self.target_latency_reference, reference_names(self.task)
        if REFERENCE_MODELS.get(name) is None or name not in own:
            raise ValueError(
                f"--target-latency {name}: not a {TASK_ALIASES.get(self.task, self.task)} "
                f"reference model; give a time like 30ms, 'baseline', or one of {', '.join(own)}"
            )
        if self.ray_address is not None:
            raise ValueError(
                f"--target-latency {name} with --ray-address: the reference is measured "
                "on this machine; measure it on the device with `edgenas profile` and "
                "give the time in ms"
            )

    def space(self):
        """The :class:`~edgenas.space.LDPSpace` this run searches (``ValueError`` on
        choice lists that build no space)."""
        from edgenas.space import LDPSpace

        paper = self.sr_layout == "paper"
        return LDPSpace(
            scales=tuple(self.scales),
            channels=tuple(self.channels),
            ops=tuple(self.ops),
            kernels=tuple(self.kernels),
            se=tuple(self.se),
            residual=tuple(self.residual),
            layers=tuple(self.layers),
            layout="paper" if paper else "head",
            upscale=self.scale if paper else 2,
        )

    def _recipe_config(self):
        """The task's training recipe with this run's batch size, seed, accelerator and
        clock."""
        from edgenas.tasks.recipes import recipe_config

        return recipe_config(
            self.task,
            self.recipe,
            batch_size=self.batch_size,
            seed=self.seed,
            accelerator=self.accelerator,
            clock=self.train_clock,
        )

    def train_config(self):
        """The training config of the candidates' proxy training: the task's recipe, at
        the recipe's proxy peak rate where it has one
        (:func:`edgenas.tasks.recipes.proxy_lr`)."""
        from edgenas.tasks.recipes import proxy_lr

        config = self._recipe_config()
        lr = proxy_lr(self.task, self.recipe)
        return replace(config, lr=lr) if lr is not None else config

    def final_train_config(self):
        """The training config of the final model and the baselines trained beside it:
        the task's recipe.

        With a ``budget_seconds`` their budgets count wall time: a budget promises the
        run's wall time, and the final phase is planned in it (a CPU-time final
        training stretches by the machine's load). The candidates keep
        ``train_clock``; the search loop checks their deadlines on the wall clock."""
        config = self._recipe_config()
        return replace(config, clock="wall") if self.budget_seconds else config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        if "ops" not in values:  # stored before the space fields: the paper's full lists
            values.update({k: v for k, v in LEGACY_SPACE.items() if k not in values})
            values.update({k: v for k, v in LEGACY_SCALES_CHANNELS.items() if k not in values})
        values.setdefault("start_genotypes", ())  # stored before warm starts: none
        # Stored before the layout choice: an SR search then searched the head layout.
        sr = TASK_ALIASES.get(values.get("task", "depth"), values.get("task")) == "sr"
        values.setdefault("sr_layout", "head" if sr else None)
        values.setdefault("search_version", 1)
        values.setdefault("train_clock", "wall")  # stored before the clock choice
        values.setdefault("score", "naswot")  # stored before the score choice
        tuples = (
            "proxy_input", "deploy_input", "final_input", "alpha_grid", "scales", "channels", "baselines",
            "start_genotypes", *LEGACY_SPACE,
        )  # fmt: skip
        for key in tuples:
            if key in values and values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values)


# Named settings (`edgenas search --preset NAME`); explicit options override them.
PRESETS: dict[str, dict[str, Any]] = {
    # A complete search in minutes on a laptop CPU: the dataclass defaults.
    "demo": {},
    # The paper's search (Huynh et al., Sec. 2.3-2.4): 60K NASWOT-ranked random parents,
    # 6 parents, up to 100 iterations with patience 10, the paper's operator lists and
    # training recipe (batch 256, so a GPU), no warm start. Days of GPU time.
    "paper": {
        "pool_size": 60_000,
        "parents": 6,
        "max_iterations": 100,
        "patience": 10,
        "batch_size": 256,
        "recipe": "ldp",
        "score": "naswot",
        "start_genotypes": (),
        **LEGACY_SPACE,
    },
}


def preset_config(preset: str = "demo", **values: Any) -> SearchConfig:
    """The SearchConfig of a preset with ``values`` on top (``None`` values are "not
    given" and leave the preset's or the dataclass's default)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    given = {k: v for k, v in values.items() if v is not None}
    return SearchConfig(**{**PRESETS[preset], **given, "preset": preset})
