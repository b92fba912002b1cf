"""Shrinking to a budget: ``--target-flops`` / ``--target-latency`` (an edgenas addition;
HR-NAS itself has only the fixed trade-off lambda).

Three pieces, each usable on its own:

- :class:`LambdaController`: the rule that adapts lambda to the distance from the
  target. It looks at the *projected* cost (what the network would cost if the units
  below epsilon were removed now) and at the *current* cost (the network as it is):

  1. current <= target: the target is reached; lambda = 0 and pruning stops for the
     rest of the run (training goes on with the task loss alone);
  2. projected > target * (1 + ``far``): far above even after the next shrink; lambda
     is multiplied by ``up`` (at most ``lam_max``), so more units head for zero;
  3. projected <= target: the next shrink step can reach the target; lambda is
     multiplied by ``down`` (at least ``lam_min``), so that the L1 term stops pushing
     units the network no longer needs to lose;
  4. otherwise (within ``far`` above): lambda stays.

  The shrinking loop applies it four times per epoch.
- :func:`select_to_target`: the units to remove at a shrink step so that the cost
  lands at (not far below) the target: units go in the order of their importance
  ``|alpha|``, and a bisection over that order finds the fewest that bring the
  predicted cost to the target. Normally only units below epsilon may go; at the end
  of the budget (``force``) more important ones too, so that the final network meets
  the target even when training ended before the L1 term got there.
- :class:`TargetCost`: the cost in the target's unit at the deploy size. MACs are
  counted exactly (:func:`edgenas.hrnas.costs.count_hrnas_macs`). Latency is measured
  on the device, for the network as it is (``now``) and for each candidate selection
  the bisection tries (about a dozen short measurements per shrink step). Predicting a
  selection's latency from its MACs failed both ways: units differ in latency per MAC
  (a transformer's tokens cost far more than their MACs), so a run aimed at 2.5 ms by
  the MAC ratio ended at 1.34 ms. The loop measures again after every step and only
  stops pruning on a measurement.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from edgenas.devices.protocol import Protocol
from edgenas.errors import UserError
from edgenas.hrnas.extract import apply_masks, select_units, shrink_model


@dataclass
class LambdaController:
    """lambda adapted to the distance from the target (rule in the module docstring)."""

    target: float
    lam: float
    far: float = 0.25
    up: float = 2.0
    down: float = 0.5
    lam_min: float = 1e-5
    lam_max: float = 1.0
    reached: bool = False

    def update(self, projected: float, current: float) -> float:
        """The new lambda after seeing the projected and the current cost."""
        if self.reached or current <= self.target:
            self.reached, self.lam = True, 0.0
        elif projected > self.target * (1 + self.far):
            self.lam = min(max(self.lam, self.lam_min) * self.up, self.lam_max)
        elif projected <= self.target:
            self.lam = max(self.lam * self.down, self.lam_min)
        return self.lam

    def state_dict(self) -> dict:
        return {"lam": self.lam, "reached": self.reached}

    def load_state_dict(self, state: dict) -> None:
        self.lam, self.reached = float(state["lam"]), bool(state["reached"])


def shrunk_copy(model, threshold: float, align: int):
    """A CPU copy of ``model`` without the units below ``threshold`` (no masks)."""
    static = copy.deepcopy(model).cpu()
    apply_masks(static, None)
    shrink_model(static, select_units(static, threshold, align))
    return static


def importance_levels(model) -> list[float]:
    """Every unit's ``|alpha|``, sorted ascending (the order in which units go)."""
    values = []
    for _, block in model.blocks():
        values += [block.channel_importance(k).detach().abs() for k in block.present_kernels()]
        if block.transformer is not None:
            values.append(block.transformer.importance.detach().abs())
    if not values:
        return []
    return sorted(set(torch.cat(values).cpu().tolist()))


def select_to_target(
    model, predict, target: float, epsilon: float, align: int, *, force=False, recheck=False
):
    """``(threshold, predicted cost)``: the smallest importance threshold (units below it
    are removed) whose network ``predict`` puts at or below ``target``.

    ``recheck`` (measured latency): a selection measured above the target is measured
    once more and the faster reading kept. Load only ever slows a measurement down, so
    "at or below" is believed at once while "above" may be a busy moment; one false
    "above" sends the bisection to remove more units than the target needs (a 4 ms
    target ended at 2.1 ms that way on a loaded machine).

    Thresholds are searched among the units' own importances (plus ``epsilon``); without
    ``force`` at most ``epsilon``, so only units the L1 term already drove below it can
    go. When even the largest allowed threshold leaves the cost above the target, that
    threshold is returned (with its cost). The cost falls monotonically with the
    threshold (more units removed), so a bisection over the sorted levels suffices.
    """
    levels = [v for v in importance_levels(model) if force or v < epsilon]
    # A threshold removes the units strictly below it: the next level up (or epsilon,
    # or just above the largest importance when forced) removes every listed unit.
    thresholds = [0.0, *levels[1:], epsilon]
    if force:
        top = levels[-1] if levels else epsilon
        thresholds = [0.0, *levels[1:], max(epsilon, top * (1 + 1e-6) + 1e-12)]
    thresholds = sorted(set(thresholds))
    cache: dict[int, float] = {}

    def cost(i: int) -> float:
        if i not in cache:
            network = shrunk_copy(model, thresholds[i], align)
            cache[i] = predict(network)
            if recheck and cache[i] > target:
                cache[i] = min(cache[i], predict(network))
        return cache[i]

    if cost(0) <= target:
        return thresholds[0], cost(0)
    hi = len(thresholds) - 1
    if cost(hi) > target:
        return thresholds[hi], cost(hi)
    lo = 0  # cost(lo) > target >= cost(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cost(mid) <= target:
            hi = mid
        else:
            lo = mid
    return thresholds[hi], cost(hi)


