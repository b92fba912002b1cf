"""Reference baselines beside a run's model: trained, measured and tabulated the same way.

A searched (or shrunk) network is only worth something next to what a user would
otherwise pick, so ``edgenas search`` and ``edgenas shrink`` end by training the task's
reference models (:mod:`edgenas.models.reference`) with the run's final budget, data,
recipe and seed (:func:`edgenas.training.train`, each model's ``recipe`` overrides on top,
as ``benchmarks/bench_train_baselines.py`` does), scoring them on the same validation
data and exporting and measuring them at the deploy size on the run's device
(:func:`edgenas.finalise.finalise_model`, files ``baselines/baseline-NAME.onnx`` and
``.latency.json``). Non-learned models (bicubic upscaling) are only evaluated.

:func:`train_baselines` returns plain JSON rows, stored in the run summary under
``"baselines"``; :func:`comparison_table` and :func:`metric_text` render them (and the
run's own model) for the reports. This module imports torch lazily, so the reports can
use the rendering helpers cheaply.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edgenas.errors import UserError, first_line

# Cheap defaults per task: one learned model (two for SR, where bicubic costs nothing).
DEFAULT_BASELINES: dict[str, tuple[str, ...]] = {
    "sr": ("bicubic", "espcn"),
    "segmentation": ("unet",),
    "depth": ("fastdepth",),
    "classification": (),
}

# Metrics in their own units: (key, label, format). The first is the task's headline.
METRIC_UNITS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "sr": (("psnr", "PSNR", "{:.2f} dB"), ("ssim", "SSIM", "{:.4f}")),
    "segmentation": (("miou", "mIoU", "{:.4f}"), ("pixel_acc", "pixel accuracy", "{:.4f}")),
    "depth": (
        ("rel", "REL", "{:.4f}"),
        ("rmse", "RMSE", "{:.3f} m"),
        ("delta1", "delta1", "{:.4f}"),
    ),
    "classification": (("top1", "top-1", "{:.4f}"),),
}

Log = Callable[[str], None]


def _canonical(task) -> str:
    from edgenas.task_names import canonical_task

    return canonical_task(task if isinstance(task, str) else task.name)


def default_baselines(task) -> tuple[str, ...]:
    """The reference models a run of ``task`` (name, alias or Task) trains by default."""
    return DEFAULT_BASELINES.get(_canonical(task), ())


def resolve_baselines(task, names: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` checked against ``task`` (``None``: the task's defaults; empty: none).

    Raises:
        UserError: an unknown name, or a reference model of another task.
    """
    if names is None:
        return default_baselines(task)
    from edgenas.models.reference import REFERENCE_MODELS, reference_names

    wanted = _canonical(task)
    own = reference_names(wanted)
    resolved: list[str] = []
    for name in names:
        if name not in REFERENCE_MODELS:
            raise UserError(
                f"unknown baseline {name!r} for {wanted} (choose from {', '.join(own) or 'none'})"
            )
        if name not in own:
            raise UserError(
                f"baseline {name!r} is a {REFERENCE_MODELS[name].task} model, not {wanted} "
                f"(choose from {', '.join(own) or 'none'})"
            )
        if name not in resolved:
            resolved.append(name)
    return tuple(resolved)


def parse_baselines(text: str | None) -> tuple[str, ...] | None:
    """``--baselines`` text: ``espcn,fsrcnn`` -> names, ``none`` -> (), unset -> None."""
    if text is None:
        return None
    if text.strip().lower() in ("none", ""):
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def samples_and_baselines(
    model,
    task,
    train_source,
    val_data,
    budget,
    train_config,
    deploy_shape: Sequence[int],
    device,
    *,
    run_dir: str | Path,
    names: Sequence[str] | None = None,
    threads: int | None = None,
    backend_options: dict | None = None,
    profiler=None,
    log: Log = print,
) -> list[dict]:
    """The end of a run, shared by search and shrink: ``run_dir/samples.png`` of the
    final ``model``, then :func:`train_baselines` (verified on the first validation image
    at the deploy size); returns the baseline rows (empty when ``names`` is empty)."""
    from edgenas.finalise import deploy_example
    from edgenas.visualize import write_samples

    write_samples(model, task, val_data, Path(run_dir) / "samples.png")
    names = resolve_baselines(task, names)
    if not names:
        return []
    log(f"training the baselines {', '.join(names)} for the same budget")
    return train_baselines(
        task,
        train_source,
        val_data,
        budget,
        train_config,
        deploy_shape,
        deploy_example(val_data[0][0], tuple(deploy_shape)),
        device,
        run_dir=run_dir,
        names=names,
        threads=threads,
        backend_options=backend_options,
        profiler=profiler,
        log=log,
    )


