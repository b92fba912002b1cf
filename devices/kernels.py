"""Fused kernels as the runtime executes them, and a learned latency model per kernel type.

nn-Meter's observation: a network's latency is the sum of its *kernels*, the units the
runtime actually runs after graph optimisation (Conv + BN + ReLU folded into one
FusedConv, a residual Add fused into the convolution, layout reorders inserted ...),
not of the layers one wrote. Parts measured alone miss exactly those effects. So here:

* :class:`KernelProfiler` opens an ONNX file the way the device backend does
  (onnxruntime with full graph optimisation, or OpenVINO's CPU plugin) and reads the
  executed kernels with their input/output shapes and times from the runtime's own
  profiler (ORT's per-node trace, OpenVINO's performance counters joined with its
  runtime graph). It also times the whole network with profiling off.
* :func:`kernel_features` turns a kernel's shapes into numbers (channels in/out, H, W,
  kernel area, groups, MACs, bytes moved ...).
* :class:`KernelModel` fits one regressor per kernel type (a base law in MACs and
  elements moved, corrected by gradient-boosted trees on log features where a type
  has enough samples) and predicts a network's kernel sum.

Nothing here knows about genotypes.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

# A kernel type needs this many samples before it gets its own trees; below it, its
# base law (time vs MACs and elements moved) generalises better than a tiny forest.
MIN_TREE_SAMPLES = 40
# Names of the numbers kernel_features() returns, in order (for the docs and tests).
FEATURE_NAMES = (
    "c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "kernel_area", "groups",
    "macs", "in_elems", "out_elems", "weight_elems", "extra_elems", "inputs",
)  # fmt: skip


@dataclass
class Kernel:
    """One executed kernel: its type, input shapes, output shape and time (ms)."""

    op: str
    inputs: list[list[int]]
    output: list[int]
    ms: float = 0.0
    name: str = ""


def _chw(shape: list[int]) -> tuple[int, int, int]:
    """Channels, height, width of an activation shape (NCHW, NC, or N; a channel
    shuffle's ``[N, g, C/g, H, W]`` counts ``g * C/g`` channels)."""
    if len(shape) >= 5:
        return math.prod(shape[1:-2]), shape[-2], shape[-1]
    dims = [*shape[1:], 1, 1, 1]
    return dims[0], dims[1], dims[2]


def _elems(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def kernel_features(kernel: Kernel) -> list[float]:
    """The kernel's shape features (see :data:`FEATURE_NAMES`).

    A convolution's weight is its second input (ORT's ``[O, I/g, kh, kw]`` and
    OpenVINO's grouped ``[g, O/g, I/g, kh, kw]`` alike): its last two
    dimensions are the kernel area, and ``groups = C_in * C_out * area / weight``.
    MACs per output element are ``weight / C_out`` for a convolution, 1 otherwise.
    """
    first = kernel.inputs[0] if kernel.inputs else kernel.output
    c_in, h_in, w_in = _chw(first)
    c_out, h_out, w_out = _chw(kernel.output)
    out_elems = _elems(kernel.output)
    convolution = "conv" in kernel.op.lower()  # Conv, FusedConv, (Group)Convolution
    weight = kernel.inputs[1] if convolution and len(kernel.inputs) > 1 else None
    weight = weight if weight is not None and len(weight) >= 4 else None
    if weight is not None:
        weight_elems = _elems(weight)
        area = weight[-1] * weight[-2]
        groups = max(1.0, c_in * c_out * area / max(1, weight_elems))
        macs = out_elems * weight_elems / max(1, c_out)
    else:
        weight_elems, area, groups, macs = 0, 1, 1.0, out_elems
    others = kernel.inputs[2:] if weight is not None else kernel.inputs[1:]
    extra = sum(_elems(s) for s in others)
    return [
        float(v)
        for v in (
            c_in, h_in, w_in, c_out, h_out, w_out, area, groups, macs,
            _elems(first), out_elems, weight_elems, extra, len(kernel.inputs),
        )
    ]  # fmt: skip


# ----------------------------------------------------------------------------- model
class KernelModel:
    """One latency regressor per kernel type, fitted on ``(op, features, ms)`` samples.

    Each type gets a physical base law, ``ms = a * MACs + b * elements moved + c``
    (non-negative least squares on relative error), and, with at least
    :data:`MIN_TREE_SAMPLES` samples, gradient-boosted trees on log features that learn
    the remaining factor ``log(ms / base)`` (cache sizes, vector widths, the kernel
    variant the runtime picks). Trees alone predict flat outside the shapes they saw
    and erred 16% on the largest kernels, which dominate a network's sum; the base law
    keeps them in scale.
    """

    def __init__(self, samples: list[tuple[str, list[float], float]], seed: int = 0) -> None:
        self.samples = samples
        self.seed = seed
        self.trees: dict[str, object] = {}
        self.laws: dict[str, tuple[float, float, float]] = {}
        self.fallback = (0.0, 0.0, 0.0)
        self._fit()

    @staticmethod
    def _terms(features: list[float]) -> tuple[float, float]:
        """MACs and elements read and written (weights included)."""
        return features[8], features[9] + features[10] + features[11] + features[12]

    @classmethod
    def _law(cls, rows: list[tuple[list[float], float]]) -> tuple[float, float, float]:
        import numpy as np
        from scipy.optimize import nnls

        y = np.array([ms for _, ms in rows])
        terms = np.array([[*cls._terms(f), 1.0] for f, _ in rows])
        coef, _ = nnls(terms / y[:, None], np.ones_like(y))
        return float(coef[0]), float(coef[1]), float(coef[2])

    def _base(self, op: str, features: list[float]) -> float:
        a, b, c = self.laws.get(op, self.fallback)
        macs, moved = self._terms(features)
        return max(a * macs + b * moved + c, 1e-6)

    def _fit(self) -> None:
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingRegressor

        by_op: dict[str, list[tuple[list[float], float]]] = {}
        for op, features, ms in self.samples:
            if ms > 0:
                by_op.setdefault(op, []).append((features, ms))
        everything = [row for rows in by_op.values() for row in rows]
        if everything:
            self.fallback = self._law(everything)
        for op, rows in by_op.items():
            self.laws[op] = self._law(rows) if len(rows) >= 3 else self.fallback
            if len(rows) >= MIN_TREE_SAMPLES:
                x = np.log1p(np.array([f for f, _ in rows]))
                y = np.log([ms / self._base(op, f) for f, ms in rows])
                # Log time: a kernel's time spans 4 orders of magnitude, and relative
                # error is what adds up in a network's sum.
                model = HistGradientBoostingRegressor(
                    max_iter=150, learning_rate=0.1, min_samples_leaf=3, random_state=self.seed
                )
                self.trees[op] = model.fit(x, y)

    def predict(self, kernels: list[Kernel]) -> list[float]:
        """Predicted time (ms) of each kernel."""
        return self.predict_features([(k.op, kernel_features(k)) for k in kernels])

    def predict_features(self, rows: list[tuple[str, list[float]]]) -> list[float]:
        """Predicted time (ms) of each ``(op, features)`` row."""
        import numpy as np

        out = [self._base(op, f) for op, f in rows]
        by_op: dict[str, list[int]] = {}
        for i, (op, _) in enumerate(rows):
            by_op.setdefault(op, []).append(i)
        for op, indices in by_op.items():
            if op in self.trees:
                x = np.log1p(np.array([rows[i][1] for i in indices]))
                for i, y in zip(indices, self.trees[op].predict(x), strict=True):
                    out[i] *= float(math.exp(y))
        return out


@dataclass
class NetworkRecord:
    """A calibration network: whole-network time and its kernels' profiled sum."""

    name: str
    measured_ms: float
    kernels_ms: float
    kernels: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class KernelOverhead:
    """``predicted = scale * kernel_sum + offset_ms + per_kernel_ms * kernels``: the
    time between kernels (dispatch, the profiler's own cost) that no kernel owns."""

    scale: float = 1.0
    offset_ms: float = 0.0
    per_kernel_ms: float = 0.0
    fitted_on: int = 0

    def predict(self, kernels_ms: float, kernels: int) -> float:
        return self.scale * kernels_ms + self.offset_ms + self.per_kernel_ms * kernels

    @classmethod
    def fit(cls, records: list[NetworkRecord]) -> KernelOverhead:
        """Non-negative least squares on relative error (a gap between kernels cannot
        be negative, and a free sign let a few noisy networks predict negative times
        for small ones); fewer than 4 records fit the scale only.

        Load only ever slows a measurement down, so networks measured well above the
        law (more than 3 robust deviations) are dropped and the law refitted once.
        """
        import numpy as np

        if not records:
            return cls()
        y = np.array([r.measured_ms for r in records])
        s = np.array([r.kernels_ms for r in records])
        if len(records) < 4:
            return cls(float(np.median(y / np.maximum(s, 1e-9))), 0.0, 0.0, len(records))
        n = np.array([float(r.kernels) for r in records])
        design = np.stack([s, np.ones_like(s), n], axis=1)
        coef = cls._nnls(design, y)
        ratio = y / np.maximum(design @ coef, 1e-9) - 1
        spread = 1.4826 * float(np.median(np.abs(ratio - np.median(ratio))))
        keep = ratio <= np.median(ratio) + 3 * max(spread, 0.01)
        if 4 <= keep.sum() < len(records):
            coef = cls._nnls(design[keep], y[keep])
        return cls(float(coef[0]), float(coef[1]), float(coef[2]), int(keep.sum()))

    @staticmethod
    def _nnls(design, y):
        from scipy.optimize import nnls

        coef, _ = nnls(design / y[:, None], y / y)
        return coef


# ------------------------------------------------------------------------- profilers
def _by_node(runs: list[dict[str, float]], reduce=statistics.median) -> dict[str, float]:
    """``reduce`` (median or min) of each node's time over ``runs``."""
    names = runs[0].keys() if runs else []
    return {n: reduce([r.get(n, 0.0) for r in runs]) for n in names}


class KernelProfiler:
    """Executed kernels and whole-network timing of one ONNX file on a host runtime.

    ``backend``: ``"onnxruntime"`` or ``"openvino"`` (a catalog entry's backend), with
    the same session settings as :mod:`edgenas.devices.backends` uses for profiling
    (one intra-op thread pool of ``threads``, sequential, full optimisation; OpenVINO:
    LATENCY hint, f32). Two sessions are kept: one with the profiler on (kernel times),
    one without (the whole network's time), so profiling never inflates the latter.
    """

    def __init__(
        self, path: str | Path, backend: str, threads: int, plugin: str = "CPU", timed: bool = True
    ) -> None:
        import numpy as np

        self.path, self.backend, self.threads, self.plugin = str(path), backend, threads, plugin
        self.timed = timed  # False: no plain session (kernels only, for predictions)
        # ORT needs a fresh profiled session per read-out: keep the graph, not the file.
        self._onnx = Path(path).read_bytes() if backend == "onnxruntime" else b""
        self._plain = self._profiled = self._profiled_model = self._run_plain = None
        self._tmp = tempfile.TemporaryDirectory(prefix="edgenas-kernels-")
        if backend == "onnxruntime":
            self._open_ort()
        elif backend == "openvino":
            self._open_openvino()
        else:
            raise ValueError(f"kernel profiling needs a host runtime, not {backend!r}")
        rng = np.random.default_rng(0)
        self.feeds = {name: rng.random(shape, dtype=np.float32) for name, shape in self._inputs}
        self._shapes: dict[str, tuple[list[list[int]], list[int]]] = {}

    # onnxruntime ---------------------------------------------------------------
    def _ort_options(self, profile: bool):
        from edgenas.devices.backends.ort import session_options

        return session_options(self.threads, Path(self._tmp.name) / "ort" if profile else None)

    def _open_ort(self) -> None:
        import onnxruntime as ort

        cpu = ["CPUExecutionProvider"]
        self._profiled = ort.InferenceSession(self._onnx, self._ort_options(True), providers=cpu)
        self._inputs = [(i.name, list(i.shape)) for i in self._profiled.get_inputs()]
        if self.timed:
            self._plain = ort.InferenceSession(self._onnx, self._ort_options(False), providers=cpu)
            self._run_plain = lambda: self._plain.run(None, self.feeds)

    def _ort_kernels(self, runs: int, reduce) -> tuple[dict[str, float], dict[str, Kernel]]:
        """Per-node time (``reduce`` over ``runs`` runs) of the profiled session.

        ORT writes its trace only at end_profiling(), which also ends the session's
        profiling: a fresh profiled session is made for every call.
        """
        import onnxruntime as ort

        session = self._profiled
        for _ in range(runs):
            session.run(None, self.feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
        self._profiled = ort.InferenceSession(
            self._onnx, self._ort_options(True), providers=["CPUExecutionProvider"]
        )
        per_run: list[dict[str, float]] = []
        kernels: dict[str, Kernel] = {}
        for event in events:
            if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
                continue
            args = event.get("args", {})
            name = event["name"][: -len("_kernel_time")]
            if not per_run or name in per_run[-1]:
                per_run.append({})  # a name seen again: the next run started
            per_run[-1][name] = event["dur"] / 1000.0
            if name not in kernels:
                shapes = [next(iter(d.values())) for d in args.get("input_type_shape", [])]
                output = [next(iter(d.values())) for d in args.get("output_type_shape", [])]
                kernels[name] = Kernel(
                    args.get("op_name", "?"), shapes, output[0] if output else [], name=name
                )
        return _by_node(per_run[1:] or per_run, reduce), kernels

    # openvino ------------------------------------------------------------------
    def _ov_compile(self, profile: bool):
        import openvino as ov
        from edgenas.devices.backends.openvino import compile_config

        core = ov.Core()
        config = compile_config(self.plugin, self.threads, "fp32", profile)
        return core.compile_model(core.read_model(self.path), self.plugin, config)

    def _open_openvino(self) -> None:
        import openvino as ov

        self._profiled_model = self._ov_compile(True)
        self._inputs = [(p.any_name, list(p.get_shape())) for p in self._profiled_model.inputs]
        self._profiled = self._profiled_model.create_infer_request()
        if not self.timed:
            return
        self._plain = self._ov_compile(False).create_infer_request()
        self._bound = False

        def run_plain():
            if not self._bound:
                for name, value in self.feeds.items():
                    self._plain.set_tensor(name, ov.Tensor(value))
                self._bound = True
            self._plain.infer()

        self._run_plain = run_plain

    def _ov_kernels(self, runs: int, reduce) -> tuple[dict[str, float], dict[str, Kernel]]:
        request = self._profiled
        per_run: list[dict[str, float]] = []
        for _ in range(runs):
            request.infer(self.feeds)
            per_run.append(
                {
                    i.node_name: i.real_time.total_seconds() * 1000.0
                    for i in request.get_profiling_info()
                    if "EXECUTED" in str(i.status) and "NOT_RUN" not in str(i.status)
                    and i.node_type not in ("Parameter", "Result", "Constant")
                }
            )  # fmt: skip
        if not self._shapes:
            for op in self._profiled_model.get_runtime_model().get_ordered_ops():
                inputs = [list(op.input(k).get_partial_shape().get_min_shape())
                          for k in range(op.get_input_size())]  # fmt: skip
                output = (
                    list(op.get_output_partial_shape(0).get_min_shape())
                    if op.get_output_size()
                    else []
                )
                self._shapes[op.get_friendly_name()] = (inputs, output)
        types = {i.node_name: i.node_type for i in request.get_profiling_info()}
        kernels = {}
        for name in per_run[0]:
            inputs, output = self._shapes.get(name, ([], []))
            kernels[name] = Kernel(
                types[name], [[int(d) for d in s] for s in inputs], [int(d) for d in output],
                name=name,
            )  # fmt: skip
        return _by_node(per_run[1:] or per_run, reduce), kernels

    # shared ----------------------------------------------------------------------
    def kernels(self, runs: int = 5, reduce=statistics.median) -> list[Kernel]:
        """The executed kernels with their time over ``runs`` profiled runs (the first
        dropped as a warm-up), reduced by ``reduce`` (median, or min under load)."""
        runs = max(2, runs)
        read = self._ort_kernels if self.backend == "onnxruntime" else self._ov_kernels
        times, kernels = read(runs, reduce)
        out = []
        for name, kernel in kernels.items():
            kernel.ms = times.get(name, 0.0)
            out.append(kernel)
        return out

    def session_times(self, runs: int = 10, warmup: int = 2) -> list[float]:
        """Times (ms) of ``runs`` plain runs after ``warmup`` untimed ones."""
        import time

        for _ in range(warmup):
            self._run_plain()
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            self._run_plain()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        return samples

    def session_median(self, runs: int = 10, warmup: int = 2) -> float:
        """Median time (ms) of ``runs`` plain runs after ``warmup`` untimed ones."""
        return statistics.median(self.session_times(runs, warmup))

    def close(self) -> None:
        self._plain = self._profiled = self._profiled_model = self._run_plain = None
        self._tmp.cleanup()