# Measurements of the network against a latency target: short sessions, several of
# them, the fastest median kept (TargetCost.measure).
TARGET_PROTOCOL = Protocol(warmup_runs=3, warmup_min_s=0.1, runs=15, sessions=5)


@dataclass
class TargetCost:
    """The target's cost of a network at ``shape`` (see the module docstring)."""

    kind: str  # "flops" (MACs) or "latency" (ms on the measurer's device)
    target: float
    shape: tuple[int, ...]
    measurer: object | None = None
    points: list[tuple[float, float]] = field(default_factory=list)  # (MACs, ms) measured

    def macs(self, model) -> float:
        from edgenas.hrnas.costs import count_hrnas_macs

        return float(count_hrnas_macs(model, self.shape))

    def now(self, model) -> float:
        """The cost of ``model`` as it is: MACs, or latency measured on the device (a
        reading above the target measured twice, the faster kept, as in
        :func:`select_to_target`'s ``recheck``)."""
        if self.kind == "flops":
            return self.macs(model)
        static = copy.deepcopy(model).cpu().eval()
        apply_masks(static, None)
        ms = self.measure(static)
        if ms > self.target:  # load only slows a reading: an "above" is measured again
            ms = min(ms, self.measure(static))
        self.points.append((self.macs(static), ms))
        return ms

    def measure(self, static) -> float:
        """Latency of ``static`` on the measurer's device, robust to the machine's load:
        the fastest of :data:`TARGET_PROTOCOL`'s session medians.

        Other processes only ever slow a measurement down, and pruning stops on the
        first measurement at or below the target: a median inflated by a busy moment
        reads as "still above" and costs units the budget did not ask for (runs on a
        loaded 2-core host ended 43-74% below their target with the plain median).
        """
        result = self.measurer.profile(static, [tuple(self.shape)], TARGET_PROTOCOL)
        return float(min(s.median for s in result.sessions))

    def predict(self, static) -> float:
        """The cost of a shrunk copy: its MACs, or its latency measured on the device."""
        return self.macs(static) if self.kind == "flops" else self.measure(static)

    def unit(self) -> str:
        return "ms" if self.kind == "latency" else "MACs"

    def text(self, value: float) -> str:
        """``5.00 ms`` or ``300.0M MACs``."""
        return f"{value:.2f} ms" if self.kind == "latency" else f"{count_text(value)} MACs"

    def state_dict(self) -> dict:
        return {"points": [list(p) for p in self.points]}

    def load_state_dict(self, state: dict) -> None:
        self.points = [tuple(p) for p in state.get("points", [])]


def count_text(value: float) -> str:
    """``1.2G``, ``300.0M``, ``15.3k`` or ``12``."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.{2 if suffix == 'G' else 1}f}{suffix}"
    return f"{value:g}"


def check_reachable(cost: TargetCost, model, align: int) -> tuple[float, float]:
    """``(supernet cost, smallest network's cost)``; a target the supernet already meets
    or the smallest network the supernet can become cannot reach is a one-line
    :class:`UserError` (the flag's name and both costs in it)."""
    flag = "--target-latency" if cost.kind == "latency" else "--target-flops"
    full = cost.now(model)
    smallest = shrunk_copy(model, float("inf"), align)
    least = cost.now(smallest)
    where = f"at 1x{'x'.join(map(str, cost.shape[1:]))}"
    if full <= cost.target:
        raise UserError(
            f"{flag} {cost.text(cost.target)} is already met by the unshrunk supernet "
            f"({cost.text(full)} {where}); nothing to shrink: use --lambda, a smaller "
            "target, or a wider supernet"
        )
    if least > cost.target:
        raise UserError(
            f"{flag} {cost.text(cost.target)} cannot be reached: the smallest network this "
            f"supernet can become costs {cost.text(least)} {where}; raise the target or "
            "narrow the supernet (--widths, --branches, --tokens)"
        )
    return full, least