def train_baselines(
    task,
    train_source,
    val_data,
    budget,
    train_config,
    deploy_shape: Sequence[int],
    example,
    device,
    *,
    run_dir: str | Path,
    names: Sequence[str] | None = None,
    threads: int | None = None,
    backend_options: dict | None = None,
    profiler=None,
    eval_input: tuple[int, int] | None = None,
    log: Log = print,
) -> list[dict]:
    """Train, evaluate, export and measure the reference baselines of a run.

    Args:
        task: the run's :class:`~edgenas.tasks.Task` (or its name).
        train_source: the training data the run's final model trained on (a dataset or
            an in-memory bank).
        val_data: the validation dataset the final model was scored on.
        budget: the final model's :class:`~edgenas.training.Budget`.
        train_config: the final model's :class:`~edgenas.training.TrainConfig`; each
            reference model's ``recipe`` fields replace those of it.
        deploy_shape: NCHW size latency and MACs are counted at (SR: the LR size).
        example: a real validation input at ``deploy_shape`` to verify the export with
            (:func:`edgenas.finalise.deploy_example`).
        device: device name or catalog entry the latency is measured on.
        run_dir: the run folder; files go to ``run_dir/baselines/``.
        names: reference model names (None: :func:`default_baselines`; empty: none).
        threads, backend_options, profiler: as for :func:`edgenas.finalise.finalise_model`.
        eval_input: (H, W) validation images are resized to for scoring, as for the
            final model (:func:`edgenas.training.train`).
        log: progress messages.

    Returns one JSON-ready row per model: ``name``, ``description``, ``learned``,
    ``params``, ``macs``, ``metrics``, ``accuracy`` (the task's normalised accuracy),
    ``latency_ms``, ``latency_text`` (with size, device and how it was obtained),
    ``latency_source``, ``device``, ``device_kind``, ``input_shape``, ``onnx``,
    ``train_seconds``, ``steps``. A model that fails gets a row with ``error`` instead
    of the figures it could not produce, so one broken baseline never loses a run.
    """
    import torch

    from edgenas.finalise import finalise_model
    from edgenas.models.complexity import count_macs, count_params
    from edgenas.models.reference import REFERENCE_MODELS, build_reference
    from edgenas.tasks import get_task
    from edgenas.training import evaluate, train

    task = get_task(task) if isinstance(task, str) else task
    names = resolve_baselines(task, names)
    info = getattr(val_data, "info", None) or getattr(train_source, "info", None)
    shape = tuple(int(d) for d in deploy_shape)
    folder = Path(run_dir) / "baselines"
    if names:
        folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        entry = REFERENCE_MODELS[name]
        options = {k: v for k, v in task.head_options(info).items() if k in entry.defaults}
        row: dict = {
            "name": name,
            "description": entry.description,
            "learned": entry.learned,
            "input_shape": list(shape),
        }
        start = time.perf_counter()
        try:
            torch.manual_seed(train_config.seed)
            model = build_reference(name, task.name, **options)
            row["params"] = count_params(model)
            row["macs"] = count_macs(model, shape)
            if entry.learned:
                log(f"baseline {name}: training for the final budget")
                config = dataclasses.replace(train_config, **entry.recipe)
                result = train(
                    model, task, train_source, val_data, budget, config, eval_input=eval_input
                )
                metrics, steps = result.metrics, result.steps
            else:
                log(f"baseline {name}: not trained (no weights to learn)")
                metrics = evaluate(
                    model, task, val_data, batch_size=train_config.eval_batch_size,
                    input_size=eval_input,
                )  # fmt: skip
                steps = 0
            row["train_seconds"] = time.perf_counter() - start
            row["steps"] = steps
            row["metrics"] = {k: float(v) for k, v in metrics.items()}
            accuracy = task.normalised_accuracy(metrics) if metrics else 0.0
            row["accuracy"] = 0.0 if math.isnan(accuracy) else float(accuracy)
            deployed = finalise_model(
                model.eval(),
                folder,
                shape,
                example,
                device,
                threads=threads,
                backend_options=backend_options,
                profiler=profiler,
                metadata={"baseline": name, "final_metrics": _json(row["metrics"])},
                name=f"baseline-{name}",
                log=log,
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # one broken baseline must not lose the run
            message = first_line(err)
            log(f"baseline {name} failed: {message}")
            row["error"] = f"{type(err).__name__}: {message}"
            rows.append(row)
            continue
        row.update(
            latency_ms=deployed.latency_ms,
            latency_text=deployed.latency_text(),
            latency_source=deployed.latency_source,
            device=deployed.device,
            device_kind=deployed.device_kind,
            onnx=deployed.onnx_path,
        )
        log(f"baseline {name}: {metric_text(task.name, row['metrics'])}; {row['latency_text']}")
        rows.append(row)
    return rows


def _json(values: dict) -> str:
    import json

    return json.dumps(values)


# ----- presentation --------------------------------------------------------------------------


# The columns of ``samples.png`` (:mod:`edgenas.visualize`), for report captions.
SAMPLE_COLUMNS = {
    "sr": "bicubic upscaling of the input | network | high-resolution ground truth",
    "segmentation": "input | predicted classes | ground-truth classes (legend below)",
    "depth": "input | predicted depth | ground-truth depth (invalid pixels black)",
    "classification": "input titled with predicted and true class",
}


def sample_columns(task: str) -> str:
    """What the columns of a run's ``samples.png`` show, for a caption."""
    return SAMPLE_COLUMNS.get(_canonical(task), "input | prediction | ground truth")


def metric_parts(task: str, metrics: dict | None) -> list[tuple[str, str]]:
    """``(label, value with unit)`` for the task's metrics that ``metrics`` holds, in
    the task's order, then any others (plain numbers)."""
    if not metrics:
        return []
    known = METRIC_UNITS.get(_canonical(task), ())
    parts = []
    for key, label, fmt in known:
        value = metrics.get(key)
        if isinstance(value, int | float):
            parts.append((label, "-" if math.isnan(value) else fmt.format(value)))
    listed = {key for key, _, _ in known}
    for key, value in metrics.items():
        # Per-class entries (``iou/<class>``, lists) belong in their own tables.
        scalar = isinstance(value, int | float) and not isinstance(value, bool)
        if key not in listed and scalar and "/" not in key:
            parts.append((key, f"{value:.4g}"))
    return parts


def metric_text(task: str, metrics: dict | None) -> str:
    """E.g. ``PSNR 32.41 dB, SSIM 0.9102``; ``-`` when there are none."""
    parts = metric_parts(task, metrics)
    return ", ".join(f"{label} {value}" for label, value in parts) if parts else "-"


def _count(value) -> str:
    if value is None:
        return "-"
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.0f}"


