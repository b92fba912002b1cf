"""What the dashboard shows, derived from a :class:`~edgenas.tui.reader.Snapshot`.

Pure functions from store rows to plain frozen dataclasses (no Textual import): the
widgets get a :class:`RunState` and only format it. Everything here is computed from
the candidates and the event log, so a finished run and a live one look the same. The
plots come from the candidate rows (the trained ones), the search panel, device and
log from the bounded parts of the log the reader keeps (:class:`EventDigest`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgenas.tui.reader import (
    CandidateCounts,
    EventDigest,
    PageQuery,
    PoolSummary,
    Snapshot,
)

from edgenas.store import Candidate, Event

# The metric each task reports as its accuracy (edgenas.tasks.registry, which imports
# torch, so the names are repeated here; an unknown task falls back to "accuracy").
PRIMARY_METRIC = {
    "depth": "delta1",
    "segmentation": "miou",
    "sr": "psnr",
    "classification": "top1",
}
RESOURCE_LABEL = {"params": "parameters", "flops": "MACs", "latency_ms": "latency ms"}
LOG_LINES = 500


@dataclass(frozen=True)
class Header:
    """The run's identity, targets and progress."""

    name: str
    kind: str
    status: str
    task: str = "?"
    data: str = "built-in demo"
    device: str = "?"
    targets: str = "-"
    shrink: str | None = None  # HR-NAS shrinking: its cost and lambda
    alpha: float | None = None
    elapsed_s: float = 0.0
    trained: int = 0
    planned: int | None = None
    eta_s: float | None = None
    pool: PoolProgress | None = None  # while the pool is being scored


@dataclass(frozen=True)
class PoolProgress:
    """Scoring of the pool, from its latest ``pool_progress`` event."""

    scored: int
    total: int
    rate_per_s: float | None = None
    eta_s: float | None = None


@dataclass(frozen=True)
class ProgressPoint:
    """One trained candidate, in training order (the LDP paper's Fig. 9 axes)."""

    iteration: int
    candidate_id: int | None
    accuracy: float | None
    grade: float | None
    params: float | None
    flops: float | None
    latency_ms: float | None


@dataclass(frozen=True)
class ParetoPoint:
    """A trained candidate in the accuracy / resource plane."""

    candidate_id: int
    resource: float
    accuracy: float
    on_front: bool
    is_best: bool


@dataclass(frozen=True)
class CandidateRow:
    """One line of the candidates table."""

    id: int
    parent_id: int | None
    genotype: str
    origin: str
    status: str
    params: int | None
    flops: int | None
    latency_ms: float | None
    latency_source: str | None
    score: float | None
    metric: float | None
    accuracy: float | None
    grade: float | None
    reward: float | None
    iteration: int | None
    device: str | None = None
    onnx_path: str | None = None
    metrics: tuple[tuple[str, float], ...] = ()
    timings: tuple[tuple[str, float], ...] = ()
    loss_points: Any = ()  # the stored curve, as stored (see loss_history)
    parent_genotype: str | None = None  # what the genotype column shows it against

    @property
    def loss_history(self) -> tuple[tuple[float, float], ...]:
        """(step, loss) of its proxy training: read when shown, not for every row of
        every update (a paper-scale run has hundreds of 64-point curves)."""
        return _curve(self.loss_points)


@dataclass(frozen=True)
class ChildRow:
    """A child proposed from the current architecture."""

    candidate_id: int | None
    genotype: str
    reward: float | None
    score: float | None
    grade: float | None
    trained: bool


@dataclass(frozen=True)
class AtsState:
    """Assisted Tabu Search right now: the parent, the current architecture, its
    children with their rewards, the tabu list and the candidate list."""

    parent_index: int | None = None
    parents_total: int = 0
    parent_genotype: str | None = None
    current_id: int | None = None
    current_genotype: str | None = None
    current_grade: float | None = None
    step: int | None = None
    children: tuple[ChildRow, ...] = ()
    tabu: tuple[str, ...] = ()
    candidate_list: tuple[str, ...] = ()
    moves: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measurement:
    """One latency measurement of a candidate."""

    candidate_id: int | None
    latency_ms: float
    device: str
    ts: float


