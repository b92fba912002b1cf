"""``profile_model``: run the protocol on one device and assemble the result."""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path

from edgenas.devices.backends import make_backend
from edgenas.devices.catalog import Catalog, DeviceEntry, load_catalog
from edgenas.devices.hostinfo import PeakMemory
from edgenas.devices.modelinfo import inspect_model
from edgenas.devices.protocol import Protocol
from edgenas.devices.result import LatencyResult

from edgenas.errors import UserError


def environment() -> dict:
    """When and with what the measurement was taken."""
    from edgenas import __version__

    return {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "edgenas_version": __version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def resolve_device(device: str | DeviceEntry, catalog: Catalog | None = None) -> DeviceEntry:
    """A catalog entry from a name (or the entry itself)."""
    if isinstance(device, DeviceEntry):
        return device
    return (catalog or load_catalog()).get(device)


def profile_model(
    model_path: str | Path,
    device: str | DeviceEntry = "cpu",
    protocol: Protocol | None = None,
    *,
    threads: int | None = None,
    layers: bool = False,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    catalog: Catalog | None = None,
    backend_options: dict | None = None,
    on_session=None,
    backend=None,
) -> LatencyResult:
    """Measure ``model_path`` on ``device`` following ``protocol``.

    Every session runs in a fresh runtime session; ``protocol.cooldown_s`` separates
    sessions. If any session fails (e.g. the phone disconnects), the error propagates
    and no partial result is returned. ``on_session(i, timings)`` is called after each
    session (for progress output).

    ``backend``: a backend of ``device`` made by the caller and kept open across calls
    (not closed here), so that measuring many models reuses one device connection;
    ``threads`` and ``backend_options`` are then the backend's own.
    """
    entry = resolve_device(device, catalog)
    protocol = protocol or Protocol()
    if Path(model_path).suffix == ".xml" and entry.backend != "openvino":
        raise UserError(
            f"{model_path} is an OpenVINO IR: profile it on an OpenVINO device "
            "(e.g. --device openvino-cpu), or profile the ONNX file on this one"
        )
    if Path(model_path).suffix == ".tflite" and entry.backend != "adb":
        raise UserError(
            f"{model_path} is a TensorFlow Lite model: only an Android device with the "
            "benchmark_model runner measures those; profile the ONNX file here"
        )
    model = inspect_model(model_path, input_shapes)
    owned = backend is None
    if owned:
        backend = make_backend(entry, threads=threads, **(backend_options or {}))
    try:
        # Host runtimes run in this process: its peak RSS growth from before the model
        # is loaded is their memory figure (a phone's runner reports its own).
        memory = PeakMemory()
        backend.prepare(model)
        sessions = []
        for i in range(protocol.sessions):
            if i and protocol.cooldown_s:
                time.sleep(protocol.cooldown_s)
            timings = backend.measure(protocol)
            if timings.memory_source is None:
                timings.peak_memory_mb, timings.memory_source = memory.sample()
            sessions.append(timings)
            if on_session is not None:
                on_session(i, timings)
        layer_times = backend.layers() if layers else None
        if layers and layer_times is None:
            raise UserError(f"device {entry.name} cannot report per-layer times")
        facts = backend.facts()
        runtime = backend.runtime()
    finally:
        if owned:
            backend.close()
    return LatencyResult(
        model=model.to_dict(),
        device={"name": entry.name, "kind": backend.device_kind, "facts": facts},
        runtime=runtime,
        protocol=protocol.to_dict(),
        sessions=sessions,
        environment=environment(),
        layers=layer_times,
    )


def interleaved_fastest_medians(
    model_paths: list[str | Path],
    device: str | DeviceEntry,
    protocol: Protocol,
    rounds: int,
    *,
    threads: int | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    on_round=None,
) -> list[list[float]]:
    """Profile several files in turn for ``rounds`` rounds, the order reversed every
    other round; per file (in the order given), its fastest session median of each
    round.

    For A/B comparisons on a shared machine: interleaving makes its slow phases fall on
    every file alike, and other processes only ever slow a session down, so the fastest
    session median is the least disturbed reading. ``on_round(i, times)`` is called
    after each round (for progress output).
    """
    times: list[list[float]] = [[] for _ in model_paths]
    indices = list(range(len(model_paths)))
    for round_index in range(rounds):
        for i in indices if round_index % 2 == 0 else indices[::-1]:
            result = profile_model(
                model_paths[i], device, protocol, threads=threads, input_shapes=input_shapes
            )
            times[i].append(min(s.median for s in result.sessions))
        if on_round is not None:
            on_round(round_index, times)
    return times
