"""Measure every case of a spec on every device, optionally A/B against a baseline spec.

Measuring is the device layer's :func:`edgenas.devices.profile_model`; this module only
decides what to measure, in which order, and collects the results. In A/B mode the
baseline model (A) and the candidate (B) are measured in alternating sessions
(A, B, A, B, ...) so that a change in machine load hits both sides alike.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgenas.bench.results import BenchEntry, BenchFile
from edgenas.bench.spec import BenchCase, BenchProtocol, BenchSpec
from edgenas.errors import UserError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReadyModel:
    """An ONNX file ready to measure, and the input shapes to measure it at."""

    path: str
    input_shapes: dict | None
    source: dict


def prepare_model(case: BenchCase, folder: Path, label: str = "") -> ReadyModel:
    """The case's ONNX file (a genotype is built and exported into ``folder`` first)."""
    from edgenas.devices.modelinfo import shapes_for_single_input

    if case.onnx is not None:
        shapes = None if case.input is None else shapes_for_single_input(case.onnx, case.input)
        return ReadyModel(str(case.onnx), shapes, case.source())
    path = folder / f"{case.name}{label}.onnx"
    export_genotype(case, path)
    return ReadyModel(str(path), None, case.source())


def check_case(case: BenchCase) -> None:
    """The cheap checks (file present, genotype and task readable, the genotype's network
    within memory at its input), before anything runs."""
    from edgenas.network_memory import check_genotype_fits
    from edgenas.parsing import parse_genotype, parse_task

    where = f"case {case.name!r}: "
    if case.onnx is not None:
        if not case.onnx.is_file():
            raise UserError(f"{where}model file {case.onnx} not found")
        return
    try:
        genotype = parse_genotype(case.genotype or "")
        parse_task(case.task)
        classes = case.task_options.get("num_classes")
        check_genotype_fits(genotype, case.input, option="input", classes=classes)
    except UserError as err:
        raise UserError(where + str(err)) from None


def export_genotype(case: BenchCase, path: Path) -> None:
    """Build the case's genotype for its task and export it (verified) to ``path``."""
    from edgenas.latency_table import export_model
    from edgenas.models.builder import build_model
    from edgenas.parsing import parse_genotype, parse_task

    genotype = parse_genotype(case.genotype or "")
    try:
        model = build_model(genotype, parse_task(case.task), **case.task_options)
    except (ValueError, TypeError) as err:
        raise UserError(f"case {case.name!r}: {err}") from None
    export_model(model.eval(), case.input, path, verified=True)


def device_protocol(protocol: BenchProtocol, entry, sessions: int | None = None):
    """The device layer's Protocol for a case on a device (cooldown from the entry)."""
    from edgenas.devices.protocol import Protocol

    return Protocol(
        warmup_runs=protocol.warmup,
        runs=protocol.runs,
        min_time_s=protocol.min_time,
        sessions=protocol.sessions if sessions is None else sessions,
        cooldown_s=entry.cooldown_s if protocol.cooldown is None else protocol.cooldown,
    )


def measure(model: ReadyModel, entry, protocol: BenchProtocol, progress: Progress, label: str):
    """All sessions of one model on one device, one after the other."""
    from edgenas.devices.profile import profile_model

    def on_session(i, timings):
        progress(f"{label}: session {i + 1}/{protocol.sessions} {timings.median:.3f} ms")

    return profile_model(
        model.path,
        entry,
        device_protocol(protocol, entry),
        threads=protocol.threads,
        input_shapes=model.input_shapes,
        on_session=on_session,
    )


