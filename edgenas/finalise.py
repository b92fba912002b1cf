"""The last step of every run: trained model -> verified any-size ONNX -> measured latency.

``edgenas search`` and ``edgenas shrink`` end here (and ``edgenas export --checkpoint``
uses the same export settings), so the file a user takes away is always made the same
way: exported with dynamic batch, height and width, verified against PyTorch on a real
validation image at the deploy size and at a second size, then profiled at the deploy
size on the run's device. The latency is reported with that size and with how it was
obtained (:func:`latency_label`), because "12 ms" means nothing without either.

A final model also gets a fixed-size twin, ``<name>.static.onnx``: the same network
exported at the deploy size only. With a fixed size onnxsim folds the shape arithmetic
that a dynamic graph runs on every inference, and onnxruntime plans its memory once;
`benchmarks/bench_export_static_vs_dynamic.py` measured the twin up to 37 % faster on
this CPU for networks with many resizes and reshapes (U-Net 0.63-0.71x, the default
segmentation genotype 0.76-0.80x, FastDepth 0.89-0.93x) and no different for plain SR
networks (ESPCN 0.99x at 120x160). It is measured the same way, right after the
any-size file, and reported beside it with the ratio and a verdict (faster below
:data:`FASTER`); the any-size file stays the run's headline. A search's report judges
a latency target on the twin, though: the search measured every candidate as a plain
fixed-size export at the deploy size, which measured like the twin and unlike the
any-size file (:mod:`edgenas.search.report`). The twin is optional: if it cannot be
made or measured, the run says why in one line and goes on without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads lazily: the reports use the text helpers without it
    import torch
    from torch import nn

# How a device kind's figure was obtained, for reports: an emulated phone runs the
# model on this host, so its figure is not the phone's.
LATENCY_SOURCES = {"host": "measured", "openvino": "measured", "android": "measured",
                   "emulated": "emulated", "predicted": "predicted"}  # fmt: skip


# Below this ratio to the any-size file the fixed-size twin is called faster: one
# measurement of each, one after the other, differs by a few percent on a quiet host.
FASTER = 0.95


@dataclass(frozen=True)
class FixedSizeFile:
    """The fixed-size twin of a deployed model: exported at the deploy size only (batch
    1 included), measured right after the any-size file."""

    onnx_path: str
    latency_path: str
    latency_ms: float
    # latency_ms / the any-size file's (None when that measured 0 ms)
    ratio: float | None = None

    @property
    def faster(self) -> bool:
        """Whether it measured clearly faster than the any-size file."""
        return self.ratio is not None and self.ratio < FASTER

    def verdict(self) -> str:
        """What the user should make of it, for logs and reports."""
        return "faster, use it where the input size is fixed" if self.faster else "no faster"


@dataclass(frozen=True)
class DeployedModel:
    """The exported file of a run and its latency at the deploy size."""

    onnx_path: str
    latency_path: str
    input_shape: tuple[int, ...]
    latency_ms: float
    device: str
    device_kind: str
    max_rel_err: float
    fixed: FixedSizeFile | None = None

    @property
    def latency_source(self) -> str:
        """``measured``, ``emulated`` or ``predicted``."""
        return LATENCY_SOURCES.get(self.device_kind, "measured")

    def latency_text(self) -> str:
        """E.g. ``17.6 ms at 1x3x120x160 on cpu (measured)``."""
        return latency_label(self.latency_ms, self.input_shape, self.device, self.device_kind)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (with ``latency_source``)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["latency_source"] = self.latency_source
        return data


def fixed_size_text(deployed: dict) -> str | None:
    """The fixed-size twin from :meth:`DeployedModel.to_dict`, e.g. ``runs/x/best.static.onnx:
    3.35 ms at 1x3x120x160 on cpu (measured), 0.80x the any-size file: faster, use it
    where the input size is fixed``; None when the run made no twin."""
    data = deployed.get("fixed") if deployed else None
    if not data:
        return None
    fixed = FixedSizeFile(**data)
    text = f"{fixed.onnx_path}: " + latency_label(
        fixed.latency_ms,
        deployed.get("input_shape", ()),
        deployed.get("device", "?"),
        deployed.get("device_kind", "host"),
    )
    if fixed.ratio is None:
        return text
    return f"{text}, {fixed.ratio:.2f}x the any-size file: {fixed.verdict()}"


def latency_label(
    latency_ms: float, input_shape: tuple[int, ...] | list[int], device: str, kind: str
) -> str:
    """A latency with its input size, device and source, e.g. for reports and logs."""
    size = "x".join(str(int(d)) for d in input_shape)
    return f"{latency_ms:.2f} ms at {size} on {device} ({LATENCY_SOURCES.get(kind, kind)})"


def summary_latency_text(summary: dict, fallback_hw, fallback_device: str) -> str | None:
    """A run summary's latency with size, device and source, for reports; None if the run
    measured none. From ``summary["deployed"]`` (:meth:`DeployedModel.to_dict`); runs
    older than it only stored ``latency_ms`` and ``device``, measured at ``fallback_hw``."""
    deployed = summary.get("deployed") or {}
    if deployed.get("latency_ms") is not None:
        return latency_label(
            deployed["latency_ms"],
            deployed["input_shape"],
            deployed["device"],
            deployed.get("device_kind", "host"),
        )
    if summary.get("latency_ms") is not None:
        device = summary.get("device") or fallback_device
        return latency_label(summary["latency_ms"], (1, 3, *fallback_hw), device, "host")
    return None


def deploy_example(image: torch.Tensor, deploy_shape: tuple[int, ...]) -> torch.Tensor:
    """A real validation image (CHW or NCHW) resized to the deploy size, to verify with.

    Networks are verified on data like what they will see: noise can push trained
    activations to extremes where float32 rounding dominates the comparison.
    """
    import torch

    batch = image[None] if image.dim() == 3 else image[:1]
    return torch.nn.functional.interpolate(
        batch.float(), size=tuple(deploy_shape[2:]), mode="bilinear", align_corners=False
    )


def finalise_model(
    model: nn.Module,
    run_dir: str | Path,
    deploy_shape: tuple[int, ...],
    example: torch.Tensor,
    device,
    *,
    threads: int | None = None,
    backend_options: dict | None = None,
    profiler=None,
    metadata: dict[str, str] | None = None,
    name: str = "best",
    fixed_size: bool = False,
    log=print,
) -> DeployedModel:
    """Export ``model`` to ``run_dir/<name>.onnx`` (dynamic, verified) and profile it.

    Args:
        model: the trained network (CPU).
        run_dir: where ``<name>.onnx`` and ``<name>.latency.json`` are written.
        deploy_shape: NCHW shape the latency is measured at.
        example: a real input of ``deploy_shape`` to verify with (:func:`deploy_example`).
        device: a device name or catalog entry (``edgenas devices list``).
        threads: device threads (None: the device's default).
        backend_options: e.g. ``{"serial": ...}`` for adb devices.
        profiler: ``profiler(onnx_path, input_shapes) -> LatencyResult`` measures the
            file instead of a local backend of ``device`` (a device on another
            machine: :meth:`edgenas.search.latency.LatencyService.profile` in a Ray actor).
        metadata: extra ``edgenas.*`` metadata stored in the ONNX file.
        name: file stem.
        fixed_size: also write ``<name>.static.onnx`` (deploy size only, verified) and
            ``<name>.static.latency.json`` (the module docstring says why). A twin that
            fails to export is reported in one line; the any-size file still stands.
        log: progress messages.
    """
    from edgenas.devices.modelinfo import shapes_for_single_input
    from edgenas.devices.profile import profile_model
    from edgenas.devices.protocol import Protocol
    from edgenas.devices.result import write_atomic
    from edgenas.export import export_onnx

    run_dir = Path(run_dir)
    onnx_path = run_dir / f"{name}.onnx"
    _remove_twin(run_dir, name)  # an earlier training's twin must not outlive its weights
    report = export_onnx(
        model,
        tuple(deploy_shape),
        onnx_path,
        dynamic=True,
        example=example,
        metadata={"trained": "true", **(metadata or {})},
    )
    device_name = device if isinstance(device, str) else device.name

    def measure(path: Path):
        log(f"measuring {path.name} on {device_name} at {'x'.join(map(str, deploy_shape))}")
        shapes = shapes_for_single_input(path, tuple(deploy_shape))
        if profiler is not None:
            return profiler(path, shapes)
        return profile_model(
            path,
            device,
            Protocol(),
            threads=threads,
            input_shapes=shapes,
            backend_options=backend_options,
        )

    latency = measure(onnx_path)
    latency_path = run_dir / f"{name}.latency.json"
    write_atomic(latency_path, latency.to_json() + "\n")
    fixed = None
    if fixed_size:
        fixed, why_not = _fixed_size_twin(
            model, run_dir, deploy_shape, example, metadata, name, measure, latency.median_ms
        )
        if fixed is None:
            log(f"no fixed-size {name}.static.onnx ({why_not}); {onnx_path.name} stands")
    deployed = DeployedModel(
        onnx_path=str(onnx_path),
        latency_path=str(latency_path),
        input_shape=tuple(int(d) for d in deploy_shape),
        latency_ms=latency.median_ms,
        device=latency.device.get("name", device_name),
        device_kind=latency.device.get("kind", "host"),
        max_rel_err=report.max_rel_err,
        fixed=fixed,
    )
    if fixed is not None:
        log(f"fixed-size {fixed_size_text(deployed.to_dict())}")
    return deployed


def _fixed_size_twin(
    model, run_dir, deploy_shape, example, metadata, name, measure, any_ms: float = 0.0
):
    """``(FixedSizeFile, None)`` (its ratio to ``any_ms``, the any-size file's latency),
    or ``(None, why)`` when ``<name>.static.onnx`` cannot
    be exported, verified or measured; nothing of it is left behind then, so an
    optional file never costs the run its model."""
    from edgenas.devices.result import write_atomic
    from edgenas.errors import first_line
    from edgenas.export import export_onnx

    path = run_dir / f"{name}.static.onnx"
    latency_path = run_dir / f"{name}.static.latency.json"
    try:
        export_onnx(
            model,
            tuple(deploy_shape),
            path,
            dynamic=False,
            example=example,
            metadata={"trained": "true", **(metadata or {})},
        )
        latency = measure(path)
        write_atomic(latency_path, latency.to_json() + "\n")
    except (KeyboardInterrupt, SystemExit):
        _remove_twin(run_dir, name)
        raise
    except Exception as err:  # an optional file: say why and keep the run
        _remove_twin(run_dir, name)
        return None, first_line(err)
    ratio = latency.median_ms / any_ms if any_ms > 0 else None
    return FixedSizeFile(str(path), str(latency_path), latency.median_ms, ratio), None


def _remove_twin(run_dir: Path, name: str) -> None:
    """Remove ``<name>.static.onnx`` and its latency file (an earlier run's, or this
    one's half-made twin), so that no twin is left beside weights it was not made from."""
    for suffix in (".static.onnx", ".static.latency.json"):
        (run_dir / f"{name}{suffix}").unlink(missing_ok=True)
