"""Summary statistics of latency samples (pure functions on lists of milliseconds)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


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

    @classmethod
    def from_samples(cls, samples_ms: list[float], warmup_runs: int = 0) -> SessionTimings:
        """Summarise raw samples."""
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
        )

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "median_ms": self.median,
            "p90_ms": self.p90,
            "min_ms": self.min,
            "mean_ms": self.mean,
            "mad_ms": self.mad,
            "cv": self.cv,
            "warmup_runs": self.warmup_runs,
            "source": self.source,
            "samples_ms": self.samples_ms,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SessionTimings:
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
        )


def overall(sessions: list[SessionTimings]) -> dict:
    """Overall figures: median of the session medians and their relative spread."""
    medians = [s.median for s in sessions]
    med = statistics.median(medians)
    spread = (max(medians) - min(medians)) / med if med > 0 else 0.0
    return {
        "median_ms": med,
        "session_medians_ms": medians,
        "session_spread": spread,
        "min_ms": min(s.min for s in sessions),
    }
