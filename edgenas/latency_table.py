"""Search-side glue of the latency predictors: the kernel predictor (export a network,
list the kernels its runtime executes, predict each from the device's learned models;
calibrated by :func:`calibrate_kernels`) and the parts table (split a network into
measurable parts, export each part to ONNX, measure it with :mod:`edgenas.devices`).

A network of the LDP space is stem + searched blocks + head. Each part becomes a key
of the device's :class:`~edgenas.devices.predictor.LatencyTable`::

    stem|3>16s2|3x240x320
    block|ib6_k5_se25_res_c32_n2|16x120x160|s1
    up|ds_k3_se0_nores_c24_n1|64x30x40>60x80
    head|depth|{}|24x120x160|3x240x320

Block input shapes come from forward pre-hooks on the real model, so every part is
measured at the exact shape it sees inside the network. The concatenations of the
decoder are not parts: their cost is in the overhead model (concat mega-elements).
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgenas.atomic import atomic_path
from edgenas.devices.catalog import DeviceEntry
from edgenas.devices.predictor import Calibration, LatencyTable, accuracy_report, table_threads
from edgenas.devices.profile import profile_model, resolve_device
from edgenas.devices.protocol import Protocol
from edgenas.errors import UserError

# Runtimes whose executed kernels can be profiled on this machine (catalog backends).
KERNEL_BACKENDS = ("onnxruntime", "openvino")
# Profiled runs per kernel read-out (the first is dropped as a warm-up).
KERNEL_RUNS = 3

# Parts are small and fast: more runs, fewer sessions. Whole networks: more sessions.
PART_PROTOCOL = Protocol(warmup_runs=5, warmup_min_s=0.05, runs=30, sessions=2)
NETWORK_PROTOCOL = Protocol(warmup_runs=3, warmup_min_s=0.1, runs=15, sessions=3)


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape[1:])


class _Upsample(nn.Module):
    """An UpsampleBlock with its target size fixed, so it exports with one input."""

    def __init__(self, block: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.block = block
        self.size = tuple(int(s) for s in size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, self.size)


@dataclass
class Part:
    """One measurable piece of a network and the inputs it sees there."""

    key: str
    module: nn.Module
    inputs: tuple[tuple[int, ...], ...]


@dataclass
class NetworkParts:
    parts: list[Part]
    concat_melems: float

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.parts]


def network_parts(model: nn.Module, input_shape: tuple[int, ...]) -> NetworkParts:
    """Split an edgenas model into stem, blocks and head at their real input shapes."""
    backbone = model.backbone
    seen: dict[str, tuple] = {}
    handles = []

    def recorder(name):
        def hook(_module, args):
            seen[name] = args

        return hook

    handles.append(backbone.stem.register_forward_pre_hook(recorder("stem")))
    handles.append(model.head.register_forward_pre_hook(recorder("head")))
    for role, block in backbone.blocks.items():
        handles.append(block.register_forward_pre_hook(recorder(role)))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_shape))
    finally:
        for handle in handles:
            handle.remove()

    conv = backbone.stem[0]
    x = seen["stem"][0]
    parts = [
        Part(
            f"stem|{conv.in_channels}>{conv.out_channels}s{conv.stride[0]}|{_shape(x)}",
            backbone.stem,
            (tuple(x.shape),),
        )
    ]
    concat = 0.0
    for role, block in backbone.blocks.items():
        args = seen[role]
        x = args[0]
        spec = block.spec if hasattr(block, "spec") else block.block.spec
        if role.startswith("up"):
            size = tuple(int(s) for s in args[1])
            key = f"up|{spec.encode()}|{_shape(x)}>{size[0]}x{size[1]}"
            parts.append(Part(key, _Upsample(block, size), (tuple(x.shape),)))
            continue
        # decNa's input at every scale but the bottom one is the concatenation
        # [upsampled, skip], made by the backbone whatever the block: its size drives
        # the concat cost.
        if role.startswith("dec") and role.endswith("a") and int(role[3:-1]) < backbone.scales:
            concat += x.numel() / 1e6
        if block.is_identity:
            continue  # no layers, nothing to time
        stride = 2 if role.startswith("down") else 1
        parts.append(Part(f"block|{spec.encode()}|{_shape(x)}|s{stride}", block, (tuple(x.shape),)))
    features, image = seen["head"]
    options = json.dumps(getattr(model, "options", {}), sort_keys=True, separators=(",", ":"))
    parts.append(
        Part(
            f"head|{getattr(model, 'task', 'head')}|{options}|{_shape(features)}|{_shape(image)}",
            model.head,
            (tuple(features.shape), tuple(image.shape)),
        )
    )
    return NetworkParts(parts, concat)


def export_model(
    module: nn.Module, shapes, path: str | Path, *, verified: bool = False, opset: int = 17
) -> Path:
    """Export ``module`` to ONNX at ``path``.

    ``verified=True`` uses :func:`edgenas.export.export_onnx` (simplified, checked and
    compared with PyTorch), for models a user profiles; calibration parts use the plain
    TorchScript exporter (ORT's own graph optimisation does the same folding).
    """
    shapes = [tuple(shapes)] if isinstance(shapes[0], int) else [tuple(s) for s in shapes]
    path = Path(path)
    if verified and len(shapes) == 1:
        try:
            from edgenas.export import export_onnx
        except ImportError:
            export_onnx = None
        if export_onnx is not None:
            export_onnx(module, shapes[0], path)
            return path
    module = module.eval()
    args = tuple(torch.randn(s) for s in shapes)
    names = [f"input{i}" for i in range(len(shapes))] if len(shapes) > 1 else ["input"]
    # The TorchScript exporter is the one that works here (no onnxscript); silence its
    # deprecation notice, which would repeat for every part.
    try:
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module, args, str(tmp), dynamo=False, opset_version=opset, input_names=names
            )
    except OSError as err:  # a full disk or a size limit where the part is written
        raise UserError(
            f"cannot write the ONNX file {path}: {err.strerror or type(err).__name__}; free "
            "some space there (parts are written to the temporary folder, see TMPDIR)"
        ) from None
    return path


class Measurer:
    """Measures parts and networks on one device, filling a table lazily.

    One device backend serves every measurement until :meth:`close`: a phone is chosen
    and described once, and each part then costs one push and one command per session
    (a fresh backend per part opened about 27 adb connections each, 400 for one
    prediction, which an adb server or a flaky cable may refuse midway).
    """

    def __init__(
        self,
        device: str | DeviceEntry,
        *,
        threads: int | None = None,
        table: LatencyTable | None = None,
        table_path: str | Path | None = None,
        part_protocol: Protocol = PART_PROTOCOL,
        network_protocol: Protocol = NETWORK_PROTOCOL,
        backend_options: dict | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.entry = resolve_device(device)
        self.threads = table_threads(self.entry.threads, threads)
        self.table = table or LatencyTable.open(self.entry.name, self.threads, table_path)
        self.part_protocol = part_protocol
        self.network_protocol = network_protocol
        self.backend_options = backend_options or {}
        self.log = log or (lambda _msg: None)
        self.measured_parts = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="edgenas-latency-")
        self._backend = None
        self._files = 0

    def close(self) -> None:
        """Release the device and the temporary files."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        self._tmp.cleanup()

    def backend(self):
        """The device backend all measurements share (made on first use)."""
        if self._backend is None:
            from edgenas.devices.backends import make_backend

            self._backend = make_backend(self.entry, threads=self.threads, **self.backend_options)
        return self._backend

    def profile(self, module: nn.Module, shapes, protocol: Protocol):
        """``module`` exported at ``shapes`` and measured on the device per ``protocol``:
        the whole :class:`~edgenas.devices.result.LatencyResult`."""
        path = Path(self._tmp.name) / "part.onnx"
        export_model(module, shapes, path)
        return profile_model(path, self.entry, protocol, backend=self.backend())

    def _measure(self, module: nn.Module, shapes, protocol: Protocol) -> float:
        result = self.profile(module, shapes, protocol)
        if not self.table.runtime:
            self.table.runtime = result.runtime
            self.table.protocol = {
                "parts": self.part_protocol.to_dict(),
                "networks": self.network_protocol.to_dict(),
            }
        return result.median_ms

    def fill(self, parts: NetworkParts) -> int:
        """Measure the parts the table lacks; returns how many were new."""
        new = 0
        for part in parts.parts:
            if part.key in self.table.entries:
                continue
            self.table.entries[part.key] = self._measure(
                part.module, part.inputs, self.part_protocol
            )
            new += 1
        self.measured_parts += new
        if new:
            self.table.save()
        return new

    def measure_network(self, model: nn.Module, input_shape: tuple[int, ...]) -> float:
        return self._measure(model, [tuple(input_shape)], self.network_protocol)

    def network_file(self, model: nn.Module, input_shape: tuple[int, ...]) -> Path:
        """``model`` exported at ``input_shape`` to a new file in the measurer's folder,
        kept until the caller deletes it or :meth:`close` (to measure it repeatedly)."""
        self._files += 1
        return export_model(
            model, [tuple(input_shape)], Path(self._tmp.name) / f"net{self._files}.onnx"
        )

    def measure_file(self, path: str | Path, protocol: Protocol | None = None) -> float:
        """An exported network's median latency on the device (``protocol``: the
        network protocol unless given)."""
        protocol = protocol or self.network_protocol
        return profile_model(path, self.entry, protocol, backend=self.backend()).median_ms

    # ------------------------------------------------------------ kernel predictor
    @property
    def kernel_backend(self) -> str | None:
        """The host runtime kernels are profiled on, or None (phones: parts only)."""
        return self.entry.backend if self.entry.backend in KERNEL_BACKENDS else None

    @property
    def uses_kernels(self) -> bool:
        """Predictions come from the kernel model (calibrated, on a host runtime)."""
        return self.kernel_backend is not None and self.table.has_kernel_model

    def profiler(self, model: nn.Module, input_shape: tuple[int, ...], timed: bool = True):
        """A :class:`~edgenas.devices.kernels.KernelProfiler` of ``model`` (exported to
        a fresh file in the measurer's temporary folder)."""
        from edgenas.devices.kernels import KernelProfiler

        path = self.network_file(model, input_shape)
        try:
            return KernelProfiler(
                path, self.kernel_backend, self.threads or 1, self.entry.plugin or "CPU",
                timed=timed,
            )  # fmt: skip
        finally:
            path.unlink(missing_ok=True)  # both runtimes hold the graph in memory now

    def learn(
        self, name: str, model: nn.Module, input_shape: tuple[int, ...], measured: float
    ) -> None:
        """Add a measured network to the table (the search calls this after training):
        kernel samples and an overhead record on a kernel table, else its parts and a
        calibration record. Refits and saves.

        On a kernel table the network is timed again with the calibration's protocol
        (:class:`KernelProtocol`, about a second): ``measured`` may come from another
        statistic (a median of sessions), and the overhead law must compare like with
        like."""
        if self.uses_kernels:
            _name, ms, kernels = measure_kernels(self, [(name, model)], input_shape)[0]
            self.table.add_kernels(*kernel_samples(name, kernels, ms))
            self.table.refit_kernels()
        else:
            parts = network_parts(model, input_shape)
            self.fill(parts)
            self.table.calibration.append(
                Calibration(name, measured, self.table.parts_ms(parts.keys), parts.concat_melems)
            )
            self.table.refit()
        self.table.save()


def timing_model(genotype, task: str, task_options: dict | None = None) -> nn.Module:
    """The network of ``genotype`` for ``task`` in eval mode, with seed-0 weights.

    What latency is measured on: the weights do not change the time, but fixing them
    keeps exported files (and their hashes) identical from run to run. ``task_options``
    are the head's (``scale``, ``num_classes``): the network whose latency is predicted
    must be the one that will be deployed, head included.
    """
    from edgenas.models.builder import build_model

    torch.manual_seed(0)
    return build_model(genotype, task, **(task_options or {})).eval()


def predict_latency(
    genotype,
    task: str,
    input_shape: tuple[int, ...],
    measurer: Measurer,
    *,
    measure_missing: bool = True,
    task_options: dict | None = None,
) -> float:
    """Predicted latency (ms) of ``genotype`` on the measurer's device.

    Parts missing from the table are measured first (and kept) unless
    ``measure_missing`` is False, in which case a KeyError names the first missing key.
    ``task_options``: the head's options (see :func:`timing_model`).
    """
    model = timing_model(genotype, task, task_options)
    if measurer.uses_kernels:
        return predict_kernels(measurer, model, input_shape)
    parts = network_parts(model, input_shape)
    if measure_missing:
        measurer.fill(parts)
    return measurer.table.predict(parts.keys, parts.concat_melems)


def kernel_samples(name: str, kernels: list, measured: float | None):
    """``(samples, record)`` of one profiled network for the table."""
    from edgenas.devices.kernels import NetworkRecord, kernel_features

    samples = [[k.op, kernel_features(k), round(k.ms, 5)] for k in kernels]
    record = (
        NetworkRecord(name, measured, sum(k.ms for k in kernels), len(kernels))
        if measured is not None
        else None
    )
    return samples, record


def predict_kernels(measurer: Measurer, model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Kernel-model prediction: the runtime optimises the graph and runs it twice with
    its profiler on, only to list the kernels it executes and their shapes; their
    times come from the table's per-type models (not from those runs)."""
    profiler = measurer.profiler(model, input_shape, timed=False)
    try:
        kernels = profiler.kernels(2)
    finally:
        profiler.close()
    table = measurer.table
    total = sum(table.kernel_model().predict(kernels))
    return table.kernel_overhead.predict(total, len(kernels))


def calibrate(
    measurer: Measurer,
    genotypes: list,
    task: str,
    input_shape: tuple[int, ...],
) -> dict:
    """Measure ``genotypes`` whole and part by part; fit the overhead model; save.

    Returns a summary: networks, new parts, table size, seconds, fitted overhead and the
    in-sample accuracy.
    """
    start = time.perf_counter()
    new_parts = 0
    for i, genotype in enumerate(genotypes, 1):
        model = timing_model(genotype, task)
        parts = network_parts(model, input_shape)
        new_parts += measurer.fill(parts)
        measured = measurer.measure_network(model, input_shape)
        measurer.table.calibration.append(
            Calibration(
                genotype.encode(),
                measured,
                measurer.table.parts_ms(parts.keys),
                parts.concat_melems,
            )
        )
        measurer.log(
            f"[{i}/{len(genotypes)}] measured {measured:.2f} ms, parts sum "
            f"{measurer.table.parts_ms(parts.keys):.2f} ms ({len(measurer.table.entries)} parts in table)"
        )
    overhead = measurer.table.refit()
    path = measurer.table.save()
    records = measurer.table.calibration
    predicted = [overhead.predict(r.parts_ms, r.concat_melems) for r in records]
    return {
        "device": measurer.entry.name,
        "networks": len(genotypes),
        "new_parts": new_parts,
        "table_parts": len(measurer.table.entries),
        "seconds": time.perf_counter() - start,
        "overhead": dict(overhead.__dict__),
        "in_sample": accuracy_report(predicted, [r.measured_ms for r in records]),
        "table": str(path),
    }


def evaluate(measurer: Measurer, genotypes: list, task: str, input_shape: tuple[int, ...]) -> dict:
    """Held-out accuracy: measure each network whole, compare with the prediction."""
    predicted, measured = [], []
    for i, genotype in enumerate(genotypes, 1):
        predicted.append(predict_latency(genotype, task, input_shape, measurer))
        measured.append(measurer.measure_network(timing_model(genotype, task), input_shape))
        measurer.log(
            f"[{i}/{len(genotypes)}] predicted {predicted[-1]:.2f} ms, measured {measured[-1]:.2f} ms"
        )
    report = accuracy_report(predicted, measured)
    report["predicted_ms"] = predicted
    report["measured_ms"] = measured
    return report


# ------------------------------------------------------------- kernel calibration
# Networks measured together: their rounds interleave (a burst of load lands in one
# round of each, and the min of round medians skips it); ten keep the open sessions'
# memory small.
CHUNK = 10


@dataclass
class KernelProtocol:
    """Load-robust timing: ``rounds`` interleaved visits per network, each ``runs``
    timed runs (fewer for slow networks) and ``kernel_runs`` profiled runs.

    ``statistic="min"`` (the default): a network's time is its fastest run over all
    rounds, a kernel's its fastest profiled run. Load only ever adds time, so the
    fastest run is the undisturbed one: on this machine (2 cores shared with other
    jobs, load average 2-3) three passes over the same 8 networks agreed within 2.2%
    on average (4.3% at worst) with the minimum, against 25% (47%) with the minimum of
    round medians and 23% (40%) with the plain median. ``statistic="median"``: the
    minimum of round medians (a quiet, dedicated device).
    """

    rounds: int = 3
    runs: int = 8
    kernel_runs: int = KERNEL_RUNS
    max_round_s: float = 0.2  # fewer timed runs for slow networks (at least 3)
    statistic: str = "min"


def measure_kernels(
    measurer: Measurer,
    named_models: list[tuple[str, nn.Module]],
    input_shape: tuple[int, ...],
    protocol: KernelProtocol | None = None,
    *,
    kernels: bool = True,
) -> list[tuple[str, float, list]]:
    """``(name, measured_ms, kernels)`` of each model, measured chunk by chunk with
    interleaved rounds (see :class:`KernelProtocol`); ``kernels=False`` times the
    networks only (the kernel lists are then empty)."""
    import statistics

    protocol = protocol or KernelProtocol()
    reduce = min if protocol.statistic == "min" else statistics.median
    out = []
    for start in range(0, len(named_models), CHUNK):
        chunk = named_models[start : start + CHUNK]
        profilers = [measurer.profiler(model, input_shape) for _, model in chunk]
        try:
            times: list[list[float]] = [[] for _ in chunk]
            kernel_rounds: list[list[list]] = [[] for _ in chunk]
            for _ in range(protocol.rounds):
                for i, profiler in enumerate(profilers):
                    # A short probe sizes the session: slow networks get fewer runs.
                    probe = profiler.session_times(3, warmup=1)
                    runs = max(3, min(protocol.runs, int(protocol.max_round_s * 1000 / min(probe))))
                    samples = profiler.session_times(runs, warmup=0)
                    times[i].append(reduce(samples + probe if reduce is min else samples))
                    kernel_rounds[i].append(
                        profiler.kernels(protocol.kernel_runs, reduce=reduce) if kernels else []
                    )
        finally:
            for profiler in profilers:
                profiler.close()
        for (name, _model), network_times, rounds in zip(chunk, times, kernel_rounds, strict=True):
            listed = rounds[0]
            per_round = [{k.name: k.ms for k in r} for r in rounds]
            for kernel in listed:
                kernel.ms = min(r.get(kernel.name, kernel.ms) for r in per_round)
            out.append((name, min(network_times), listed))
        measurer.log(f"measured {len(out)}/{len(named_models)} networks")
    return out


def cross_validated(table: LatencyTable, folds: int = 3) -> dict[str, tuple[float, float]]:
    """``name -> (predicted, measured)`` of each calibration network, predicted by
    models fitted without it (networks split into ``folds`` groups)."""
    from edgenas.devices.kernels import KernelModel, KernelOverhead

    records = table.kernel_records
    chunks = _split_samples(table)
    if chunks is None:
        return {}
    out: dict[str, tuple[float, float]] = {}
    for fold in range(folds):
        held = [i for i in range(len(records)) if i % folds == fold]
        kept = [i for i in range(len(records)) if i % folds != fold]
        if not held or len(kept) < 4:
            continue
        model = KernelModel([tuple(s) for i in kept for s in chunks[i]])
        overhead = KernelOverhead.fit([records[i] for i in kept])
        for i in held:
            # Predicted from the stored features (a kernel's shapes are not kept).
            total = sum(model.predict_features([(op, f) for op, f, _ in chunks[i]]))
            predicted = overhead.predict(total, len(chunks[i]))
            out[records[i].name] = (predicted, records[i].measured_ms)
    return out


def _split_samples(table: LatencyTable) -> list[list] | None:
    """The table's kernel samples cut back into one list per kernel record (None when
    they do not add up: a table edited by hand)."""
    if sum(r.kernels for r in table.kernel_records) != len(table.kernel_samples):
        return None
    chunks, start = [], 0
    for record in table.kernel_records:
        chunks.append(table.kernel_samples[start : start + record.kernels])
        start += record.kernels
    return chunks


def calibrate_kernels(
    measurer: Measurer,
    genotypes: list,
    task: str,
    input_shape: tuple[int, ...],
    *,
    adaptive: float = 0.3,
    seed: int = 0,
    space=None,
    protocol: KernelProtocol | None = None,
) -> dict:
    """Kernel calibration: measure ``genotypes`` whole and kernel by kernel, then spend
    a share ``adaptive`` of them on mutants of the networks the model predicts worst
    (cross-validated), fit the per-type models and the overhead law, save.

    ``len(genotypes)`` networks are measured in all: the first ``1 - adaptive`` of the
    list, then as many mutants.
    """
    import random

    from edgenas.space.ldp import LDPSpace

    start = time.perf_counter()
    table = measurer.table
    space = space or LDPSpace()
    first = (
        max(1, round(len(genotypes) * (1 - adaptive))) if len(genotypes) >= 10 else len(genotypes)
    )
    _measure_into(measurer, genotypes[:first], task, input_shape, protocol)
    extra = len(genotypes) - first
    adaptive_worst: list[float] = []
    if extra > 0:
        errors = {n: p / m - 1 for n, (p, m) in cross_validated(table).items()}
        worst = sorted(errors, key=lambda n: -abs(errors[n]))
        adaptive_worst = [round(errors[n], 4) for n in worst[:extra]]
        rng = random.Random(seed)
        known = {r.name for r in table.kernel_records}
        mutants = []
        from edgenas.space import decode

        for name in (worst * extra)[: extra * 4]:
            if len(mutants) >= extra:
                break
            child = space.mutate(decode(name), rng)
            if child.encode() not in known:
                known.add(child.encode())
                mutants.append(child)
        # Too few networks measured for cross-validation to name the worst (a fold
        # needs 4 others), or too few new mutants: the sampled genotypes fill the rest,
        # so that len(genotypes) networks are measured as asked.
        rest = [g for g in genotypes[first:] if g.encode() not in known]
        mutants += rest[: extra - len(mutants)]
        _measure_into(measurer, mutants, task, input_shape, protocol)
    overhead = table.refit_kernels()
    path = table.save()
    pairs = list(cross_validated(table).values())
    return {
        "device": measurer.entry.name,
        "method": "kernels",
        "networks": len(table.kernel_records),
        "kernel_samples": len(table.kernel_samples),
        "kernel_types": len({s[0] for s in table.kernel_samples}),
        "seconds": time.perf_counter() - start,
        "overhead": dict(overhead.__dict__),
        "adaptive_from_errors": adaptive_worst,
        "cross_validated": (
            accuracy_report([p for p, _ in pairs], [m for _, m in pairs]) if pairs else {}
        ),
        "table": str(path),
    }


def _measure_into(measurer: Measurer, genotypes: list, task: str, input_shape, protocol) -> None:
    """Measure ``genotypes`` (kernels and whole) into the measurer's table."""
    named = [(g.encode(), timing_model(g, task)) for g in genotypes]
    for name, measured, kernels in measure_kernels(measurer, named, input_shape, protocol):
        measurer.table.add_kernels(*kernel_samples(name, kernels, measured))
    if not measurer.table.runtime:
        measurer.table.runtime = {"name": measurer.kernel_backend, "threads": measurer.threads}