@dataclass(frozen=True)
class DeviceState:
    """The latency device: recent measurements and, once known, the runtime."""

    device: str = "?"
    target_latency_ms: float | None = None
    measured: int = 0
    predicted: int = 0
    recent: tuple[Measurement, ...] = ()
    runtime: str | None = None
    best_latency_ms: float | None = None


@dataclass(frozen=True)
class ShrinkState:
    """HR-NAS shrinking: numeric fields per step and units kept per block per step."""

    steps: tuple[dict[str, float], ...] = ()
    blocks: tuple[str, ...] = ()
    units: tuple[tuple[int, ...], ...] = ()  # units[step][block]


@dataclass(frozen=True)
class LogLine:
    """One event of the log, formatted."""

    id: int
    ts: float
    kind: str
    text: str


@dataclass(frozen=True)
class RunState:
    """Everything the dashboard shows; built by :func:`derive`."""

    run_dir: Path
    header: Header
    resource: str = "params"
    metric_name: str = "accuracy"
    score_name: str = "NASWOT"  # the run's training-free score (score_label)
    progress: tuple[ProgressPoint, ...] = ()
    pareto: tuple[ParetoPoint, ...] = ()
    rows: tuple[CandidateRow, ...] = ()  # the searched rows (not the pool's scored-only ones)
    page: tuple[CandidateRow, ...] = ()  # the page of the candidates table
    page_query: PageQuery | None = None
    page_total: int = 0  # rows in the page's subset
    partial: bool = False  # the untrained candidates are not read yet (Snapshot.partial)
    counts: CandidateCounts = field(default_factory=CandidateCounts)
    pool: PoolSummary = field(default_factory=PoolSummary)
    ats: AtsState = field(default_factory=AtsState)
    device: DeviceState = field(default_factory=DeviceState)
    shrink: ShrinkState = field(default_factory=ShrinkState)
    log: tuple[LogLine, ...] = ()
    best_id: int | None = None
    final_loss: tuple[tuple[float, float], ...] = ()  # (step, loss) of the final training
    error: str | None = None
    version: int = 0
    config: dict[str, Any] = field(default_factory=dict, compare=False)


def short_genotype(genotype: str, width: int = 28) -> str:
    """``S3:ib6_k3_se25_res_c8_n2-...`` cut to ``width`` characters with an ellipsis."""
    return genotype if len(genotype) <= width else genotype[: width - 1] + "…"


def score_label(config: dict[str, Any]) -> str:
    """What a search's ``score`` column holds (``SearchConfig.score``): ``NASWOT``, or
    ``steps/s`` for training speed (runs stored before the choice used NASWOT)."""
    return "steps/s" if config.get("score") == "speed" else "NASWOT"


def primary_resource(config: dict[str, Any]) -> str:
    """The resource of the plots (as ``SearchConfig.primary_resource``)."""
    for name, key in (
        ("latency_ms", "target_latency_ms"),
        ("flops", "target_flops"),
        ("params", "target_params"),
    ):
        if config.get(key) is not None:
            return name
    return "params"


