"""Noise-aware verdicts: is the candidate really slower (or faster) than the baseline?

A case regressed when both hold:

- size: the median of its session medians is more than ``threshold`` above the
  baseline's (the figure people read and set budgets on), and
- reality: the session medians of the two sides differ by a two-sided Mann-Whitney U
  test at level ``alpha`` (as asv does), so one unlucky session cannot fail a build.

Improvements are the mirror image. Anything else is "within noise": a small change, or a
large one the sessions do not support. The functions here are pure (no measuring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgenas.bench.results import BenchEntry, BenchFile
from edgenas.errors import UserError

REGRESSED = "regressed"
IMPROVED = "improved"
NOISE = "within noise"
NEW = "new"
VERDICTS = (REGRESSED, IMPROVED, NOISE, NEW)

# What makes two measurements comparable: same device and same runtime setup.
DEVICE_IDENTITY = (
    "cpu",
    "cpu_signature",
    "machine",
    "usable_cores",
    "manufacturer",
    "model",
    "soc",
    "abi",
)
# Facts added after results were first stored: compared only when both results record
# them, so a baseline from an older edgenas is still comparable.
DEVICE_IDENTITY_OPTIONAL = ("cpu_signature",)
RUNTIME_IDENTITY = ("name", "version", "provider", "threads", "precision")


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided Mann-Whitney U test p-value of samples ``a`` and ``b``.

    Exact for small samples without ties, normal approximation with tie correction
    otherwise (scipy's ``method="auto"``). Identical samples give p = 1.
    """
    from scipy.stats import mannwhitneyu

    if len(a) < 1 or len(b) < 1:
        raise ValueError("the U test needs at least one value per side")
    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue)


def smallest_p(n: int, m: int) -> float:
    """The smallest two-sided p-value an exact U test of n and m values can give."""
    return min(1.0, 2.0 / math.comb(n + m, n))


@dataclass(frozen=True)
class Comparison:
    """The verdict on one case and device."""

    case: str
    device: str
    verdict: str
    baseline_ms: float | None
    now_ms: float
    change: float | None  # now / baseline - 1
    p_value: float | None
    threshold: float
    alpha: float
    reason: str
    sessions: tuple[int, int] = (0, 0)  # baseline, now

    @property
    def failed(self) -> bool:
        return self.verdict == REGRESSED

    def to_dict(self) -> dict:
        return {
            "case": self.case,
            "device": self.device,
            "verdict": self.verdict,
            "baseline_ms": self.baseline_ms,
            "now_ms": self.now_ms,
            "change": self.change,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "reason": self.reason,
        }


def judge(
    base_medians: list[float],
    now_medians: list[float],
    threshold: float,
    alpha: float,
) -> tuple[str, float, float, str]:
    """Verdict, change, p-value and a one-line reason from two lists of session medians."""
    import statistics

    base = statistics.median(base_medians)
    now = statistics.median(now_medians)
    change = now / base - 1 if base > 0 else math.inf
    p = mann_whitney_p(base_medians, now_medians)
    real = p < alpha
    big = abs(change) > threshold
    if big and real:
        verdict = REGRESSED if change > 0 else IMPROVED
        reason = f"{change:+.1%} beyond the {threshold:.0%} threshold, p={p:.3g} < {alpha:g}"
    elif big:
        verdict = NOISE
        reason = (
            f"{change:+.1%} beyond the {threshold:.0%} threshold but not significant "
            f"(p={p:.3g} >= {alpha:g}): the sessions overlap"
        )
    else:
        verdict = NOISE
        reason = f"{change:+.1%} within the {threshold:.0%} threshold"
    return verdict, change, p, reason


def identity(result) -> dict:
    """The device and runtime facts that must match for two results to be compared."""
    device = result.device
    facts = device.get("facts") or {}
    ident = {"device": device.get("name"), "kind": device.get("kind")}
    ident.update({f"device.{k}": facts[k] for k in DEVICE_IDENTITY if k in facts})
    ident.update(
        {f"runtime.{k}": result.runtime[k] for k in RUNTIME_IDENTITY if k in result.runtime}
    )
    return ident