# How far held-out scores move with the training seed alone, measured with
# benchmarks/bench_train_seeds.py (docs/search.md, "Over several seeds"): what was
# measured, and the difference between two rows below which seed noise can explain it.
SEED_SPREAD: dict[str, tuple[str, str]] = {
    "segmentation": (
        "in 300 s trainings on CamVid (U-Net and the default genotype, 5 seeds), one "
        "network's mIoU moved by up to 0.03-0.04 from seed to seed, and the difference "
        "between the two from -0.04 to +0.02",
        "0.04 mIoU",
    ),
    "sr": (
        "in 300 s trainings on T91 -> Set5 (ESPCN and the default genotype, 3 seeds), one "
        "network's PSNR moved by up to 0.02-0.03 dB from seed to seed",
        "0.03 dB",
    ),
}

_SEEDS_DOC = 'docs/search.md, "Over several seeds"'


def seed_note(task: str) -> str:
    """The sentence under a comparison table: every trained row is one training with one
    seed, and how much scores moved with the seed where that was measured."""
    measured = SEED_SPREAD.get(_canonical(task))
    if measured:
        spread, noise = measured
        return (
            f"Each trained row is one training with one seed; {spread}. A difference "
            f"under {noise} may be seed noise ({_SEEDS_DOC})."
        )
    return (
        "Each trained row is one training with one seed; a network's score moves with the "
        f"seed, so a small difference between rows may be seed noise ({_SEEDS_DOC})."
    )


def comparison_table(task: str, rows: Sequence[dict]) -> list[str]:
    """Markdown lines: one row per model (``name``, ``metrics``, ``params``, ``macs``,
    ``latency_text`` or ``latency_ms``, optional ``error``), metrics in their units."""
    known = METRIC_UNITS.get(_canonical(task), ())
    present = [
        (key, label, fmt)
        for key, label, fmt in known
        if any(key in (r.get("metrics") or {}) for r in rows)
    ]
    head = ["model", *[label for _, label, _ in present], "params", "MACs", "latency"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        metrics = r.get("metrics") or {}
        cells = [r["name"]]
        for key, _, fmt in present:
            value = metrics.get(key)
            ok = isinstance(value, int | float) and not math.isnan(value)
            cells.append(fmt.format(value) if ok else "-")
        cells += [_count(r.get("params")), _count(r.get("macs"))]
        if r.get("error"):
            cells.append(f"failed: {r['error']}")
        elif r.get("latency_text"):
            cells.append(r["latency_text"])
        elif r.get("latency_ms") is not None:
            cells.append(f"{r['latency_ms']:.2f} ms")
        else:
            cells.append("-")
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return lines


def per_class_iou(metrics: dict, class_names) -> list[tuple[str, float]]:
    """``(class, IoU)`` pairs if the metrics carry per-class IoU (``iou_per_class`` as a
    list or a name -> value mapping, or ``iou/<class>`` keys); else empty."""
    values = metrics.get("iou_per_class")
    names = list(class_names or ())
    if isinstance(values, dict):  # None: a class in neither labels nor predictions
        return [(str(k), math.nan if v is None else float(v)) for k, v in values.items()]
    if isinstance(values, list | tuple):
        return [
            (names[i] if i < len(names) else f"class {i}", float(v)) for i, v in enumerate(values)
        ]
    return [(k[4:], float(v)) for k, v in metrics.items() if k.startswith("iou/")]


def iou_table(pairs: list[tuple[str, float]]) -> list[str]:
    """Markdown table of ``(class, IoU)`` pairs."""
    lines = ["### Per-class IoU", "", "| class | IoU |", "|---|---|"]
    for name, value in pairs:
        lines.append(f"| {name} | {'-' if math.isnan(value) else f'{value:.4f}'} |")
    return [*lines, ""]