def derive(snapshot: Snapshot, now: float | None = None) -> RunState:
    """The dashboard state of a snapshot; ``now`` is the clock for elapsed time and ETA
    (default: ``time.time()``)."""
    info = snapshot.info
    if info is None:
        waiting = (snapshot.error or "").startswith("no run store")
        status = "waiting" if waiting else "unreadable"
        header = Header(name=snapshot.run_dir.name, kind="?", status=status)
        return RunState(
            run_dir=snapshot.run_dir,
            header=header,
            error=snapshot.error,
            version=snapshot.version,
        )
    config = info.config
    task = str(config.get("task", "?"))
    metric_name = PRIMARY_METRIC.get(task, "accuracy")
    resource = primary_resource(config)
    score_name = score_label(config)
    by_id = {c.id: c for c in snapshot.candidates}
    by_genotype = {c.genotype: c for c in snapshot.candidates}
    trained = [c for c in snapshot.candidates if c.status == "trained" and c.grade is not None]
    best = max(trained, key=lambda c: c.grade or -math.inf, default=None)
    summary_best = (info.summary or {}).get("best_candidate_id")
    best_id = summary_best if summary_best in by_id else (best.id if best else None)
    digest = snapshot.digest
    page = snapshot.page
    return RunState(
        run_dir=snapshot.run_dir,
        header=_header(info, digest, now if now is not None else time.time(), len(trained)),
        resource=resource,
        metric_name=metric_name,
        score_name=score_name,
        progress=_progress(trained),
        pareto=_pareto(trained, resource, best_id),
        rows=tuple(
            _row(c, metric_name, by_id[c.parent_id].genotype if c.parent_id in by_id else None)
            for c in snapshot.candidates
        ),
        page=tuple(_row(c, metric_name, parent) for c, parent in page.rows) if page else (),
        page_query=page.query if page else None,
        page_total=page.total if page else 0,
        partial=snapshot.partial,
        counts=snapshot.counts,
        pool=snapshot.pool,
        ats=_ats(digest, by_genotype, config),
        device=_device(snapshot, config),
        shrink=_shrink(digest.shrink_steps),
        log=tuple(_log_line(e, score_name) for e in snapshot.events[-LOG_LINES:]),
        best_id=best_id,
        final_loss=_curve((info.summary or {}).get("final_loss_history")),
        error=snapshot.error,
        version=snapshot.version,
        config=config,
    )


def _curve(points) -> tuple[tuple[float, float], ...]:
    """A stored loss curve (``[[step, loss], ...]``) as pairs; malformed points dropped."""
    if not isinstance(points, list):
        return ()
    pairs = []
    for point in points:
        if isinstance(point, list | tuple) and len(point) == 2:
            step, loss = _num(point[0]), _num(point[1])
            if step is not None and loss is not None:
                pairs.append((step, loss))
    return tuple(pairs)


def _shrink_settings(config: dict[str, Any], shrink_steps) -> str | None:
    """HR-NAS shrinking: the resource it shrinks and lambda, its weight (the latest
    step's when the run adapts it); None for other runs."""
    if config.get("cost") is None:
        return None
    parts = [f"cost {config['cost']}"]
    steps = [e.payload for e in shrink_steps]
    lam = _num(steps[-1].get("lam")) if steps else None
    if lam is None:
        lam = _num(config.get("lambda"))
    if lam is not None:
        parts.append(f"λ={lam:g}")
    return " ".join(parts)


def _targets(config: dict[str, Any]) -> str:
    parts = []
    if config.get("target_params") is not None:
        parts.append(f"params≤{format_count(config['target_params'])}")
    if config.get("target_flops") is not None:
        parts.append(f"MACs≤{format_count(config['target_flops'])}")
    if config.get("target_latency_ms") is not None:
        parts.append(f"lat≤{config['target_latency_ms']:g}ms")
    return " ".join(parts) or "-"


def _planned(config: dict[str, Any]) -> int | None:
    """Trainings an LDP search does at most: per parent, itself and one child per
    iteration (patience can end a parent early, so the ETA is an upper bound)."""
    try:
        return int(config["parents"]) * (int(config["max_iterations"]) + 1)
    except (KeyError, TypeError, ValueError):
        return None


def _header(info, digest: EventDigest, now: float, trained: int) -> Header:
    config = info.config
    running = info.status == "running"
    end = now if running else info.updated_at
    elapsed = max(0.0, end - info.created_at)
    if info.kind == "hrnas-shrink":
        trained = len(digest.shrink_steps)
        planned = None
        epochs, every = config.get("epochs"), config.get("shrink_every") or 1
        if isinstance(epochs, int) and isinstance(every, int) and every > 0:
            planned = epochs // every + 1  # a step every `every` epochs, and one at the end
    else:
        planned = _planned(config)
    if planned is not None and trained > planned:
        planned = None  # a config this estimate does not understand: no fraction, no ETA
    eta = None
    count, first, last = digest.trainings, digest.first_training_ts, digest.last_training_ts
    if running and planned and trained and count >= 2 and trained < planned:
        per = (last - first) / (count - 1)
        eta = per * (planned - trained)
    alpha = (info.summary or {}).get("alpha", config.get("alpha"))
    return Header(
        name=info.name,
        kind=info.kind,
        status=info.status,
        task=str(config.get("task", "?")),
        data=str(config.get("data") or "built-in demo"),
        device=str(config.get("device", "?")),
        targets=_targets(config),
        shrink=_shrink_settings(config, digest.shrink_steps),
        alpha=float(alpha) if isinstance(alpha, int | float) else None,
        elapsed_s=elapsed,
        trained=trained,
        planned=planned,
        eta_s=eta,
        pool=_pool_progress(digest.pool_progress) if running else None,
    )


