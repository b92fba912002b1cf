"""OpenVINO: reads the ONNX file directly, LATENCY hint, f32 precision pinned,
synchronous inference; per-layer performance counters in a separate pass."""

from __future__ import annotations

from edgenas.devices.backends.base import Availability, Backend
from edgenas.devices.hostinfo import host_facts
from edgenas.devices.modelinfo import ModelInfo, random_inputs
from edgenas.devices.parsers import map_to_onnx_node
from edgenas.devices.precision import check_plugin_precision
from edgenas.devices.protocol import Protocol, host_session
from edgenas.devices.result import LayerTime
from edgenas.devices.stats import SessionTimings

from edgenas.errors import UserError, first_line


def compile_config(plugin: str, threads: int | None, precision: str, profile: bool) -> dict:
    """The compile settings every OpenVINO measurement uses (the backend's timings and
    the kernel profiler's alike): LATENCY hint, fp32 unless fp16 is asked, the thread
    count on the CPU plugin, performance counters with ``profile``."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    config = {
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.inference_precision: ov.Type.f16 if precision == "fp16" else ov.Type.f32,
    }
    if threads and plugin == "CPU":
        config[props.inference_num_threads] = int(threads)
    if profile:
        config[props.enable_profiling] = True
    return config


class OpenVinoBackend(Backend):
    """One OpenVINO plugin (``entry.plugin``: CPU, GPU, NPU)."""

    device_kind = "openvino"

    def __init__(self, entry, threads: int | None = None, precision: str = "fp32") -> None:
        super().__init__(entry, threads, precision)
        self.plugin = entry.plugin or "CPU"
        self._core = None
        self._model: ModelInfo | None = None
        self._feeds: dict | None = None
        self._precision: str | None = None

    def _get_core(self):
        if self._core is None:
            import openvino as ov

            self._core = ov.Core()
        return self._core

    def availability(self) -> Availability:
        try:
            import openvino  # noqa: F401
        except ImportError:
            return Availability(False, "openvino is not installed: pip install openvino")
        devices = self._get_core().available_devices
        if not any(d == self.plugin or d.startswith(self.plugin + ".") for d in devices):
            return Availability(
                False,
                f"OpenVINO plugin {self.plugin} not available here (available: "
                f"{', '.join(devices) or 'none'}); install its driver or use openvino-cpu",
            )
        return Availability(True, f"OpenVINO {self.plugin}: {self._full_name()}")

    def _full_name(self) -> str:
        import openvino.properties as props

        try:
            return str(self._get_core().get_property(self.plugin, props.device.full_name))
        except Exception:  # some plugins do not report it
            return self.plugin

    def facts(self) -> dict:
        facts = host_facts()
        facts["openvino_device"] = self.plugin
        facts["openvino_device_name"] = self._full_name()
        return facts

    def runtime(self) -> dict:
        import openvino as ov

        return {
            "name": "openvino",
            "version": ov.get_version(),
            "provider": self.plugin,
            "threads": self.threads,
            # A quantized model's int8 kernels, else the plugin's own precision.
            "precision": (
                "int8"
                if self._model is not None and self._model.precision == "int8"
                else self._precision
            ),
            "performance_hint": "LATENCY",
            "inference": "synchronous",
        }

    def _compile(self, profile: bool = False):
        import openvino.properties.hint as hints

        assert self._model is not None, "prepare() first"
        config = compile_config(self.plugin, self.threads, self.precision, profile)
        core = self._get_core()
        try:
            graph = core.read_model(self._model.path)
            # Free dimensions (dynamic-size exports) are fixed to the measured shape, so
            # the plugin compiles static kernels: what a deployment at that size gets.
            if any(port.get_partial_shape().is_dynamic for port in graph.inputs):
                graph.reshape({spec.name: list(spec.shape) for spec in self._model.inputs})
            compiled = core.compile_model(graph, self.plugin, config)
        except Exception as err:
            first = first_line(err)
            raise UserError(
                f"OpenVINO {self.plugin} cannot compile {self._model.path}: {first}"
            ) from None
        # Record the precision the plugin actually uses, not the one we asked for.
        self._precision = compiled.get_property(hints.inference_precision).to_string()
        return compiled

    def prepare(self, model: ModelInfo) -> None:
        availability = self.availability()
        if not availability.usable:
            raise UserError(availability.reason)
        if self.precision == "fp16":
            import openvino.properties as props

            capabilities = self._get_core().get_property(self.plugin, props.device.capabilities)
            check_plugin_precision(self.plugin, capabilities, "fp16")
        self._model = model
        self._feeds = random_inputs(model)
        compiled = self._compile()
        compiled.create_infer_request().infer(self._feeds)

    def measure(self, protocol: Protocol) -> SessionTimings:
        import openvino as ov

        def load():
            # load time: read_model + compile_model + the infer request
            request = self._compile().create_infer_request()
            for name, value in self._feeds.items():
                request.set_tensor(name, ov.Tensor(value))
            # infer() with no arguments reuses the bound tensors: no copy in the timing.
            return request.infer

        return host_session(load, protocol)

    def layers(self, runs: int = 10) -> list[LayerTime]:
        compiled = self._compile(profile=True)
        request = compiled.create_infer_request()
        feeds = self._feeds
        request.infer(feeds)  # warm-up, not counted
        totals: dict[str, list] = {}
        for _ in range(max(1, runs)):
            request.infer(feeds)
            for info in request.get_profiling_info():
                entry = totals.setdefault(info.node_name, [info.node_type, 0.0, str(info.status)])
                entry[1] += info.real_time.total_seconds() * 1000.0
        names = set(self._model.node_names)
        layers = [
            LayerTime(name, op_type, total / max(1, runs), map_to_onnx_node(name, names))
            for name, (op_type, total, status) in totals.items()
            if "EXECUTED" in status and "NOT_RUN" not in status
        ]
        layers.sort(key=lambda lt: lt.time_ms, reverse=True)
        return layers
