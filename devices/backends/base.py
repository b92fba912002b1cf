"""The backend interface shared by host, OpenVINO and Android backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from edgenas.devices.catalog import DeviceEntry
from edgenas.devices.modelinfo import ModelInfo
from edgenas.devices.protocol import Protocol
from edgenas.devices.result import LayerTime
from edgenas.devices.stats import SessionTimings


@dataclass(frozen=True)
class Availability:
    """Usable now or not, and one line saying why / what to do."""

    usable: bool
    reason: str


class Backend(ABC):
    """Measure ONNX models on one device.

    Call order: ``prepare(model)`` once, ``measure(protocol)`` once per session,
    optionally ``layers(runs)``, then ``close()``. ``runtime()`` and ``facts()`` may be
    called after ``prepare``.
    """

    device_kind: str = "host"

    def __init__(
        self, entry: DeviceEntry, threads: int | None = None, precision: str = "fp32"
    ) -> None:
        self.entry = entry
        self.threads = threads if threads is not None else entry.threads
        # The precision asked for (edgenas.devices.precision.PRECISIONS). A quantized
        # model runs int8 whatever is asked; fp16 is a runtime setting (OpenVINO).
        self.precision = precision

    @abstractmethod
    def availability(self) -> Availability:
        """Whether this device can be used now (fast; never raises for absence)."""

    @abstractmethod
    def facts(self) -> dict:
        """Live facts about the device (CPU, OS, governor, temperature ...)."""

    @abstractmethod
    def runtime(self) -> dict:
        """Runtime name, version, provider, threads and precision actually used."""

    @abstractmethod
    def prepare(self, model: ModelInfo) -> None:
        """Load (or push) the model; raise UserError when the device cannot run it."""

    @abstractmethod
    def measure(self, protocol: Protocol) -> SessionTimings:
        """Run one measurement session (fresh runtime session, warm-up, timed runs)."""

    @staticmethod
    def model_precision(model: ModelInfo | None) -> str:
        """The runtime's precision name for a model file's weights (``f32``, ``int8``)."""
        stored = model.precision if model is not None else "fp32"
        return {"fp32": "f32", "fp16": "f16"}.get(stored, stored)

    def layers(self, runs: int = 10) -> list[LayerTime] | None:
        """Per-layer times from a separate profiling pass; None if unsupported."""
        return None

    def close(self) -> None:
        """Release the runtime / device resources (nothing to do by default)."""
        return None