def _pool_progress(event: Event | None) -> PoolProgress | None:
    """Progress of the pool's scoring while it lasts (None before and after)."""
    if event is None or event.kind != "pool_progress":
        return None
    p = event.payload
    scored, total = p.get("scored"), p.get("total")
    if not isinstance(scored, int) or not isinstance(total, int) or scored >= total:
        return None
    return PoolProgress(scored, total, _num(p.get("rate_per_s")), _num(p.get("eta_s")))


def _progress(trained: list[Candidate]) -> tuple[ProgressPoint, ...]:
    """The trained candidates in training order, numbered from 1 (as the report's
    progress figure): from the rows, so every one is there however long the log."""
    ordered = sorted(trained, key=lambda c: (c.iteration if c.iteration is not None else -1, c.id))
    return tuple(
        ProgressPoint(
            iteration=number,
            candidate_id=c.id,
            accuracy=_num(c.accuracy),
            grade=_num(c.grade),
            params=_num(c.params),
            flops=_num(c.flops),
            latency_ms=_num(c.latency_ms),
        )
        for number, c in enumerate(ordered, start=1)
    )


def _pareto(
    trained: list[Candidate], resource: str, best_id: int | None
) -> tuple[ParetoPoint, ...]:
    """Trained candidates with the front of (higher accuracy, lower resource) marked."""
    items = [
        (c.id, float(v), float(c.accuracy or 0.0))
        for c in trained
        if (v := getattr(c, resource)) is not None
    ]
    front = front_ids(items)
    return tuple(
        ParetoPoint(cid, res, acc, cid in front, cid == best_id) for cid, res, acc in items
    )


def front_ids(items) -> set:
    """Ids of the ``(id, resource, accuracy)`` items no other item dominates (no more
    resource and no less accuracy, better in one): one sort and a sweep, not a
    comparison of every pair (hundreds of trained candidates at paper scale)."""
    front = set()
    best = -math.inf  # the best accuracy among items of strictly less resource
    ordered = sorted(items, key=lambda item: item[1])
    start = 0
    while start < len(ordered):
        end = start
        while end < len(ordered) and ordered[end][1] == ordered[start][1]:
            end += 1
        group = ordered[start:end]  # the same resource: only its best accuracy can count
        top = max(item[2] for item in group)
        if top > best:
            front.update(item[0] for item in group if item[2] == top)
        best = max(best, top)
        start = end
    return front


def _row(c: Candidate, metric_name: str, parent_genotype: str | None = None) -> CandidateRow:
    return CandidateRow(
        id=c.id,
        parent_id=c.parent_id,
        genotype=c.genotype,
        origin=c.origin,
        status=c.status,
        params=c.params,
        flops=c.flops,
        latency_ms=c.latency_ms,
        latency_source=c.latency_source,
        score=c.score,
        metric=_num(c.metrics.get(metric_name)) if c.metrics else None,
        accuracy=c.accuracy,
        grade=c.grade,
        reward=c.reward,
        iteration=c.iteration,
        device=c.device,
        onnx_path=c.onnx_path,
        metrics=tuple(sorted((k, v) for k, v in (c.metrics or {}).items())),
        timings=tuple(sorted((k, v) for k, v in (c.timings or {}).items())),
        loss_points=getattr(c, "loss_history", None) or (),
        parent_genotype=parent_genotype,
    )