def identity_mismatch(base, now) -> str | None:
    """One line naming what differs between two results' device/runtime, or None."""
    a, b = identity(base), identity(now)
    optional = {f"device.{k}" for k in DEVICE_IDENTITY_OPTIONAL}
    diffs = [
        f"{k} {a.get(k)!r} -> {b.get(k)!r}"
        for k in dict.fromkeys([*a, *b])
        if a.get(k) != b.get(k) and not (k in optional and (a.get(k) is None or b.get(k) is None))
    ]
    return "; ".join(diffs) if diffs else None


def compare(
    results: BenchFile,
    baseline: BenchFile | None = None,
    *,
    threshold: float | None = None,
    alpha: float | None = None,
    force: bool = False,
) -> tuple[list[Comparison], list[str]]:
    """Judge every entry of ``results`` against ``baseline`` (or its own A/B baseline).

    ``threshold`` replaces the spec's default threshold (a case's own threshold is kept);
    ``alpha`` replaces the spec's. Returns the comparisons and notes (warnings for the
    report). Raises UserError when there is nothing to compare with, when the two sides
    come from different devices or runtimes (unless ``force``), or when the sessions are
    too few for the U test to ever reach ``alpha``.
    """
    alpha = results.alpha if alpha is None else alpha
    default = results.threshold if threshold is None else threshold
    notes: list[str] = []
    if baseline is None and not results.is_ab:
        raise UserError(
            "the results carry no A/B baseline; give --baseline FILE "
            "(from `edgenas bench baseline`) or measure with `edgenas bench run --ab BASE_SPEC`"
        )
    base_by_key = {} if baseline is None else {e.key: e for e in baseline.entries}
    comparisons = []
    for entry in results.entries:
        base_result = _baseline_for(entry, baseline, base_by_key)
        limit = entry.threshold if entry.threshold is not None else default
        now_medians = [s.median for s in entry.result.sessions]
        if base_result is None:
            comparisons.append(
                Comparison(
                    entry.case,
                    entry.device,
                    NEW,
                    None,
                    entry.result.median_ms,
                    None,
                    None,
                    limit,
                    alpha,
                    "no baseline for this case and device",
                    (0, len(now_medians)),
                )
            )
            continue
        mismatch = identity_mismatch(base_result, entry.result)
        if mismatch:
            where = f"{entry.case} on {entry.device}"
            if not force:
                raise UserError(
                    f"{where}: baseline and results come from different devices or runtimes "
                    f"({mismatch}); re-measure the baseline on this machine (`bench run --ab`) "
                    "or compare anyway with --force"
                )
            notes.append(f"{where}: compared across devices/runtimes (--force): {mismatch}")
        base_medians = [s.median for s in base_result.sessions]
        floor = smallest_p(len(base_medians), len(now_medians))
        if floor >= alpha:
            raise UserError(
                f"{entry.case} on {entry.device}: {len(base_medians)} baseline and "
                f"{len(now_medians)} new sessions can never reach p < {alpha:g}; "
                "measure at least 4 sessions on each side (10 recommended)"
            )
        verdict, change, p, reason = judge(base_medians, now_medians, limit, alpha)
        comparisons.append(
            Comparison(
                entry.case, entry.device, verdict, base_result.median_ms,
                entry.result.median_ms, change, p, limit, alpha, reason,
                (len(base_medians), len(now_medians)),
            )
        )  # fmt: skip
    if baseline is not None:
        measured = {e.key for e in results.entries}
        for key in base_by_key:
            if key not in measured:
                notes.append(f"{key[0]} on {key[1]}: in the baseline but not measured now")
    return comparisons, notes


def _baseline_for(entry: BenchEntry, baseline: BenchFile | None, by_key: dict):
    if baseline is None:
        return entry.ab_baseline
    found = by_key.get(entry.key)
    return None if found is None else found.result
