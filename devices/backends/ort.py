"""Host CPU through onnxruntime: pinned thread count, sequential execution, full
graph optimisation; per-node profile in a separate pass."""

from __future__ import annotations

import json
from pathlib import Path

from edgenas.devices.backends.base import Availability, Backend
from edgenas.devices.hostinfo import host_facts, usable_cores
from edgenas.devices.modelinfo import ModelInfo, random_inputs
from edgenas.devices.parsers import parse_ort_profile
from edgenas.devices.protocol import Protocol, host_session
from edgenas.devices.result import LayerTime
from edgenas.devices.stats import SessionTimings

from edgenas.errors import UserError, first_line


def session_options(threads: int, profile_prefix: str | Path | None = None):
    """The onnxruntime session settings every host measurement uses (the backend's
    timings and the kernel profiler's alike): ``threads`` intra-op threads, sequential
    execution, full graph optimisation; with ``profile_prefix`` the per-node trace."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    return opts


class OrtBackend(Backend):
    """onnxruntime CPU execution provider on this machine."""

    device_kind = "host"

    def __init__(self, entry, threads: int | None = None, precision: str = "fp32") -> None:
        super().__init__(entry, threads, precision)
        self.threads = self.threads or 1
        self._model: ModelInfo | None = None
        self._feeds: dict | None = None

    def availability(self) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError:
            return Availability(False, "onnxruntime is not installed: pip install onnxruntime")
        return Availability(True, f"onnxruntime {ort.__version__}, {usable_cores()} usable cores")

    def facts(self) -> dict:
        return host_facts()

    def runtime(self) -> dict:
        import onnxruntime as ort

        return {
            "name": "onnxruntime",
            "version": ort.__version__,
            "provider": "CPUExecutionProvider",
            "threads": self.threads,
            "precision": self.model_precision(self._model),
            "graph_optimization": "ORT_ENABLE_ALL",
            "execution_mode": "sequential",
        }

    def _options(self, profile_dir: str | None = None):
        prefix = None if profile_dir is None else Path(profile_dir) / "ort_profile"
        return session_options(self.threads, prefix)

    def _session(self, profile_dir: str | None = None):
        import onnxruntime as ort

        assert self._model is not None, "prepare() first"
        try:
            return ort.InferenceSession(
                self._model.path, self._options(profile_dir), providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # ORT raises its own Fail/InvalidGraph types
            first = first_line(err)
            raise UserError(f"onnxruntime cannot load {self._model.path}: {first}") from None

    def prepare(self, model: ModelInfo) -> None:
        self._model = model
        self._feeds = random_inputs(model)
        self._session().run(None, self._feeds)  # fail early, before any timing

    def measure(self, protocol: Protocol) -> SessionTimings:
        feeds = self._feeds

        def load():
            session = self._session()  # load time: InferenceSession creation
            return lambda: session.run(None, feeds)

        return host_session(load, protocol)

    def layers(self, runs: int = 10) -> list[LayerTime]:
        import tempfile

        assert self._model is not None
        with tempfile.TemporaryDirectory(prefix="edgenas-ortprof-") as tmp:
            session = self._session(tmp)
            for _ in range(max(1, runs) + 1):  # the first run is dropped by the parser
                session.run(None, self._feeds)
            path = session.end_profiling()
            events = json.loads(Path(path).read_text())
        return parse_ort_profile(events, set(self._model.node_names))