def _ats(digest: EventDigest, by_genotype: dict[str, Candidate], config) -> AtsState:
    """Replay the search's events to find where Assisted Tabu Search is now (the
    events of the current or last parent, after the parents' selection)."""
    parents: list[str] = []
    parent_index = None
    current = None
    step = None
    children: dict[str, ChildRow] = {}
    tabu: tuple[str, ...] = ()
    candidate_list: tuple[str, ...] = ()
    fresh = False  # after a move, the next proposal starts a new set of children
    for event in digest.ats:
        p = event.payload
        if event.kind == "parents_selected":
            parents = list(p.get("genotypes", []))
        elif event.kind == "candidate_trained":
            genotype = p.get("genotype")
            if genotype in parents and (current is None or genotype not in children):
                # A parent is trained first when its tabu search starts.
                parent_index = parents.index(genotype)
                current, step, children = genotype, None, {}
                tabu, candidate_list = (), ()
            elif genotype in children:
                old = children[genotype]
                children[genotype] = ChildRow(
                    old.candidate_id, genotype, old.reward, old.score, _num(p.get("grade")), True
                )
        elif event.kind == "child_proposed":
            if fresh or p.get("parent") != current:
                current, children, fresh = p.get("parent"), {}, False
            genotype = p.get("genotype", "?")
            children[genotype] = ChildRow(
                event.candidate_id,
                genotype,
                _num(p.get("reward")),
                _num(p.get("score")),
                None,
                False,
            )
        elif event.kind in ("move_accepted", "move_rejected"):
            step = p.get("step")
            parent_index = p.get("parent_index", parent_index)
            current = p.get("to", current)
            fresh = True
        elif event.kind == "tabu_updated":
            tabu = tuple(p.get("tabu", []))
            candidate_list = tuple(p.get("candidate_list", []))
    row = by_genotype.get(current) if current else None
    return AtsState(
        parent_index=parent_index,
        parents_total=len(parents) or int(config.get("parents") or 0),
        parent_genotype=parents[parent_index]
        if parent_index is not None and parent_index < len(parents)
        else None,
        current_id=row.id if row else None,
        current_genotype=current,
        current_grade=row.grade if row else None,
        step=step,
        children=tuple(sorted(children.values(), key=lambda c: -(c.reward or -math.inf))),
        tabu=tabu,
        candidate_list=candidate_list,
        moves=tuple(_move_line(e) for e in digest.moves),
    )


def _move_line(event: Event) -> str:
    """A line of the moves list: a tabu step's outcome or a finished parent."""
    p = event.payload
    grade = _fmt(_num(p.get("grade")))
    if event.kind == "parent_finished":
        return f"parent {int(p.get('parent_index', 0)) + 1} done, G {grade}"
    verb = "accepted" if event.kind == "move_accepted" else "rejected"
    return f"step {p.get('step')}: {verb}, G {grade}"


def _device(snapshot: Snapshot, config) -> DeviceState:
    measurements = [
        Measurement(
            e.candidate_id,
            float(e.payload.get("latency_ms") or 0.0),
            str(e.payload.get("device", "?")),
            e.ts,
        )
        for e in snapshot.digest.measurements
        if e.payload.get("latency_ms") is not None
    ]
    runtime, best_latency = _runtime(snapshot.run_dir)
    return DeviceState(
        device=str(config.get("device", "?")),
        target_latency_ms=_num(config.get("target_latency_ms")),
        measured=snapshot.counts.measured,
        predicted=snapshot.counts.predicted,
        recent=tuple(measurements[-6:]),
        runtime=runtime,
        best_latency_ms=best_latency,
    )


