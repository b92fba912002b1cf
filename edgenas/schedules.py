"""Learning-rate schedules defined over the training budget, not over epochs.

A budget may be given in epochs, steps or seconds. Every schedule here is a function of
``progress`` in [0, 1] (the share of the budget spent), so a 60 s run and a 6 h run
both start at full rate and end on a decayed one. An epoch-based schedule that holds
the rate for ten epochs never decays inside a one-minute budget; these do.

* ``cosine``: linear warm-up over the first ``warmup`` of the budget (from 1 % of the
  rate), then half a cosine down to ``final`` times the rate at the end.
* ``ldp``: the LDP paper's step decay (Sec. 2.4: rate held for 10 epochs, then x0.95
  every 5 epochs) mapped onto the budget as if it were :data:`LDP_REFERENCE_EPOCHS`
  epochs long: held for the first 10 %, then x0.95 every further 5 %. With a budget in
  epochs the paper's own epoch boundaries are used instead.
* ``constant``: the rate throughout (after the warm-up).
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "ldp", "constant")
LDP_REFERENCE_EPOCHS = 100
LDP_HOLD_EPOCHS = 10
LDP_DECAY = 0.95
LDP_DECAY_EVERY = 5


def warmup_factor(progress: float, warmup: float) -> float:
    """Linear ramp from 0.01 to 1 over the first ``warmup`` share of the budget."""
    if warmup <= 0 or progress >= warmup:
        return 1.0
    return 0.01 + 0.99 * max(progress, 0.0) / warmup


def cosine_factor(progress: float, warmup: float = 0.0, final: float = 0.0) -> float:
    """Warm-up, then cosine from 1 down to ``final`` at ``progress = 1``."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return warmup_factor(progress, warmup)
    span = max(1.0 - warmup, 1e-12)
    t = (progress - warmup) / span
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))


def ldp_epoch_factor(epoch: float) -> float:
    """The paper's multiplier at (possibly fractional) ``epoch``: 1 for epochs 0-9, then
    0.95 ** k where k counts the 5-epoch periods started since epoch 10."""
    if epoch < LDP_HOLD_EPOCHS:
        return 1.0
    return LDP_DECAY ** (int((epoch - LDP_HOLD_EPOCHS) // LDP_DECAY_EVERY) + 1)


def lr_factor(
    schedule: str,
    progress: float,
    *,
    warmup: float = 0.0,
    final: float = 0.0,
    epoch: float | None = None,
) -> float:
    """Multiplier of the base learning rate at ``progress`` (share of the budget spent).

    ``epoch`` (the fractional epoch) is used by the ``ldp`` schedule when the budget is
    counted in epochs, so that schedule follows the paper exactly.
    """
    if schedule == "cosine":
        return cosine_factor(progress, warmup, final)
    if schedule == "constant":
        return warmup_factor(progress, warmup)
    if schedule == "ldp":
        at = epoch if epoch is not None else progress * LDP_REFERENCE_EPOCHS
        return warmup_factor(progress, warmup) * ldp_epoch_factor(at)
    raise ValueError(f"unknown schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")
