"""Backends: one interface (availability, prepare, measure, layers) per runtime.

``measure`` runs one session of the protocol and returns its timings; on Android the
backend also parses the runner's output (see :mod:`edgenas.devices.parsers`).
"""

from __future__ import annotations

from edgenas.devices.backends.base import Availability, Backend
from edgenas.devices.catalog import DeviceEntry


def make_backend(entry: DeviceEntry, **options) -> Backend:
    """The backend object for a catalog entry (cheap: nothing is loaded yet)."""
    if entry.backend == "onnxruntime":
        from edgenas.devices.backends.ort import OrtBackend

        return OrtBackend(entry, **options)
    if entry.backend == "openvino":
        from edgenas.devices.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(entry, **options)
    if entry.backend == "adb":
        from edgenas.devices.backends.android import AndroidBackend

        return AndroidBackend(entry, **options)
    raise ValueError(f"unknown backend {entry.backend!r}")


def check_availability(entry: DeviceEntry, **options) -> Availability:
    """Whether the device can be used right now, with the reason when not."""
    return make_backend(entry, **options).availability()


__all__ = ["Availability", "Backend", "check_availability", "make_backend"]
