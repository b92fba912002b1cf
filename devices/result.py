"""The latency result (schema ``edgenas.latency/v1``) and its JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgenas.devices.breakdown import summarise
from edgenas.devices.stats import SessionTimings, overall

from edgenas.atomic import write_text_atomic
from edgenas.errors import UserError

SCHEMA = "edgenas.latency/v1"
DEVICE_KINDS = ("host", "openvino", "android", "emulated")


@dataclass
class LayerTime:
    """Time of one node/layer as the runtime reports it, mapped to the ONNX graph.

    ``onnx_node`` is the ONNX node the runtime's node comes from: the same name, or the
    longest ONNX node name it starts with (runtimes suffix fused or split nodes, e.g.
    OpenVINO's ``/conv/Conv/WithoutBiases``); None when the runtime created the node
    (layout reorders, ORT's ``*_nchwc`` fusions named after tensors).
    """

    name: str
    op_type: str
    time_ms: float
    onnx_node: str | None

    @classmethod
    def from_dict(cls, data: dict) -> LayerTime:
        """Read a layer back (derived fields such as ``share`` and ``block`` dropped)."""
        return cls(data["name"], data["op_type"], data["time_ms"], data.get("onnx_node"))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "time_ms": self.time_ms,
            "onnx_node": self.onnx_node,
        }


@dataclass
class LatencyResult:
    """A trustworthy measurement of one ONNX model on one device."""

    model: dict
    device: dict
    runtime: dict
    protocol: dict
    sessions: list[SessionTimings]
    environment: dict
    layers: list[LayerTime] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def median_ms(self) -> float:
        """The headline figure: median of the session medians."""
        return overall(self.sessions)["median_ms"]

    @property
    def warnings(self) -> list[str]:
        """What makes this measurement doubtful (e.g. sessions that disagree)."""
        return overall(self.sessions)["warnings"]

    def to_dict(self) -> dict:
        timings = overall(self.sessions)
        warnings = timings.pop("warnings")
        timings["unit"] = "ms"
        timings["sessions"] = [s.to_dict() for s in self.sessions]
        layers, summary = None, None
        if self.layers is not None:
            layers, summary = summarise(self.layers, self.model.get("genotype"))
        return {
            "schema": SCHEMA,
            "model": self.model,
            "device": self.device,
            "runtime": self.runtime,
            "protocol": self.protocol,
            "timings": timings,
            "environment": self.environment,
            "layers": layers,
            "layer_summary": summary,
            "warnings": warnings,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> LatencyResult:
        """Read a result dict back; ValueError if the schema id is not ours.

        Results written before the schema grew (no percentiles beyond p90, no load or
        memory figures, no layer shares) load too: the missing fields are None.
        """
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not an {SCHEMA} result (schema={data.get('schema')!r})")
        layers = data.get("layers")
        return cls(
            model=data["model"],
            device=data["device"],
            runtime=data["runtime"],
            protocol=data["protocol"],
            sessions=[SessionTimings.from_dict(s) for s in data["timings"]["sessions"]],
            environment=data["environment"],
            layers=None if layers is None else [LayerTime.from_dict(lt) for lt in layers],
        )


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all.

    The device layer's writer (device backends, the predictor's tables and the bench
    gate write through it): :func:`edgenas.atomic.write_text_atomic`, which creates
    missing parent folders; when the write fails (a full disk) the folders it created
    are removed again, so a failed command leaves nothing behind, and the OS error
    becomes a one-line UserError naming the file.
    """
    path = Path(path)
    try:
        write_text_atomic(path, text)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"cannot write {path}: {reason}; free some space or pick another path, "
            "then run the command again (nothing was written)"
        ) from None
