"""The monitor's data side: list runs, read one run's store, poll it for changes.

Plain data only (no Textual import): :class:`RunReader` turns the run store into
:class:`Snapshot` values that the app hands to its widgets. The store is opened
read-only (WAL), so a search can write to it from another process while we read; a
missing, locked, corrupt or foreign file becomes ``Snapshot.error`` (a one-line
message), never an exception, and the reader tries again on the next poll.

It stays fast at paper scale (60,000 candidates, issue 17). The first poll reads the
trained candidates and the events' digest; the whole rows of the other candidates the
search did more with than score them; and of the pool's scored-only rows
(:func:`~edgenas.store.is_pool_only`) just id, score and latency source. A ``staged``
reader (the monitor's) leaves the last two to the second poll: its first snapshot is
``partial`` but has what the first screen shows, sooner. After
that a poll reads the rows the store's change counter says changed since the last
one, so its cost follows what changed, not the size of the run. Of the pool it keeps the scores
(:class:`PoolSummary`, a histogram), of the event log what each view needs
(:class:`EventDigest`), bounded by meaning rather than by how many events came after.
The candidates table asks for one page at a time (:class:`PageQuery`), sorted and
filtered in SQL.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import sqlite3
import statistics
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from edgenas.store import (
    CANDIDATE_FILTERS,
    CANDIDATE_ORDERS,
    LOCK_FILENAME,
    STORE_FILENAME,
    Candidate,
    Event,
    RunInfo,
    RunStore,
    StoreError,
    is_pool_only,
    store_path,
    writer_pid,
)

# The newest events kept, for the log view (state.LOG_LINES).
MAX_EVENTS = 500
# Rows of the candidates table per page.
PAGE_SIZE = 100
# Bars of the pool's score histogram.
HISTOGRAM_BINS = 40
# Events that drive the Assisted Tabu Search panel; it is replayed from the parents'
# selection and the events since the second-to-last parent_finished (the current
# parent's, or the last one's once it finished), so its cost is one or two parents'
# worth of events, however long the run.
ATS_KINDS = (
    "parents_selected",
    "candidate_trained",
    "child_proposed",
    "move_accepted",
    "move_rejected",
    "tabu_updated",
    "parent_finished",
)
MOVE_KINDS = ("move_accepted", "move_rejected", "parent_finished")
TRAINING_KINDS = ("candidate_trained", "shrink_step")
POOL_KINDS = ("pool_progress", "pool_scored")
RECENT_MOVES = 8
RECENT_MEASUREMENTS = 6
_ABSENT = object()


@dataclass(frozen=True)
class RunEntry:
    """One run folder under the runs directory, as the run list shows it."""

    path: Path
    name: str
    kind: str = "?"
    status: str = "?"
    created_at: float | None = None
    updated_at: float | None = None
    candidates: int = 0
    error: str | None = None


@dataclass(frozen=True)
class PoolSummary:
    """The NASWOT-scored pool as a histogram: ``size`` members (those chosen as
    parents included), ``scored`` of them with a score, ``bins`` counts between ``low``
    and ``high`` (the 1st and 99th percentile: a few degenerate networks do not
    squeeze the rest into one bar; outliers are counted in the end bins)."""

    size: int = 0
    scored: int = 0
    low: float | None = None
    high: float | None = None
    median: float | None = None
    bins: tuple[int, ...] = ()
    parents: tuple[float, ...] = ()  # the scores of the parents chosen from the pool


@dataclass(frozen=True)
class CandidateCounts:
    """Counts over every candidate of the run."""

    total: int = 0
    pool: int = 0  # pool rows only scored
    searched: int = 0  # the rest: parents, children, trained, failed
    trained: int = 0
    measured: int = 0
    predicted: int = 0


@dataclass(frozen=True)
class EventDigest:
    """What the views need of the event log, each part bounded by what it shows."""

    ats: tuple[Event, ...] = ()  # the parents' selection and one or two parents' events
    moves: tuple[Event, ...] = ()  # the last moves and finished parents
    measurements: tuple[Event, ...] = ()  # the last latency measurements
    shrink_steps: tuple[Event, ...] = ()  # every HR-NAS shrink step
    trainings: int = 0  # candidate_trained and shrink_step events
    first_training_ts: float | None = None
    last_training_ts: float | None = None
    pool_progress: Event | None = None  # the latest pool_progress or pool_scored


@dataclass(frozen=True)
class PageQuery:
    """One page of the candidates table: sort key (a key of
    :data:`~edgenas.store.CANDIDATE_ORDERS`), direction, subset (a key of
    :data:`~edgenas.store.CANDIDATE_FILTERS`), first row and the metric the
    ``metric`` column shows."""

    sort: str = "id"
    descending: bool = False
    subset: str = "all"
    offset: int = 0
    limit: int = PAGE_SIZE
    metric: str = "accuracy"


@dataclass(frozen=True)
class Page:
    """The rows of a :class:`PageQuery`, each with its parent's genotype, and how many
    rows its subset has."""

    query: PageQuery
    rows: tuple[tuple[Candidate, str | None], ...] = ()
    total: int = 0


@dataclass
class Snapshot:
    """Everything the monitor knows about a run after one poll.

    ``candidates`` are the rows the search did more with than score them (parents,
    children, trained and failed networks), in id order; the pool's scored-only rows
    are summarised in ``pool`` and paged through with ``page``. ``events`` are the
    newest events (at most :data:`MAX_EVENTS`), ``new_events`` those that arrived with
    this poll. ``error`` is a one-line message when the store cannot be read right now;
    the other fields then keep their last good values. ``partial``: only the trained
    candidates are read yet (the first poll), the next poll reads the rest.
    """

    run_dir: Path
    info: RunInfo | None = None
    candidates: list[Candidate] = field(default_factory=list)
    counts: CandidateCounts = field(default_factory=CandidateCounts)
    pool: PoolSummary = field(default_factory=PoolSummary)
    digest: EventDigest = field(default_factory=EventDigest)
    page: Page | None = None
    events: list[Event] = field(default_factory=list)
    new_events: list[Event] = field(default_factory=list)
    error: str | None = None
    partial: bool = False
    version: int = 0


def list_runs(runs_dir: str | Path) -> list[RunEntry]:
    """Run folders (those holding a ``run.sqlite``) under ``runs_dir``, newest first.

    Nested runs (an alpha grid's sub-runs) are included. Unreadable stores are listed
    with their error instead of being skipped, so the user sees why they cannot open them.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    entries = []
    for path in sorted(root.rglob(STORE_FILENAME)):
        run_dir = path.parent
        try:
            with RunStore.open_readonly(run_dir) as store:
                info = live_status(run_dir, store.run_info())
                count = store.count_candidates()
            entries.append(
                RunEntry(
                    path=run_dir,
                    name=str(run_dir.relative_to(root)),
                    kind=info.kind,
                    status=info.status,
                    created_at=info.created_at,
                    updated_at=info.updated_at,
                    candidates=count,
                )
            )
        except (StoreError, sqlite3.Error, ValueError, TypeError) as err:
            entries.append(
                RunEntry(path=run_dir, name=str(run_dir.relative_to(root)), error=str(err))
            )
    return sorted(entries, key=lambda e: -(e.updated_at or 0.0))


def live_status(run_dir: Path, info: RunInfo) -> RunInfo:
    """``info``, with status ``stopped`` when it says ``running`` but no process holds
    the run (killed without a chance to say so: kill -9, a crash, a reboot).

    Only runs with a lock file qualify: stores written before runs were locked cannot
    tell a live writer from a dead one.
    """
    if info.status != "running" or not (run_dir / LOCK_FILENAME).exists():
        return info
    if writer_pid(run_dir) is not None:
        return info
    return dataclasses.replace(info, status="stopped")


def histogram(ordered: list[float], bins: int = HISTOGRAM_BINS) -> tuple[float, float, tuple]:
    """(low, high, counts) of the sorted scores ``ordered`` in ``bins`` equal bins
    between their 1st and 99th percentile; values outside go to the end bins. Needs at
    least one score. (Bin edges found by bisection: 60,000 scores cost a few bisections.)"""
    low = ordered[int(0.01 * (len(ordered) - 1))]
    high = ordered[int(0.99 * (len(ordered) - 1))]
    if high <= low:
        low, high = ordered[0], ordered[-1]
    width = (high - low) / bins if high > low else 1.0
    edges = [bisect.bisect_left(ordered, low + i * width) for i in range(1, bins)]
    bounds = [0, *edges, len(ordered)]
    return low, high, tuple(b - a for a, b in itertools.pairwise(bounds))


class _EventFold:
    """The parts of the event log each view needs, folded event by event (see
    :class:`EventDigest`); fed the events after the last one seen on each poll."""

    def __init__(self, max_events: int) -> None:
        self.recent: deque[Event] = deque(maxlen=max_events)
        self.parents_selected: Event | None = None
        # ATS events split after each parent_finished: the last closed part and the open one.
        self.segments: list[list[Event]] = [[]]
        self.moves: deque[Event] = deque(maxlen=RECENT_MOVES)
        self.measurements: deque[Event] = deque(maxlen=RECENT_MEASUREMENTS)
        self.shrink_steps: list[Event] = []
        self.trainings = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.pool: Event | None = None

    def add(self, event: Event, *, count: bool = True) -> None:
        """Fold in one event (``count=False``: its training is counted elsewhere)."""
        self.recent.append(event)
        kind = event.kind
        if kind in ATS_KINDS:
            if kind == "parents_selected":
                self.parents_selected = event
            self.segments[-1].append(event)
            if kind == "parent_finished":
                self.segments = [self.segments[-1], []]
        if kind in MOVE_KINDS:
            self.moves.append(event)
        elif kind == "latency_measured":
            self.measurements.append(event)
        elif kind in POOL_KINDS:
            self.pool = event
        if kind == "shrink_step":
            self.shrink_steps.append(event)
        if count and kind in TRAINING_KINDS:
            self.trainings += 1
            self.first_ts = event.ts if self.first_ts is None else self.first_ts
            self.last_ts = event.ts

    def digest(self) -> EventDigest:
        ats = [e for segment in self.segments for e in segment]
        selected = self.parents_selected
        if selected is not None and all(e.id != selected.id for e in ats):
            ats.insert(0, selected)  # selected before the events kept: it comes first
        return EventDigest(
            ats=tuple(ats),
            moves=tuple(self.moves),
            measurements=tuple(self.measurements),
            shrink_steps=tuple(self.shrink_steps),
            trainings=self.trainings,
            first_training_ts=self.first_ts,
            last_training_ts=self.last_ts,
            pool_progress=self.pool,
        )


def _initial_events(store: RunStore, max_events: int) -> tuple[list[Event], tuple]:
    """The events a fold of the whole log would keep, found with bounded queries (by
    kind, newest first), in id order; and the trainings' (count, first, last time)."""
    finished = store.latest_events(("parent_finished",), limit=2)
    after = finished[0].id if len(finished) == 2 else 0
    wanted = {
        e.id: e
        for e in (
            *finished,  # where the parts of the search panel's replay begin
            *store.latest_events(limit=max_events),
            *store.events(after_id=after, kinds=ATS_KINDS),
            *store.latest_events(("parents_selected",)),
            *store.latest_events(MOVE_KINDS, limit=RECENT_MOVES),
            *store.latest_events(("latency_measured",), limit=RECENT_MEASUREMENTS),
            *store.latest_events(POOL_KINDS),
            *store.events(kinds=("shrink_step",)),
        )
    }
    return [wanted[i] for i in sorted(wanted)], store.event_span(TRAINING_KINDS)


class RunReader:
    """Polls one run's store; each :meth:`poll` returns a new :class:`Snapshot` when
    something changed (or the error state changed, or a new page was asked for), else
    ``None``.

    All events that arrived since the last poll come back in one snapshot, so a burst
    of writes costs the screen one update, not one per event. ``page_query`` is the
    page of the candidates table to read along (None: no table shown); ``rows_read``
    counts the candidate and event rows the last poll fetched from the store;
    ``staged``: the first poll reads only what the first screen needs (see the module
    docstring).

    Thread-safe: the app polls in a worker thread and closes from its own; closing an
    SQLite connection while another thread uses it would crash the process.
    """

    def __init__(
        self, run_dir: str | Path, *, max_events: int = MAX_EVENTS, staged: bool = False
    ) -> None:
        self.run_dir = Path(run_dir)
        self.max_events = max_events
        self.staged = staged
        self.page_query: PageQuery | None = None
        self.rows_read = 0
        self._store: RunStore | None = None
        self._snapshot = Snapshot(run_dir=self.run_dir)
        self._lock = threading.Lock()
        self._close_requested = False
        self._reset()

    def _reset(self) -> None:
        """Forget what was read: the next poll reads the store from the start."""
        self._loaded = False
        self._partial = False  # the trained rows are read, the others not yet
        self._counter = False  # whether the store has the change counter
        self._signature: tuple | None = None  # without it: when the candidates last changed
        self._last_seq = 0
        self._last_event_id = 0
        self._last_updated_at: float | None = None
        self._searched: dict[int, Candidate] = {}
        self._pool: dict[int, float | None] = {}  # pool rows only scored: id -> score
        self._pool_sources: dict[int, str] = {}  # ... those with a latency source
        self._pool_changed = True
        self._fold = _EventFold(self.max_events)

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot (empty before the first poll)."""
        return self._snapshot

    def close(self, wait_s: float = 0.5) -> None:
        """Close the store connection (the reader reopens it on the next poll).

        If a poll is running (a locked store can hold one up for seconds), wait at most
        ``wait_s``, then leave the closing to that poll so the caller is not blocked.
        """
        if self._lock.acquire(timeout=wait_s):
            try:
                self._close()
            finally:
                self._lock.release()
        else:
            self._close_requested = True

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def poll(self) -> Snapshot | None:
        """Read what is new; see the class docstring."""
        with self._lock:
            try:
                return self._poll_locked()
            finally:
                if self._close_requested:
                    self._close_requested = False
                    self._close()

    def _poll_locked(self) -> Snapshot | None:
        self.rows_read = 0
        try:
            return self._poll()
        except (StoreError, sqlite3.Error, ValueError, TypeError, KeyError) as err:
            # ValueError/TypeError: a row that is not what an edgenas store holds (bad
            # JSON, a missing runs row): reported like any other unreadable store.
            # What was read may be half updated: read it again from the start.
            self._close()
            self._reset()
            message = _one_line(err)
            if message == self._snapshot.error:
                return None
            return self._publish(error=message, new_events=[])

    def _poll(self) -> Snapshot | None:
        if self._store is None:
            path = store_path(self.run_dir)
            if not path.exists():
                raise StoreError(f"no run store at {path} yet: waiting for a search to create it")
            self._store = RunStore.open_readonly(self.run_dir)
        store = self._store
        with store.reading():  # one consistent view: rows and events of the same moment
            info = live_status(self.run_dir, store.run_info())
            if not self._loaded or (not self._counter and store.has_change_counter):
                self._reset()
                rows_changed = self._load_trained(store)
                if not self.staged:
                    self._load_rest(store)
                new_events = self._load_events(store)
                self._loaded, self._partial = True, self.staged
            else:
                rows_changed = self._read_changes(store)
                if self._partial:
                    rows_changed = self._load_rest(store)
                    self._partial = False
                new_events = self._read_new_events(store)
            old = self._snapshot
            changed = (
                rows_changed
                or bool(new_events)
                or info.updated_at != self._last_updated_at
                or old.error is not None
                or old.info is None
                or info.status != old.info.status
            )
            query = self.page_query
            page = old.page
            if query is not None and (changed or page is None or page.query != query):
                rows = tuple(self._read_page(store, query))
                page = Page(query, rows, store.count_candidates(subset=query.subset))
            elif query is None:
                page = None
        if not changed and page is old.page:
            return None
        self._last_updated_at = info.updated_at
        values = {"info": info, "page": page, "new_events": new_events, "error": None}
        values["partial"] = self._partial
        if changed:
            values.update(
                candidates=sorted(self._searched.values(), key=lambda c: c.id),
                counts=self._counts(),
                pool=self._pool_summary() if self._pool_changed else old.pool,
                digest=self._fold.digest(),
                events=list(self._fold.recent),
            )
            self._pool_changed = False
        return self._publish(**values)

    # ------------------------------------------------------------ candidates
    def _load(self, store: RunStore) -> bool:
        """Read every candidate (see :meth:`_load_trained`, :meth:`_load_rest`)."""
        return self._load_trained(store) and self._load_rest(store)

    def _load_trained(self, store: RunStore) -> bool:
        """First read: the trained rows (the plots and the header need them)."""
        self._counter = store.has_change_counter
        self._last_seq = store.last_change_seq()
        trained = store.candidates(status="trained")
        self._searched = {c.id: c for c in trained}
        self._pool, self._pool_sources = {}, {}
        self.rows_read += len(trained)
        if not self._counter:
            self._signature = store.candidate_signature()
        return True

    def _load_rest(self, store: RunStore) -> bool:
        """Second read: the pool's scored-only rows as (id, score, latency source), the
        whole rows of the other untrained ones. Rows changed since the first read come
        as they are now, as the change counter's rows do."""
        pool = store.pool_digests()
        self._pool = {cid: score for cid, score, _ in pool}
        self._pool_sources = {cid: source for cid, _, source in pool if source is not None}
        self._pool_changed = True
        rest = store.candidates(pool=False, other_than="trained")
        self._searched.update((c.id, c) for c in rest)
        self.rows_read += len(pool) + len(rest)
        return True

    def _read_changes(self, store: RunStore) -> bool:
        """Apply the rows changed since the last poll; True if there were any."""
        if not self._counter:
            # A store from before the change counter (opened read-only, so it cannot
            # gain one): read it all again whenever its candidates change.
            signature = store.candidate_signature()
            return signature != self._signature and self._load(store)
        digests = store.candidate_digests(self._last_seq)
        self.rows_read += len(digests)
        if not digests:
            return False
        whole = []
        for digest in digests:
            self._last_seq = max(self._last_seq, digest.change_seq)
            self._searched.pop(digest.id, None)
            old_score = self._pool.pop(digest.id, _ABSENT)
            self._pool_sources.pop(digest.id, None)
            if is_pool_only(digest.origin, digest.status):
                self._pool[digest.id] = digest.score
                if digest.latency_source is not None:
                    self._pool_sources[digest.id] = digest.latency_source
                # The histogram is redone only when a score changes (a new row, a rescore).
                self._pool_changed |= old_score is _ABSENT or old_score != digest.score
            else:
                self._pool_changed |= old_score is not _ABSENT  # e.g. chosen as a parent
                whole.append(digest.id)
        for candidate in store.candidates_by_id(whole):
            self._searched[candidate.id] = candidate
        self.rows_read += len(whole)
        return True

    def _counts(self) -> CandidateCounts:
        sources = [c.latency_source for c in self._searched.values()]
        sources += self._pool_sources.values()
        return CandidateCounts(
            total=len(self._pool) + len(self._searched),
            pool=len(self._pool),
            searched=len(self._searched),
            trained=sum(1 for c in self._searched.values() if c.status == "trained"),
            measured=sources.count("measured"),
            predicted=sources.count("predicted"),
        )

    def _pool_summary(self) -> PoolSummary:
        """The pool's scores, the parents drawn from it included, as a histogram."""
        parents = [
            c.score for c in self._searched.values() if c.origin == "parent" and c.score is not None
        ]
        scores = sorted([s for s in self._pool.values() if s is not None] + parents)
        size = len(self._pool) + sum(1 for c in self._searched.values() if c.origin == "parent")
        if not scores:
            return PoolSummary(size=size)
        # Bars for the scores there are: a small pool in 40 bars is a comb.
        low, high, bins = histogram(scores, max(8, min(HISTOGRAM_BINS, len(scores) // 10)))
        return PoolSummary(
            size=size,
            scored=len(scores),
            low=low,
            high=high,
            median=statistics.median(scores),  # sorted already: cheap
            bins=bins,
            parents=tuple(sorted(parents, reverse=True)),
        )

    def _read_page(self, store: RunStore, query: PageQuery) -> list[tuple[Candidate, str | None]]:
        if query.sort not in CANDIDATE_ORDERS or query.subset not in CANDIDATE_FILTERS:
            raise ValueError(f"no such sort or subset: {query.sort}, {query.subset}")
        rows = store.candidate_page(
            order=query.sort,
            descending=query.descending,
            subset=query.subset,
            metric=query.metric,
            offset=query.offset,
            limit=query.limit,
        )
        self.rows_read += len(rows)
        return rows

    # ---------------------------------------------------------------- events
    def _load_events(self, store: RunStore) -> list[Event]:
        events, (count, first, last) = _initial_events(store, self.max_events)
        self.rows_read += len(events)
        for event in events:
            self._fold.add(event, count=False)
        self._fold.trainings, self._fold.first_ts, self._fold.last_ts = count, first, last
        if events:
            self._last_event_id = events[-1].id
        return list(self._fold.recent)

    def _read_new_events(self, store: RunStore) -> list[Event]:
        """The events since the last poll. A burst larger than the log window is read
        again as on the first poll (what the fold keeps of it is the same, and the
        reading stays bounded)."""
        events = store.events(after_id=self._last_event_id, limit=self.max_events + 1)
        self.rows_read += len(events)
        if len(events) > self.max_events:
            self._fold = _EventFold(self.max_events)
            return self._load_events(store)
        for event in events:
            self._fold.add(event)
        if events:
            self._last_event_id = events[-1].id
        return events

    def _publish(self, **changes) -> Snapshot:
        values = {"new_events": [], "version": self._snapshot.version + 1, **changes}
        self._snapshot = dataclasses.replace(self._snapshot, **values)
        return self._snapshot


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
