"""Summary statistics of latency samples (pure functions on lists of milliseconds)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

# Largest relative spread of the session medians ((max - min) / median) that a
# measurement may show before the result warns that its sessions disagree. It is the
# bench gate's default regression threshold (edgenas.bench.spec.DEFAULT_THRESHOLD):
# sessions that disagree by more than that cannot tell a 10% regression from noise.
SPREAD_TOLERANCE = 0.10


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass
class SessionTimings:
    """One measurement session: raw samples (when the runner gives them) and summary.

    Times are milliseconds. ``mad`` (median absolute deviation) and ``cv`` (standard
    deviation / mean) are None when the runner reports neither samples nor a deviation.

    Beside the timed runs, a session records what a deployment pays once:
    ``load_ms`` (creating the runtime session / compiling the model), ``first_ms``
    (the first inference after that) and ``peak_memory_mb`` with ``memory_source``
    saying what that figure is (or, when it is None, why it is unknown).
    ``throughput_ips`` is timed runs per second of the timed loop's wall time.
    """

    n: int
    median: float
    p90: float | None
    min: float
    mean: float
    mad: float | None
    cv: float | None
    samples_ms: list[float] = field(default_factory=list)
    warmup_runs: int = 0
    source: str = "samples"
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    throughput_ips: float | None = None
    load_ms: float | None = None
    first_ms: float | None = None
    peak_memory_mb: float | None = None
    memory_source: str | None = None

    @classmethod
    def from_samples(
        cls, samples_ms: list[float], warmup_runs: int = 0, wall_s: float | None = None
    ) -> SessionTimings:
        """Summarise raw samples; ``wall_s``: wall time of the timed loop (throughput)."""
        if not samples_ms:
            raise ValueError("a session needs at least one sample")
        med = statistics.median(samples_ms)
        mean = statistics.fmean(samples_ms)
        std = statistics.pstdev(samples_ms) if len(samples_ms) > 1 else 0.0
        return cls(
            n=len(samples_ms),
            median=med,
            p90=percentile(samples_ms, 90),
            min=min(samples_ms),
            mean=mean,
            mad=statistics.median(abs(s - med) for s in samples_ms),
            cv=std / mean if mean > 0 else None,
            samples_ms=list(samples_ms),
            warmup_runs=warmup_runs,
            p95=percentile(samples_ms, 95),
            p99=percentile(samples_ms, 99),
            max=max(samples_ms),
            throughput_ips=throughput(len(samples_ms), wall_s, mean),
        )

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "median_ms": self.median,
            "p90_ms": self.p90,
            "p95_ms": self.p95,
            "p99_ms": self.p99,
            "max_ms": self.max,
            "min_ms": self.min,
            "mean_ms": self.mean,
            "mad_ms": self.mad,
            "cv": self.cv,
            "throughput_ips": self.throughput_ips,
            "load_ms": self.load_ms,
            "first_inference_ms": self.first_ms,
            "peak_memory_mb": self.peak_memory_mb,
            "memory_source": self.memory_source,
            "warmup_runs": self.warmup_runs,
            "source": self.source,
            "samples_ms": self.samples_ms,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SessionTimings:
        """Read a session back; fields added after the first v1 files default to None."""
        return cls(
            n=data["n"],
            median=data["median_ms"],
            p90=data.get("p90_ms"),
            min=data["min_ms"],
            mean=data["mean_ms"],
            mad=data.get("mad_ms"),
            cv=data.get("cv"),
            samples_ms=list(data.get("samples_ms", [])),
            warmup_runs=data.get("warmup_runs", 0),
            source=data.get("source", "samples"),
            p95=data.get("p95_ms"),
            p99=data.get("p99_ms"),
            max=data.get("max_ms"),
            throughput_ips=data.get("throughput_ips"),
            load_ms=data.get("load_ms"),
            first_ms=data.get("first_inference_ms"),
            peak_memory_mb=data.get("peak_memory_mb"),
            memory_source=data.get("memory_source"),
        )


def throughput(runs: int, wall_s: float | None, mean_ms: float) -> float | None:
    """Inferences per second: runs over the loop's wall time, else 1000 / mean."""
    if wall_s is not None and wall_s > 0:
        return runs / wall_s
    return 1000.0 / mean_ms if mean_ms > 0 else None


def _median_of(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def spread_warning(spread: float, tolerance: float, medians: list[float]) -> str | None:
    """The warning a result carries when its sessions disagree beyond ``tolerance``."""
    if len(medians) < 2 or spread <= tolerance:
        return None
    shown = ", ".join(f"{m:.3g}" for m in medians)
    return (
        f"session medians spread {spread:.0%} (tolerance {tolerance:.0%}): {shown} ms; "
        "the machine was busy or the device throttled; rerun on an idle device, "
        "with more --runs or a --cooldown"
    )


def overall(sessions: list[SessionTimings], tolerance: float = SPREAD_TOLERANCE) -> dict:
    """Overall figures of a measurement.

    The headline ``median_ms`` is the median of the session medians, and
    ``session_spread`` their relative spread. Percentiles, max, mean and throughput
    come from the samples of all sessions pooled; when a session has no raw samples
    (a runner that prints a summary only) the pooled percentiles are None and
    ``max_ms`` is the largest session max. Load and first-inference times are the
    median over sessions, peak memory the largest session's.
    """
    medians = [s.median for s in sessions]
    med = statistics.median(medians)
    spread = (max(medians) - min(medians)) / med if med > 0 else 0.0
    pooled = [x for s in sessions for x in s.samples_ms]
    complete = bool(pooled) and all(len(s.samples_ms) == s.n for s in sessions)
    maxes = [s.max for s in sessions if s.max is not None]
    walls = [s.n / s.throughput_ips for s in sessions if s.throughput_ips]
    figures: dict = {
        "median_ms": med,
        "session_medians_ms": medians,
        "session_spread": spread,
        "spread_tolerance": tolerance,
        "min_ms": min(s.min for s in sessions),
        "pooled_samples": len(pooled) if complete else 0,
    }
    if complete:
        mean = statistics.fmean(pooled)
        figures.update(
            {f"p{q}_ms": percentile(pooled, q) for q in (50, 90, 95, 99)},
            max_ms=max(pooled),
            mean_ms=mean,
        )
    else:
        mean = statistics.fmean(s.mean for s in sessions)
        figures.update(
            {f"p{q}_ms": None for q in (50, 90, 95, 99)},
            max_ms=max(maxes) if maxes else None,
            mean_ms=mean,
        )
    runs = sum(s.n for s in sessions)
    figures["throughput_ips"] = (
        throughput(runs, sum(walls), mean) if len(walls) == len(sessions) else None
    )
    figures["load_ms"] = _median_of([s.load_ms for s in sessions])
    figures["first_inference_ms"] = _median_of([s.first_ms for s in sessions])
    memory = [s for s in sessions if s.peak_memory_mb is not None]
    peak = max(memory, key=lambda s: s.peak_memory_mb) if memory else None
    figures["peak_memory_mb"] = peak.peak_memory_mb if peak else None
    figures["memory_source"] = (
        peak.memory_source if peak else next((s.memory_source for s in sessions), None)
    )
    warning = spread_warning(spread, tolerance, medians)
    figures["warnings"] = [warning] if warning else []
    return figures
