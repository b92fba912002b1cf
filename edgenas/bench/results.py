"""The bench file (schema ``edgenas.bench/v1``): one ``edgenas.latency/v1`` result per case
and device, the thresholds they are judged by, and a summary.

The same format serves as results and as baseline (``kind`` says which it was recorded
as); in A/B mode each entry also carries the baseline model measured in the same job,
its sessions interleaved with the candidate's.
"""

from __future__ import annotations

import json
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

    def write(self, path: str | Path) -> None:
        """Write atomically (a failed run leaves no file)."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> BenchFile:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else None
            hint = " (a single `edgenas profile --json` result?)" if found else ""
            raise ValueError(f"not an {SCHEMA} file (schema={found!r}){hint}")
        return cls(
            kind=data.get("kind", "results"),
            spec=data.get("spec", {}),
            threshold=float(data["threshold"]),
            alpha=float(data["alpha"]),
            entries=[BenchEntry.from_dict(e) for e in data["entries"]],
            environment=data.get("environment", {}),
        )


def load_bench_file(path: str | Path, role: str = "results") -> BenchFile:
    """Read a results/baseline file; every problem is one UserError line naming the file."""
    path = Path(path)
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