def measure_interleaved(
    a: ReadyModel, b: ReadyModel, entry, protocol: BenchProtocol, progress: Progress, label: str
):
    """Sessions of A and B alternating (A, B, A, B, ...); returns (result A, result B).

    Each session is a one-session ``profile_model`` call, so each gets a fresh runtime
    session as in the sequential protocol; the per-call results are merged.
    """
    import time

    from edgenas.devices.profile import profile_model

    one = device_protocol(protocol, entry, sessions=1)
    runs: dict[str, list] = {"A": [], "B": []}
    for i in range(protocol.sessions):
        if i and one.cooldown_s:
            time.sleep(one.cooldown_s)
        for side, model in (("A", a), ("B", b)):
            result = profile_model(
                model.path,
                entry,
                one,
                threads=protocol.threads,
                input_shapes=model.input_shapes,
            )
            runs[side].append(result)
        progress(
            f"{label}: session {i + 1}/{protocol.sessions} "
            f"A {runs['A'][-1].median_ms:.3f} ms, B {runs['B'][-1].median_ms:.3f} ms"
        )
    return merge_sessions(runs["A"], protocol.sessions), merge_sessions(
        runs["B"], protocol.sessions
    )


def merge_sessions(results: list, sessions: int):
    """One LatencyResult from one-session results of the same model and device."""
    first = results[0]
    first.sessions = [s for r in results for s in r.sessions]
    first.protocol = {**first.protocol, "sessions": sessions, "interleaved": True}
    return first


def _record_genotype(result, case: BenchCase) -> None:
    if case.genotype is not None:
        result.model["genotype"] = case.genotype
        result.model["task"] = case.task


def run_spec(
    spec: BenchSpec,
    *,
    kind: str = "results",
    ab_spec: BenchSpec | None = None,
    devices_file: str | None = None,
    progress: Progress = lambda message: None,
) -> BenchFile:
    """Measure every case on every device; with ``ab_spec``, A/B against its cases.

    All models are prepared (genotypes exported, files checked) and all devices looked
    up before the first measurement, so bad input fails in seconds, not mid-run.
    A case missing from ``ab_spec`` is measured alone (it has no baseline).
    """
    from edgenas.devices.backends import check_availability
    from edgenas.devices.catalog import load_catalog
    from edgenas.devices.modelinfo import sha256_file

    catalog = load_catalog(devices_file)
    entries_by_name = {}
    for case in spec.cases:
        for name in case.devices:
            entry = catalog.get(name)
            available = check_availability(entry)
            if not available.usable:
                raise UserError(
                    f"case {case.name!r}: device {name} is not usable: {available.reason}"
                )
            entries_by_name[name] = entry
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    out: list[BenchEntry] = []
    with tempfile.TemporaryDirectory(prefix="edgenas-bench-") as tmp:
        folder = Path(tmp)
        ready = {}
        for case in [*spec.cases, *(ab_spec.cases if ab_spec is not None else ())]:
            check_case(case)
        for case in spec.cases:
            b = prepare_model(case, folder)
            base_case = ab_spec.case(case.name) if ab_spec is not None else None
            a = prepare_model(base_case, folder, ".base") if base_case is not None else None
            ready[case.name] = (a, b, base_case)
        for case in spec.cases:
            a, b, base_case = ready[case.name]
            for name in case.devices:
                entry = entries_by_name[name]
                label = f"{case.name} on {name}"
                if a is None:
                    result, base_result = measure(b, entry, case.protocol, progress, label), None
                else:
                    base_result, result = measure_interleaved(
                        a, b, entry, case.protocol, progress, label
                    )
                    _record_genotype(base_result, base_case)
                _record_genotype(result, case)
                out.append(
                    BenchEntry(
                        case=case.name,
                        device=name,
                        threshold=case.threshold,
                        source=b.source,
                        result=result,
                        ab_baseline=base_result,
                        ab_source=None if a is None else a.source,
                    )
                )
    spec_info: dict = {"path": None if spec.path is None else str(spec.path)}
    if spec.path is not None:
        spec_info["sha256"] = sha256_file(spec.path)
    if ab_spec is not None:
        spec_info["ab_baseline_spec"] = None if ab_spec.path is None else str(ab_spec.path)
    return BenchFile(
        kind=kind,
        spec=spec_info,
        threshold=spec.threshold,
        alpha=spec.alpha,
        entries=out,
        environment={"started": started, **_versions()},
    )


def _versions() -> dict:
    from edgenas import __version__

    return {"edgenas_version": __version__}
