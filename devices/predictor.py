"""Latency tables and predictors of one device (and thread count), stored as JSON.

Two predictors live in a table:

* the kernel predictor (host runtimes): profiled kernel samples, the whole networks
  they came from and the overhead law; the per-kernel-type models of
  :mod:`edgenas.devices.kernels` are fitted from the samples when first needed;
* the parts table (nn-Meter style, kernel = searched block): keys (device-independent
  strings built by the caller: block spec, input H x W x C, stride ...) mapped to
  latencies measured alone, and

      predicted = a * sum(part latencies) + b + c * concat_megaelements

  where ``a, b, c`` (the overhead model) are fitted by least squares on whole networks
  measured during calibration. It grows lazily: a key seen for the first time is
  measured once and kept.

This module knows nothing about genotypes; :mod:`edgenas.latency_table` builds the keys,
the per-part ONNX files and the kernel samples.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgenas.devices.kernels import KernelModel, KernelOverhead, NetworkRecord
from edgenas.devices.result import write_atomic

from edgenas.errors import UserError

TABLE_SCHEMA = "edgenas.latency-table/v1"


def cache_dir() -> Path:
    """``EDGENAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgenas``, else ``~/.cache/edgenas``."""
    if os.environ.get("EDGENAS_CACHE_DIR"):
        return Path(os.environ["EDGENAS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgenas"


def default_table_path(device: str, threads: int | None) -> Path:
    """One table file per device and thread count."""
    return cache_dir() / "latency" / f"{device}-t{threads or 'default'}.json"


def table_threads(entry_threads: int | None, threads: int | None) -> int | None:
    """The thread count a table is kept under: ``threads`` when given, else the device
    entry's. `edgenas predict`, calibration and the search's measurer all resolve it
    here, so the same device and threads always name the same table file."""
    return threads if threads is not None else entry_threads


@dataclass
class Calibration:
    """One whole network measured during calibration."""

    name: str
    measured_ms: float
    parts_ms: float
    concat_melems: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class OverheadModel:
    """``predicted = scale * parts_ms + offset_ms + concat_ms_per_melem * concat_melems``."""

    scale: float = 1.0
    offset_ms: float = 0.0
    concat_ms_per_melem: float = 0.0
    fitted_on: int = 0

    def predict(self, parts_ms: float, concat_melems: float) -> float:
        return self.scale * parts_ms + self.offset_ms + self.concat_ms_per_melem * concat_melems

    @classmethod
    def fit(cls, records: list[Calibration]) -> OverheadModel:
        """Least squares on relative error (each row divided by the measurement), so a
        small network's 10% counts as much as a large one's. With fewer than 4 records
        only the offset is fitted."""
        import numpy as np

        if not records:
            return cls()
        y = np.array([r.measured_ms for r in records])
        parts = np.array([r.parts_ms for r in records])
        concat = np.array([r.concat_melems for r in records])
        weights = 1.0 / y
        if len(records) < 4:
            offset = float(np.median(y - parts))
            return cls(1.0, offset, 0.0, len(records))
        design = np.stack([parts, np.ones_like(parts), concat], axis=1) * weights[:, None]
        coef, *_ = np.linalg.lstsq(design, y * weights, rcond=None)
        return cls(float(coef[0]), float(coef[1]), float(coef[2]), len(records))


@dataclass
class LatencyTable:
    """Measured latencies of network parts on one device, plus the overhead model."""

    device: str
    threads: int | None
    entries: dict[str, float] = field(default_factory=dict)
    calibration: list[Calibration] = field(default_factory=list)
    overhead: OverheadModel = field(default_factory=OverheadModel)
    runtime: dict = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    path: Path | None = None
    # The kernel predictor (see edgenas.devices.kernels): profiled kernel samples
    # ``[op, features, ms]``, the whole networks they came from, and the overhead law.
    kernel_samples: list = field(default_factory=list)
    kernel_records: list[NetworkRecord] = field(default_factory=list)
    kernel_overhead: KernelOverhead = field(default_factory=KernelOverhead)
    _kernel_model: KernelModel | None = field(default=None, repr=False, compare=False)

    @property
    def has_kernel_model(self) -> bool:
        """True once a kernel calibration has run (then predictions use kernels)."""
        return bool(self.kernel_records and self.kernel_samples)

    def kernel_model(self) -> KernelModel:
        """The per-kernel-type regressors, fitted on first use after a change."""
        if self._kernel_model is None:
            samples = [(str(op), list(f), float(ms)) for op, f, ms in self.kernel_samples]
            self._kernel_model = KernelModel(samples)
        return self._kernel_model

    def add_kernels(self, samples: list, record: NetworkRecord | None = None) -> None:
        """Keep new kernel samples (and a whole-network record); the model refits lazily."""
        self.kernel_samples.extend(samples)
        if record is not None:
            self.kernel_records.append(record)
        self._kernel_model = None

    def refit_kernels(self) -> KernelOverhead:
        self.kernel_overhead = KernelOverhead.fit(self.kernel_records)
        return self.kernel_overhead

    def predict(self, keys: list[str], concat_melems: float) -> float:
        """Predicted latency (ms) of a network made of ``keys``; KeyError if one is missing."""
        missing = [k for k in keys if k not in self.entries]
        if missing:
            raise KeyError(missing[0])
        return self.overhead.predict(sum(self.entries[k] for k in keys), concat_melems)

    def parts_ms(self, keys: list[str]) -> float:
        return sum(self.entries[k] for k in keys)

    def refit(self) -> OverheadModel:
        self.overhead = OverheadModel.fit(self.calibration)
        return self.overhead

    def to_dict(self) -> dict:
        return {
            "schema": TABLE_SCHEMA,
            "device": self.device,
            "threads": self.threads,
            "runtime": self.runtime,
            "protocol": self.protocol,
            "updated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "overhead": dict(self.overhead.__dict__),
            "calibration": [c.to_dict() for c in self.calibration],
            "entries": self.entries,
            "kernel_overhead": dict(self.kernel_overhead.__dict__),
            "kernel_records": [r.to_dict() for r in self.kernel_records],
            "kernel_samples": self.kernel_samples,
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically (to ``path`` or where it was loaded from)."""
        target = Path(path or self.path or default_table_path(self.device, self.threads))
        write_atomic(target, json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n")
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table file; anything that is not a well-formed table is one line."""
        path = Path(path)
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as err:  # ValueError: bad JSON or bytes not UTF-8
            raise UserError(
                f"cannot read latency table {path} ({err}); delete it and recalibrate"
            ) from None
        if not isinstance(data, dict) or data.get("schema") != TABLE_SCHEMA:
            raise UserError(f"{path} is not an {TABLE_SCHEMA} file")
        try:
            entries = {str(k): float(v) for k, v in data["entries"].items()}
            table = cls(
                device=str(data["device"]),
                threads=data.get("threads"),
                entries=entries,
                calibration=[Calibration(**c) for c in data.get("calibration", [])],
                overhead=OverheadModel(**data.get("overhead", {})),
                runtime=dict(data.get("runtime", {})),
                protocol=dict(data.get("protocol", {})),
                path=path,
                kernel_samples=[
                    [str(op), [float(v) for v in f], float(ms)]
                    for op, f, ms in data.get("kernel_samples", [])
                ],
                kernel_records=[NetworkRecord(**r) for r in data.get("kernel_records", [])],
                kernel_overhead=KernelOverhead(**data.get("kernel_overhead", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise UserError(
                f"latency table {path} is damaged ({type(err).__name__}: {err}); delete it "
                "and recalibrate"
            ) from None
        if not all(math.isfinite(v) and v >= 0 for v in entries.values()):
            raise UserError(
                f"latency table {path} holds negative or non-finite times; delete it and "
                "recalibrate"
            )
        return table

    @classmethod
    def open(cls, device: str, threads: int | None, path: str | Path | None = None) -> LatencyTable:
        """Load the device's table, or start an empty one (saved on first change)."""
        target = Path(path) if path else default_table_path(device, threads)
        if target.is_file():
            table = cls.load(target)
            if table.device != device or table.threads != threads:
                raise UserError(
                    f"{target} holds a table for {table.device} with {table.threads} thread(s), "
                    f"not {device} with {threads}"
                )
            return table
        return cls(device=device, threads=threads, path=target)


def within(predicted: list[float], measured: list[float], tolerance: float = 0.10) -> float:
    """Share of predictions within ``tolerance`` (relative) of the measurement."""
    hits = sum(abs(p - m) <= tolerance * m for p, m in zip(predicted, measured, strict=True))
    return hits / len(measured)


def mape(predicted: list[float], measured: list[float]) -> float:
    """Mean absolute percentage error, as a fraction."""
    return sum(abs(p - m) / m for p, m in zip(predicted, measured, strict=True)) / len(measured)


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b rank correlation (ties handled), O(n^2) for small n."""
    n = len(a)
    concordant = discordant = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denom = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return (concordant - discordant) / denom if denom else 0.0


def accuracy_report(predicted: list[float], measured: list[float]) -> dict:
    """within-10% share, within-5% share, MAPE and Kendall tau in one dict."""
    return {
        "n": len(measured),
        "within_10pct": within(predicted, measured, 0.10),
        "within_5pct": within(predicted, measured, 0.05),
        "mape": mape(predicted, measured),
        "kendall_tau": kendall_tau(predicted, measured),
    }
