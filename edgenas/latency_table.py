"""Search-side glue of the latency predictor: split a network into measurable parts,
export each part to ONNX, measure it with :mod:`edgenas.devices`, and predict.

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
        stride = 2 if role.startswith("down") else 1
        parts.append(Part(f"block|{spec.encode()}|{_shape(x)}|s{stride}", block, (tuple(x.shape),)))
        # decNa's input at every scale but the bottom one is the concatenation
        # [upsampled, skip]: its size drives the concat cost.
        if role.startswith("dec") and role.endswith("a") and int(role[3:-1]) < backbone.scales:
            concat += x.numel() / 1e6
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

    def _measure(self, module: nn.Module, shapes, protocol: Protocol) -> float:
        path = Path(self._tmp.name) / "part.onnx"
        export_model(module, shapes, path)
        result = profile_model(path, self.entry, protocol, backend=self.backend())
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
    parts = network_parts(timing_model(genotype, task, task_options), input_shape)
    if measure_missing:
        measurer.fill(parts)
    return measurer.table.predict(parts.keys, parts.concat_melems)


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