def _runtime(run_dir: Path) -> tuple[str | None, float | None]:
    """The runtime line and median of ``best.latency.json`` once the final model is
    measured (the search's own measurements do not record their runtime)."""
    import json

    path = run_dir / "best.latency.json"
    try:
        data = json.loads(path.read_text())
        rt = data["runtime"]
        line = f"{rt['name']} {rt['version']} {rt.get('provider', '')} {rt.get('threads', '?')} thread(s)"
        return line.strip(), _num(data.get("timings", {}).get("median_ms"))
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def _shrink(shrink_steps) -> ShrinkState:
    steps = [e.payload for e in shrink_steps]
    if not steps:
        return ShrinkState()
    numeric = tuple(
        {
            k: float(v)
            for k, v in p.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        for p in steps
    )
    blocks: list[str] = []
    for p in steps:
        for name in p.get("units") or {}:
            if name not in blocks:
                blocks.append(name)
    units = tuple(tuple(_units(p.get("units", {}).get(name)) for name in blocks) for p in steps)
    return ShrinkState(steps=numeric, blocks=tuple(blocks), units=units)


def _units(value) -> int:
    """Units of a block: a number, or the sum of a dict of unit kinds (k3/k5/k7/tokens)."""
    if isinstance(value, dict):
        return int(sum(v for v in value.values() if isinstance(v, int | float)))
    return int(value) if isinstance(value, int | float) else 0


def _log_line(event: Event, score_name: str) -> LogLine:
    return LogLine(event.id, event.ts, event.kind, describe_event(event, score_name))


def describe_event(event: Event, score_name: str = "NASWOT") -> str:
    """A short human line for one event (unknown kinds show their payload keys);
    ``score_name`` labels the training-free score (:func:`score_label`)."""
    p = event.payload
    cid = f"#{event.candidate_id} " if event.candidate_id is not None else ""
    kind = event.kind
    if kind == "parent_scored":
        return f"{cid}{score_name} {_fmt(_num(p.get('score')), '.1f')} params {format_count(p.get('params'))}"
    if kind == "pool_progress":
        rate = _num(p.get("rate_per_s"))
        return (
            f"pool {format_count(p.get('scored'))}/{format_count(p.get('total'))} scored"
            + (f", {rate:.3g}/s" if rate is not None else "")
            + (f", ETA {format_duration(_num(p.get('eta_s')))}" if _num(p.get("eta_s")) else "")
            + (f", {len(p['failed'])} failed" if isinstance(p.get("failed"), list) else "")
        )
    if kind == "pool_scored":
        return f"pool of {format_count(p.get('total'))} scored"
    if kind == "parents_selected":
        return f"{len(p.get('genotypes', []))} parents selected by {p.get('resource', '?')}"
    if kind == "child_proposed":
        return (
            f"{cid}R {_fmt(_num(p.get('reward')))} {score_name} {_fmt(_num(p.get('score')), '.1f')}"
        )
    if kind == "candidate_trained":
        return (
            f"{cid}G {_fmt(_num(p.get('grade')))} A {_fmt(_num(p.get('accuracy')))} "
            f"params {format_count(p.get('params'))}"
        )
    if kind == "latency_measured":
        return f"{cid}{_fmt(_num(p.get('latency_ms')), '.2f')} ms on {p.get('device', '?')}"
    if kind == "move_accepted":
        return f"{cid}accepted, G {_fmt(_num(p.get('grade')))} (step {p.get('step')})"
    if kind == "move_rejected":
        return (
            f"{cid}rejected G {_fmt(_num(p.get('grade')))} ≤ {_fmt(_num(p.get('current_grade')))}"
            f" (step {p.get('step')})"
        )
    if kind == "tabu_updated":
        return f"tabu {len(p.get('tabu', []))}, candidate list {len(p.get('candidate_list', []))}"
    if kind == "parent_finished":
        return f"parent {int(p.get('parent_index', 0)) + 1} finished, best G {_fmt(_num(p.get('grade')))}"
    if kind == "run_finished":
        return f"finished: best G {_fmt(_num(p.get('best_grade')))}"
    if kind == "run_failed":
        return f"FAILED: {p.get('error', '?')}"
    if kind == "shrink_step":
        return (
            f"step {p.get('step')} epoch {p.get('epoch')}: MACs {format_count(p.get('macs'))} "
            f"params {format_count(p.get('params'))} A {_fmt(_num(p.get('accuracy')))}"
        )
    keys = ", ".join(sorted(p)[:4])
    return f"{cid}{keys}".strip()


def format_count(value) -> str:
    """``282543`` -> ``283k``; ``16827552`` -> ``16.8M``; None -> ``-``."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"
    return f"{value:g}"


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``1h02m``; ``75`` -> ``1m15s``; None -> ``-``."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
