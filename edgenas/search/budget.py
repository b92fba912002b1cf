"""The wall-time budget of a search (`edgenas search --budget 20m`).

A budget covers the whole run. It is split, before any work, into

- the final training of the best network (``final_seconds``) and the same again for
  every learned reference baseline trained beside it for the report,
- a reserve for export, latency measurement, samples and the report,
- and the search itself (pool scoring and the tabu searches): the rest.

The tabu searches share the search time: each parent may use the time left divided by
the parents left, so a parent that stops early (patience, no new child) leaves its time
to the next ones. A candidate is only started when the time it is expected to take (the
median of the candidates trained so far) fits before the parent's deadline, so the
search ends close to its share and the final training starts on time.

Everything here is pure arithmetic over numbers the caller measures.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

# Reserve for the steps after the final training: ONNX export and verification, latency
# measurement of the final model and each baseline, samples, plots and the report.
RESERVE_SHARE = 0.04
RESERVE_MIN_SECONDS = 20.0
# The search must keep at least this share of the budget, or the budget is refused.
MIN_SEARCH_SHARE = 0.1
# With a budget and no proxy budget given, the proxy training is sized so that about
# this many candidates fit in the search time, each also costing about
# CANDIDATE_OVERHEAD_SECONDS for validation, latency measurement and scoring its
# children. Measured on T91 (docs/search.md): at 6 s of training every random network
# is still at bilinear quality; from about 18 s the ones that train pull away.
PLANNED_CANDIDATES = 20
CANDIDATE_OVERHEAD_SECONDS = 10.0
PROXY_SECONDS_RANGE = (6.0, 120.0)


@dataclass(frozen=True)
class BudgetPlan:
    """How a run's budget is spent, in seconds."""

    total: float
    final: float
    learned_baselines: int
    reserve: float

    @property
    def final_phase(self) -> float:
        """Final training plus the baselines trained with the same budget."""
        return self.final * (1 + self.learned_baselines)

    @property
    def search(self) -> float:
        """Pool scoring and tabu search."""
        return self.total - self.final_phase - self.reserve

    @property
    def proxy_seconds(self) -> float:
        """Proxy training per candidate when none is given (see PLANNED_CANDIDATES)."""
        low, high = PROXY_SECONDS_RANGE
        share = self.search / PLANNED_CANDIDATES - CANDIDATE_OVERHEAD_SECONDS
        return round(min(high, max(low, share)), 1)

    def describe(self) -> str:
        """One line for the log: where the time goes."""
        baselines = (
            f" + {self.learned_baselines} baseline(s) x {self.final:.0f} s"
            if self.learned_baselines
            else ""
        )
        return (
            f"budget {self.total:.0f} s: search {self.search:.0f} s, final training "
            f"{self.final:.0f} s{baselines}, export and report {self.reserve:.0f} s"
        )


def plan_budget(total: float, final: float, learned_baselines: int) -> BudgetPlan:
    """Split ``total`` seconds; ``ValueError`` (naming what to change) when the final
    trainings leave the search less than :data:`MIN_SEARCH_SHARE` of it."""
    reserve = max(RESERVE_MIN_SECONDS, RESERVE_SHARE * total)
    plan = BudgetPlan(total, final, learned_baselines, reserve)
    if plan.search < MIN_SEARCH_SHARE * total:
        trainings = 1 + learned_baselines
        raise ValueError(
            f"a budget of {total:g} s leaves {max(plan.search, 0):.0f} s to search after "
            f"{trainings} final training(s) of {final:g} s and {reserve:.0f} s for the "
            "report: give a larger --budget, a smaller --final-seconds or fewer --baselines"
        )
    return plan


def parent_deadline(now: float, search_deadline: float, parents_left: int) -> float:
    """When the current parent's tabu search must stop: an equal share of the time left."""
    return now + max(0.0, search_deadline - now) / max(1, parents_left)


def expected_candidate_seconds(past: list[float], fallback: float) -> float:
    """What the next candidate will take: the median of the past ones, else ``fallback``."""
    return statistics.median(past) if past else fallback


def spent_before(event_times: list[tuple[str, float]]) -> float:
    """Seconds a resumed run already spent: the sum over its earlier sessions (split at
    ``run_resumed`` events) of last event time minus first, not the gaps between them."""
    spent, first, last = 0.0, None, None
    for kind, ts in event_times:
        if kind == "run_resumed":
            if first is not None:
                spent += last - first
            first = last = None
            continue
        first = ts if first is None else first
        last = ts
    if first is not None:
        spent += last - first
    return spent
