"""Training recipes: each task's measured defaults, and the LDP paper's recipe.

``recipe_config(task, "fast")`` is what `edgenas train`, the search's proxy and final
training and the benchmarks use unless told otherwise (a search's SR proxy changes
only its peak rate: :func:`proxy_lr`). Its values were chosen by
measurement on a 2-core CPU with budgets of 1-5 minutes (docs/tasks.md, "Choosing the
defaults"); they are plain data, so a user's config can override any field.

``recipe_config(task, "ldp")`` is the paper's (Sec. 2.4): Adam (0.9, 0.999, 1e-8) at
7e-4 with its step decay (held 10 epochs, then x0.95 every 5), batch 256, the paper's
augmentation. Its batch needs a GPU; the step decay is mapped onto the budget as
described in :mod:`edgenas.schedules`.
"""

from __future__ import annotations

from dataclasses import replace

from edgenas.training import TrainConfig

RECIPES = ("fast", "ldp")

# Per task: the training config and the training input (H, W) -- for super-resolution
# the side of the square LR patch.
_FAST: dict[str, tuple[TrainConfig, tuple[int, int]]] = {
    "sr": (TrainConfig(batch_size=16, lr=3e-3, warmup=0.02, recipe="fast"), (24, 24)),
    "segmentation": (TrainConfig(batch_size=8, lr=3e-3, warmup=0.03, recipe="fast"), (128, 160)),
    "depth": (TrainConfig(batch_size=8, lr=2e-3, warmup=0.03, recipe="fast"), (128, 160)),
    "classification": (
        TrainConfig(batch_size=16, lr=2e-3, warmup=0.03, recipe="fast"),
        (128, 160),
    ),
}

# The peak learning rate of a search's short proxy trainings, where it differs from the
# task's fast recipe. SR, measured with benchmarks/bench_search_proxy_tau.py --rung-lr
# (docs/search.md, "SR networks within a target"): over 20 random networks within a
# 100K-parameter target, 18 s of training at 1e-3 ranked them against 60 s at the
# recipe's 3e-3 with Kendall tau +0.82 (3e-3: +0.72) and repeated its own ranking at
# +0.88 (3e-3: +0.53): at 3e-3 some networks jump away from bilinear quality in one run
# and not in the next. The final training keeps 3e-3, which is better for 60 s and more.
PROXY_LR: dict[str, float] = {"sr": 1e-3}

_LDP = TrainConfig(batch_size=256, lr=7e-4, schedule="ldp", warmup=0.0, recipe="ldp")


def recipe_config(task: str, recipe: str = "fast", **overrides) -> TrainConfig:
    """The training config of ``recipe`` for ``task`` (canonical name or alias), with
    ``overrides`` (``None`` values ignored) applied."""
    from edgenas.models.builder import canonical_task

    name = canonical_task(task)
    if recipe == "fast":
        config = _FAST[name][0]
    elif recipe == "ldp":
        config = _LDP
    else:
        raise ValueError(f"unknown recipe {recipe!r} (choose from {', '.join(RECIPES)})")
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def recipe_input(task: str, recipe: str = "fast") -> tuple[int, int]:
    """The default training input (H, W) of ``task``; for sr the LR patch side twice."""
    from edgenas.models.builder import canonical_task

    return _FAST[canonical_task(task)][1]


def proxy_lr(task: str, recipe: str = "fast") -> float | None:
    """The peak learning rate of a search's proxy training for ``task`` under
    ``recipe``, or ``None`` where it is the recipe's own (every task but SR, and the
    ``ldp`` recipe, which keeps the paper's rate)."""
    from edgenas.models.builder import canonical_task

    if recipe != "fast":
        return None
    return PROXY_LR.get(canonical_task(task))
