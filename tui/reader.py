"""The monitor's data side: list runs, read one run's store, poll it for changes.

Plain data only (no Textual import): :class:`RunReader` turns the run store into
:class:`Snapshot` values that the app hands to its widgets. The store is opened
read-only (WAL), so a search can write to it from another process while we read; a
missing, locked, corrupt or foreign file becomes ``Snapshot.error`` (a one-line
message), never an exception, and the reader tries again on the next poll.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edgenas.store import (
    LOCK_FILENAME,
    STORE_FILENAME,
    Candidate,
    Event,
    RunInfo,
    RunStore,
    StoreError,
    store_path,
    writer_pid,
)

# The event log kept in memory: enough for the log view and the derived state of the
# longest searches, bounded so that a run of days does not grow the monitor without end.
MAX_EVENTS = 20_000
# Candidates are re-read when events arrive, and also every this many polls, because a
# candidate row can change (e.g. its reward) a moment before its event is appended.
FULL_RELOAD_EVERY = 5


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


@dataclass
class Snapshot:
    """Everything the monitor knows about a run after one poll.

    ``new_events`` are the events that arrived with this poll (all of them on the first
    poll); ``events`` is the whole log seen so far (bounded by :data:`MAX_EVENTS`).
    ``error`` is a one-line message when the store cannot be read right now; the other
    fields then keep their last good values.
    """

    run_dir: Path
    info: RunInfo | None = None
    candidates: list[Candidate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    new_events: list[Event] = field(default_factory=list)
    error: str | None = None
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
                count = len(store.candidates())
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


class RunReader:
    """Polls one run's store; each :meth:`poll` returns a new :class:`Snapshot` when
    something changed (or the error state changed), else ``None``.

    All events that arrived since the last poll come back in one snapshot, so a burst
    of writes costs the screen one update, not one per event.

    Thread-safe: the app polls in a worker thread and closes from its own; closing an
    SQLite connection while another thread uses it would crash the process.
    """

    def __init__(self, run_dir: str | Path, *, max_events: int = MAX_EVENTS) -> None:
        self.run_dir = Path(run_dir)
        self.max_events = max_events
        self._store: RunStore | None = None
        self._snapshot = Snapshot(run_dir=self.run_dir)
        self._last_event_id = 0
        self._last_updated_at: float | None = None
        self._polls = 0
        self._lock = threading.Lock()
        self._close_requested = False

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
        self._polls += 1
        try:
            return self._poll()
        except (StoreError, sqlite3.Error, ValueError, TypeError) as err:
            # ValueError/TypeError: a row that is not what an edgenas store holds (bad
            # JSON, a missing runs row): reported like any other unreadable store.
            self._close()
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
        info = live_status(self.run_dir, store.run_info())
        new_events = store.events(after_id=self._last_event_id)
        changed = (
            bool(new_events)
            or info.updated_at != self._last_updated_at
            or self._snapshot.error is not None
            or self._snapshot.info is None
            or info.status != self._snapshot.info.status
        )
        reload = changed or self._polls % FULL_RELOAD_EVERY == 0
        candidates = store.candidates() if reload else self._snapshot.candidates
        if not changed and _same_candidates(candidates, self._snapshot.candidates):
            return None
        if new_events:
            self._last_event_id = new_events[-1].id
        self._last_updated_at = info.updated_at
        events = self._snapshot.events + new_events
        if len(events) > self.max_events:
            events = events[-self.max_events :]
        return self._publish(
            info=info, candidates=candidates, events=events, new_events=new_events, error=None
        )

    def _publish(self, **changes) -> Snapshot:
        old = self._snapshot
        values = {
            "run_dir": self.run_dir,
            "info": old.info,
            "candidates": old.candidates,
            "events": old.events,
            "new_events": [],
            "error": old.error,
            "version": old.version + 1,
        }
        values.update(changes)
        self._snapshot = Snapshot(**values)
        return self._snapshot


def _same_candidates(a: list[Candidate], b: list[Candidate]) -> bool:
    if len(a) != len(b):
        return False
    return all(x.id == y.id and x.updated_at == y.updated_at for x, y in zip(a, b, strict=True))


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
