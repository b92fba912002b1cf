"""Device profiling layer: catalog, backends, measurement protocol, latency tables.

It takes ONNX files and returns measurements; it imports nothing from search code.

    >>> from edgenas.devices import profile_model, Protocol
    >>> result = profile_model("model.onnx", "cpu", Protocol(runs=50, sessions=3))
    >>> result.median_ms
"""

from __future__ import annotations

from edgenas.devices.catalog import Catalog, DeviceEntry, load_catalog
from edgenas.devices.profile import profile_model
from edgenas.devices.protocol import Protocol
from edgenas.devices.result import SCHEMA, LatencyResult
from edgenas.devices.stats import SessionTimings

__all__ = [
    "SCHEMA",
    "Catalog",
    "DeviceEntry",
    "LatencyResult",
    "Protocol",
    "SessionTimings",
    "load_catalog",
    "profile_model",
]
