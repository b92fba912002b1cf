"""The bench file (schema ``edgenas.bench/v1``): one ``edgenas.latency/v1`` result per case
and device, the thresholds they are judged by, and a summary.

The same format serves as results and as baseline (``kind`` says which it was recorded
as); in A/B mode each entry also carries the baseline model measured in the same job,
its sessions interleaved with the candidate's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from edgenas.devices.result import LatencyResult, write_atomic
from edgenas.errors import UserError

SCHEMA = "edgenas.bench/v1"
KINDS = ("results", "baseline")


@dataclass
class BenchEntry:
    """One case measured on one device (and, in A/B mode, its baseline beside it)."""

    case: str
    device: str
    threshold: float | None
    source: dict
    result: LatencyResult
    ab_baseline: LatencyResult | None = None
    ab_source: dict | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.case, self.device)

    def to_dict(self) -> dict:
        data = {
            "case": self.case,
            "device": self.device,
            "threshold": self.threshold,
            "source": self.source,
            "result": self.result.to_dict(),
        }
        if self.ab_baseline is not None:
            data["ab_baseline"] = {
                "source": self.ab_source,
                "result": self.ab_baseline.to_dict(),
            }
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BenchEntry:
        ab = data.get("ab_baseline")
        return cls(
            case=data["case"],
            device=data["device"],
            threshold=data.get("threshold"),
            source=data.get("source", {}),
            result=LatencyResult.from_dict(data["result"]),
            ab_baseline=None if ab is None else LatencyResult.from_dict(ab["result"]),
            ab_source=None if ab is None else ab.get("source"),
        )


@dataclass
class BenchFile:
    """Everything ``bench run`` / ``bench baseline`` measured."""

    kind: str
    spec: dict
    threshold: float
    alpha: float
    entries: list[BenchEntry]
    environment: dict = field(default_factory=dict)

    @property
    def is_ab(self) -> bool:
        return any(e.ab_baseline is not None for e in self.entries)

    def summary(self) -> dict:
        """Headline figures per case and device (the full results are beside it)."""
        rows = []
        for e in self.entries:
            row = {
                "case": e.case,
                "device": e.device,
                "median_ms": e.result.median_ms,
                "sessions": len(e.result.sessions),
            }
            if e.ab_baseline is not None:
                row["ab_baseline_median_ms"] = e.ab_baseline.median_ms
                row["change"] = e.result.median_ms / e.ab_baseline.median_ms - 1
            rows.append(row)
        return {"entries": len(rows), "ab": self.is_ab, "cases": rows}

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "spec": self.spec,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "environment": self.environment,
            "summary": self.summary(),
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self) -> str:
        """The file's text."""
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def write(self, path: str | Path) -> None:
        """Write atomically (a failed run leaves no file)."""
        write_atomic(path, self.to_json())

    @classmethod
    def from_dict(cls, data: dict) -> BenchFile:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else None
            hint = " (a single `edgenas profile --json` result?)" if found else ""
            raise ValueError(f"not an {SCHEMA} file (schema={found!r}){hint}")
        check_bench_data(data)
        return cls(
            kind=data.get("kind", "results"),
            spec=data.get("spec", {}),
            threshold=float(data["threshold"]),
            alpha=float(data["alpha"]),
            entries=[BenchEntry.from_dict(e) for e in data["entries"]],
            environment=data.get("environment", {}),
        )


def _number(value, where: str, *, minimum: float = 0.0, optional: bool = False) -> None:
    """``value`` must be a finite number >= ``minimum`` (or None when ``optional``)."""
    if value is None and optional:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{where} must be a number >= {minimum:g}, got {value!r}")


def _table(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object, got {value!r:.40}")
    return value


def _check_result(result, where: str) -> None:
    """The parts of an ``edgenas.latency/v1`` result that ``bench check`` reads."""
    result = _table(result, where)
    for key in ("device", "runtime", "timings"):
        _table(result.get(key), f"{where}.{key}")
    sessions = result["timings"].get("sessions")
    if not isinstance(sessions, list) or not sessions:
        raise ValueError(f"{where}.timings.sessions must be a non-empty list, got {sessions!r:.40}")
    for index, session in enumerate(sessions):
        at = f"{where}.timings.sessions[{index}]"
        session = _table(session, at)
        _number(session.get("n"), f"{at}.n", minimum=1)
        for key in ("median_ms", "min_ms", "mean_ms"):
            _number(session.get(key), f"{at}.{key}")
        for key in ("p90_ms", "mad_ms", "cv"):
            _number(session.get(key), f"{at}.{key}", optional=True)


def check_bench_data(data: dict) -> None:
    """Every field ``bench check`` reads has the right type and a sensible value: a
    hand-edited or damaged file is refused naming the field (``entries[0].result.timings
    .sessions[2].median_ms must be a number >= 0, got '0.28'``) instead of failing in
    the statistics or passing with NaN."""
    _number(data.get("threshold"), "threshold")
    alpha = data.get("alpha")
    _number(alpha, "alpha")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise ValueError(f"entries must be a list, got {entries!r:.40}")
    for index, entry in enumerate(entries):
        where = f"entries[{index}]"
        entry = _table(entry, where)
        for key in ("case", "device"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ValueError(f"{where}.{key} must be a name, got {entry.get(key)!r}")
        _number(entry.get("threshold"), f"{where}.threshold", optional=True)
        _check_result(entry.get("result"), f"{where}.result")
        if entry.get("ab_baseline") is not None:
            ab = _table(entry["ab_baseline"], f"{where}.ab_baseline")
            _check_result(ab.get("result"), f"{where}.ab_baseline.result")


def load_bench_file(path: str | Path, role: str = "results") -> BenchFile:
    """Read a results/baseline file; every problem is one UserError line naming the file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{role} file {path} is a folder; give the JSON file `edgenas bench` wrote")
    if not path.is_file():
        raise UserError(f"{role} file {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{role} file {path} is not JSON ({err})") from None
    try:
        return BenchFile.from_dict(data)
    except ValueError as err:
        raise UserError(f"{role} file {path}: {err}") from None
    except (KeyError, TypeError) as err:
        raise UserError(f"{role} file {path} is incomplete or damaged ({err!r})") from None
