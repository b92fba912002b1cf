"""The run store: one SQLite file per run (``runs/<name>/run.sqlite``), WAL mode.

Everything a search learns lands here first; the report, the monitor and ``--resume``
read only this file. Three tables:

- ``runs``: one row: the run's kind, its fully resolved config (JSON), status, summary;
- ``candidates``: one row per architecture ever proposed or evaluated, keyed by its
  canonical string; every insert and update gives the row the next number of a change
  counter (``change_seq``), so a reader fetches the rows changed since it last looked
  (:meth:`RunStore.candidate_digests`) rather than a paper-scale run's 60,000;
- ``events``: append-only, with a monotonically increasing id; readers poll
  ``events WHERE id > last_seen``.

Every write is its own committed transaction, so a crash at any instant loses at most
the evaluation in flight. Readers (another process, the monitor) open the file
read-only with :meth:`RunStore.open_readonly` and never block the writer (WAL).

One process writes a run: :meth:`RunStore.create` and :meth:`RunStore.open` take an
exclusive lock on ``run.lock`` in the run folder (:class:`RunLock`) and hold it until
:meth:`RunStore.close`; the OS drops it when the process dies, kill -9 included. A second
writer is refused before it writes anything, with the process that holds the run.
Readers never take the lock; :func:`writer_pid` tells them whether a writer is alive.

This module imports only the standard library (and :mod:`edgenas.atomic`, which does too),
so the monitor can use it without torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from edgenas.atomic import atomic_path

SCHEMA = "edgenas.store/v1"
STORE_FILENAME = "run.sqlite"

# Event kinds written by the searches (readers should tolerate unknown kinds).
EVENT_KINDS = (
    "run_started",
    "run_resumed",
    "pool_progress",  # a batch of the pool scored: progress only, not replayed
    "pool_scored",
    "parents_selected",
    "child_proposed",
    "candidate_trained",
    "candidate_failed",
    "latency_measured",
    "move_accepted",
    "move_rejected",
    "tabu_updated",
    "parent_finished",
    "budget_spent",
    "latency_calibrated",
    "shrink_step",
    "run_finished",
    "run_failed",
)

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    genotype TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES candidates(id),
    origin TEXT NOT NULL,
    iteration INTEGER,
    status TEXT NOT NULL,
    params INTEGER,
    flops INTEGER,
    score REAL,
    latency_ms REAL,
    latency_source TEXT,
    predicted_latency_ms REAL,
    device TEXT,
    metrics TEXT,
    accuracy REAL,
    grade REAL,
    reward REAL,
    timings TEXT,
    onnx_path TEXT,
    loss_history TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    change_seq INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    candidate_id INTEGER,
    iteration INTEGER,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind);
"""

# Made after the columns they need exist (an older store gains change_seq when opened
# for writing). ``change_seq`` is the candidates' change counter: every insert and every
# update gives the row the next number, whoever writes it (these triggers are in the
# file, so a writer of any version keeps the counter), and a reader asks for the rows
# changed since the largest number it has seen (:meth:`RunStore.candidate_digests`).
# ``updated_at`` cannot do this: wall-clock times tie and can go backwards. The other
# indexes serve the monitor's and the report's queries by status and origin (the pool's
# covers its scores: a reader gets 60,000 of them without visiting the rows).
_COUNTER_SQL = """
CREATE INDEX IF NOT EXISTS candidates_change ON candidates(change_seq);
CREATE INDEX IF NOT EXISTS candidates_status ON candidates(status);
CREATE INDEX IF NOT EXISTS candidates_pool ON candidates(origin, status, score, latency_source);
CREATE TRIGGER IF NOT EXISTS candidates_counted_insert AFTER INSERT ON candidates
BEGIN
    UPDATE candidates SET change_seq = (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM candidates)
    WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS candidates_counted_update AFTER UPDATE ON candidates
WHEN NEW.change_seq IS OLD.change_seq
BEGIN
    UPDATE candidates SET change_seq = (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM candidates)
    WHERE id = NEW.id;
END;
"""

_JSON_COLUMNS = ("metrics", "timings", "loss_history")
# Columns added to the candidates table after stores were first written: an older store
# gains them when opened for writing (a reader of an older store gets the defaults).
_ADDED_COLUMNS = (("loss_history", "TEXT"), ("change_seq", "INTEGER"))


class StoreError(Exception):
    """The file is missing, not an edgenas run store, corrupt, or locked."""


class StoreLockedError(StoreError):
    """Another live process writes this run."""


class StoreWriteError(StoreError):
    """A write failed for a reason outside edgenas (disk full, I/O error, a lock another
    program holds); what was committed before stays, so the run can be resumed once the
    cause is fixed. ``remedy`` says what fixes it, e.g. ``free space``."""

    def __init__(self, message: str, remedy: str = "free space") -> None:
        super().__init__(message)
        self.remedy = remedy


LOCK_FILENAME = "run.lock"


class RunLock:
    """An exclusive ``flock`` on ``run_dir/run.lock``, held by the run's one writer.

    The file holds the writer's process id and command line, for the message a second
    writer gets. The lock, not the file, is what counts: the file stays after the run
    (so taking the lock never needs to create it again), and a lock whose process died
    is gone with it.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, run_dir: str | Path) -> RunLock:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        path = Path(run_dir) / LOCK_FILENAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _take(fd)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StoreLockedError(
                f"run {run_dir} is being written by {holder}; wait for it to end or stop it, "
                "then try again (reading it is fine: edgenas monitor)"
            ) from None
        except OSError as err:  # ENOLCK, EOPNOTSUPP: a file system without flock
            os.close(fd)
            raise StoreError(
                f"cannot lock {path} ({os.strerror(err.errno or 0)}): this file system does "
                "not support file locks; put --runs-dir on a local disk"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {_command_line()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        """Drop the lock (closing the file releases it)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# How long a writer waits for a lock held by no live process: a reader's brief shared
# lock (writer_pid) or a writer that has just died, never a live writer.
_LOCK_PATIENCE_S = 0.5


def _take(fd: int) -> None:
    """Take the exclusive lock on ``fd``, or raise BlockingIOError when a live process
    holds it. A monitor's probe (:func:`writer_pid`) holds a shared lock for an instant,
    so a lock whose recorded holder is not alive is tried again for a moment."""
    deadline = time.monotonic() + _LOCK_PATIENCE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if _read_holder(fd) != "another process" or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _command_line() -> str:
    """This process's command line, shortened, for the message a second writer gets."""
    try:
        raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
    except OSError:
        return "edgenas"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    if words and "python" in Path(words[0]).name:  # "python -m edgenas ..." / a venv's python3
        words = words[1:]
    if words:
        words[0] = Path(words[0]).name
    return " ".join(words)[:200] or "edgenas"


def _read_holder(fd: int) -> str:
    """``process PID (COMMAND)`` from the lock file, or ``another process`` when the id
    recorded there is not a live process."""
    text = os.pread(fd, 512, 0).decode(errors="replace").strip()
    pid, _, command = text.partition(" ")
    if not pid.isdigit() or not _alive(int(pid)):
        return "another process"  # it took the lock and has not written its id yet
    return f"process {pid}" + (f" ({command})" if command else "")


def _is_write_failure(err: sqlite3.OperationalError) -> bool:
    """Whether a failed write is the machine's doing rather than edgenas's: SQLite
    reports a full disk as "database or disk is full" (ENOSPC), a write past a file-size
    limit as "disk I/O error", and a lock another program holds for longer than the
    connection waits (30 s; an open sqlite3 shell, say) as "database is locked"."""
    text = str(err)
    return "full" in text or "I/O error" in text or "locked" in text


def _write_failure(path: Path, err: sqlite3.OperationalError) -> StoreWriteError:
    """The error for a write :func:`_is_write_failure` accepts."""
    if "locked" in str(err):
        return StoreWriteError(
            f"cannot write {path}: another program holds it locked (an open sqlite3 shell?)",
            remedy="close it",
        )
    return StoreWriteError(f"cannot write {path} ({err}; is the disk full?)")


def _alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def writer_pid(run_dir: str | Path) -> int | None:
    """The id of the live process writing ``run_dir``, or None when none holds it.

    For readers: a run whose status says ``running`` but has no writer was stopped
    without a chance to say so (kill -9, power loss); ``--resume`` continues it.
    """
    path = Path(run_dir) / LOCK_FILENAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 64, 0).decode(errors="replace").split(" ", 1)[0]
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)  # also drops the shared lock if it was taken
    return None


@dataclass
class Candidate:
    """One architecture in a run: what is known about it so far.

    ``latency_ms`` is the best known latency, ``latency_source`` says whether it was
    ``"measured"`` or ``"predicted"``; ``predicted_latency_ms`` keeps the lookup-table
    prediction the search decided on, also after a measurement. ``grade`` is the
    validation grade G, ``reward`` the mutation reward R that proposed it (children).
    """

    id: int
    genotype: str
    origin: str
    status: str
    parent_id: int | None = None
    iteration: int | None = None
    params: int | None = None
    flops: int | None = None
    score: float | None = None
    latency_ms: float | None = None
    latency_source: str | None = None
    predicted_latency_ms: float | None = None
    device: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    accuracy: float | None = None
    grade: float | None = None
    reward: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    onnx_path: str | None = None
    loss_history: list[list[float]] = field(default_factory=list)  # [[step, loss], ...]
    created_at: float = 0.0
    updated_at: float = 0.0


_CANDIDATE_FIELDS = {f.name for f in fields(Candidate)}
_IDS_PER_QUERY = 500  # under SQLite's limit on the parameters of one statement
_UPDATABLE = _CANDIDATE_FIELDS - {"id", "genotype", "created_at", "updated_at"}


class CandidateDigest(NamedTuple):
    """A candidate without its genotype and JSON fields: what a reader of a big run
    keeps of every row (counts, the pool's scores); ``change_seq`` is the row's place in
    the change counter (0 in a store without it)."""

    id: int
    origin: str
    status: str
    score: float | None
    latency_source: str | None
    change_seq: int


# The candidate lists a reader pages through (:meth:`RunStore.candidate_page`): a pool
# row that is only scored is "pool"; a row the search did more with (a parent, a child,
# a trained or failed network) is "searched".
POOL_ONLY_SQL = "(c.origin = 'pool' AND c.status = 'scored')"
CANDIDATE_FILTERS = {
    "all": "1",
    "searched": f"NOT {POOL_ONLY_SQL}",
    "trained": "c.status = 'trained'",
    "pool": POOL_ONLY_SQL,
}
# Sort keys of a page and their SQL ("metric" is a field of the metrics JSON).
CANDIDATE_ORDERS = {
    "id": "c.id",
    "parent": "c.parent_id",
    "genotype": "c.genotype",
    "params": "c.params",
    "flops": "c.flops",
    "latency": "c.latency_ms",
    "score": "c.score",
    "metric": "json_extract(c.metrics, :metric)",
    "grade": "c.grade",
    "status": "c.status",
}


def is_pool_only(origin: str, status: str) -> bool:
    """A pool row the search has only scored (see :data:`CANDIDATE_FILTERS`)."""
    return origin == "pool" and status == "scored"


@dataclass(frozen=True)
class Event:
    """One entry of the append-only event log."""

    id: int
    ts: float
    kind: str
    candidate_id: int | None
    iteration: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class RunInfo:
    """The ``runs`` row."""

    name: str
    kind: str
    config: dict[str, Any]
    status: str
    summary: dict[str, Any] | None
    created_at: float
    updated_at: float


def store_path(run_dir: str | Path) -> Path:
    """``run_dir/run.sqlite``; a path that already names a ``.sqlite`` file is kept."""
    path = Path(run_dir)
    return path if path.suffix == ".sqlite" else path / STORE_FILENAME


def _connect(path: Path, readonly: bool, transient: bool = False) -> sqlite3.Connection:
    if transient:
        # A short look that must leave no trace (a refused resume writes nothing): a
        # read-only URI connection would leave the WAL's -wal and -shm files behind,
        # while the last ordinary connection to close removes them. query_only keeps
        # it from writing anything else.
        connection = sqlite3.connect(str(path), timeout=5.0)
        connection.execute("PRAGMA query_only = ON")
        connection.row_factory = sqlite3.Row
        return connection
    if readonly:
        uri = f"file:{path.resolve()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
    else:
        connection = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    return connection


class RunStore:
    """Read and write one run's SQLite file. Use :meth:`create`, :meth:`open` or
    :meth:`open_readonly`; close with :meth:`close` or a ``with`` block."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: Path,
        readonly: bool,
        lock: RunLock | None = None,
    ) -> None:
        self._db = connection
        self.path = path
        self.readonly = readonly
        self._lock = lock
        self._has_counter = False  # seen once, the column stays

    # ----------------------------------------------------------- lifecycle
    @classmethod
    def create(
        cls, run_dir: str | Path, *, name: str, kind: str, config: dict[str, Any]
    ) -> RunStore:
        """Create a new store; refuses to overwrite an existing run.

        A store that cannot be made (disk full) leaves nothing behind: the folders this
        call created are removed again.
        """
        path = store_path(run_dir)
        if path.exists():
            raise StoreError(f"{path} already exists; resume it or choose another run name")
        created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = RunLock.acquire(path.parent)
        if path.exists():  # another process created it while this one waited for the lock
            lock.release()
            raise StoreError(f"{path} already exists; resume it or choose another run name")
        try:
            return cls._build(path, name, kind, config, lock)
        except BaseException as err:
            if created:  # unlink before unlocking: no one may lock a file being removed
                lock.path.unlink(missing_ok=True)
            lock.release()
            if created:
                for folder in created:  # deepest first
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            if isinstance(err, sqlite3.OperationalError):
                raise _write_failure(path, err) from None
            raise

    @classmethod
    def _build(
        cls, path: Path, name: str, kind: str, config: dict[str, Any], lock: RunLock
    ) -> RunStore:
        # Built under a temporary name and renamed into place (edgenas.atomic: the
        # finished file gets the umask's default mode, not the temporary file's 0600), so
        # a reader polling for the run (the monitor, a test) never opens a file whose
        # schema is half made. SQLite takes the empty temporary file as a new database.
        with atomic_path(path) as staging:
            connection = _connect(staging, readonly=False)
            try:
                connection.execute("PRAGMA journal_mode=WAL")  # persists in the file
                connection.executescript(_SCHEMA_SQL)
                connection.executescript(_COUNTER_SQL)
                now = time.time()
                with connection:
                    connection.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
                    connection.execute(
                        "INSERT INTO runs VALUES (1, ?, ?, ?, 'running', NULL, ?, ?)",
                        (name, kind, json.dumps(config, sort_keys=True), now, now),
                    )
            finally:
                connection.close()  # checkpoints the WAL into the file before the rename
                for leftover in (Path(f"{staging}-wal"), Path(f"{staging}-shm")):
                    leftover.unlink(missing_ok=True)
        connection = _connect(path, readonly=False)
        connection.execute("PRAGMA synchronous=NORMAL")
        return cls(connection, path, readonly=False, lock=lock)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Open an existing store for writing (resume); holds the run's lock until closed
        (:class:`StoreLockedError` when another process writes it)."""
        path = store_path(run_dir)
        if not path.is_file():
            raise StoreError(f"no run store at {path}")
        lock = RunLock.acquire(path.parent)
        try:
            store = cls._open(path, readonly=False)
        except BaseException:
            lock.release()
            raise
        store._lock = lock
        return store

    @classmethod
    def open_readonly(cls, run_dir: str | Path) -> RunStore:
        """Open an existing store for reading only (report, monitor)."""
        return cls._open(store_path(run_dir), readonly=True)

    @classmethod
    def read_info(cls, run_dir: str | Path) -> RunInfo:
        """The run's row, read without leaving any file behind (a refused ``--resume``
        must write nothing); :class:`StoreError` when there is no usable store."""
        store = cls._open(store_path(run_dir), readonly=True, transient=True)
        try:
            return store.run_info()
        finally:
            store.close()

    @classmethod
    def _open(cls, path: Path, readonly: bool, transient: bool = False) -> RunStore:
        if not path.is_file():
            raise StoreError(f"no run store at {path}")
        try:
            connection = _connect(path, readonly, transient)
            tables = {
                row["name"]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            row = None
            if "meta" in tables:
                row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError as err:
            # "database is locked" and friends: the file is fine, try again later.
            raise StoreError(f"{path} cannot be read right now ({err})") from None
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{path} is not a readable edgenas run store ({err})") from None
        if row is None or row["value"] != SCHEMA:
            connection.close()
            if row is not None and str(row["value"]).startswith("edgenas.store/"):
                raise StoreError(
                    f"{path} was written by another edgenas version (store {row['value']}, "
                    f"this one reads {SCHEMA}); open it with that version"
                )
            raise StoreError(f"{path} is not an edgenas run store (schema {SCHEMA} expected)")
        if not readonly:
            connection.execute("PRAGMA synchronous=NORMAL")
            try:
                _add_missing_columns(connection)
            except sqlite3.OperationalError as err:
                connection.close()
                if _is_write_failure(err):
                    raise _write_failure(path, err) from None
                raise
        return cls(connection, path, readonly)

    def close(self) -> None:
        """Close the connection and drop the writer's lock."""
        self._db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        try:
            with self._db:  # one committed transaction
                yield self._db
        except sqlite3.OperationalError as err:
            # Either way the committed part of the run is intact.
            if _is_write_failure(err):
                raise _write_failure(self.path, err) from None
            raise

    # ----------------------------------------------------------------- run
    def run_info(self) -> RunInfo:
        """The run's name, kind, config, status and summary."""
        row = self._db.execute("SELECT * FROM runs WHERE id = 1").fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no run in it; it is not a usable run store")
        try:
            config = json.loads(row["config"])
            summary = json.loads(row["summary"]) if row["summary"] else None
        except (TypeError, ValueError) as err:
            raise StoreError(
                f"{self.path}: the run's config or summary is not JSON ({err})"
            ) from None
        return RunInfo(
            name=row["name"],
            kind=row["kind"],
            config=config,
            status=row["status"],
            summary=summary,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def set_status(self, status: str, summary: dict[str, Any] | None = None) -> None:
        """Set the run's status (``running``, ``finished``, ``failed``, ``interrupted``)."""
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, summary = COALESCE(?, summary), updated_at = ? WHERE id = 1",
                (status, json.dumps(summary) if summary is not None else None, time.time()),
            )

    def record_stop(self, err: BaseException) -> None:
        """Record why the run stopped: ``interrupted`` for Ctrl-C and SIGTERM, else a
        ``run_failed`` event with the error and ``failed``; each as far as the store can
        take it (on a full disk maybe nothing: the error being reported says why)."""
        interrupted = isinstance(err, KeyboardInterrupt)
        if not interrupted:
            with contextlib.suppress(StoreError, sqlite3.Error):
                self.append_event("run_failed", {"error": f"{type(err).__name__}: {err}"[:500]})
        with contextlib.suppress(StoreError, sqlite3.Error):
            self.set_status("interrupted" if interrupted else "failed")

    def set_summary(self, summary: dict[str, Any]) -> None:
        """Store the run's summary without changing its status (the outputs it names
        are written next; the status says ``finished`` only once they all exist)."""
        with self._write() as db:
            db.execute(
                "UPDATE runs SET summary = ?, updated_at = ? WHERE id = 1",
                (json.dumps(summary), time.time()),
            )

    # ---------------------------------------------------------- candidates
    def add_candidate(self, genotype: str, *, origin: str, status: str, **values: Any) -> int:
        """Insert a candidate row and return its id (``genotype`` must be new)."""
        row = {"genotype": genotype, "origin": origin, "status": status, **values}
        return self.add_candidates([row])[0]

    def add_candidates(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert many candidate rows in one transaction (a pool batch); returns their
        ids in order. Each row holds ``genotype``, ``origin``, ``status`` and any
        updatable fields; every genotype must be new."""
        ids = []
        now = time.time()
        with self._write() as db:
            for row in rows:
                unknown = set(row) - _UPDATABLE - {"genotype", "origin", "status"}
                if unknown:  # raised inside the transaction: the whole batch is rolled back
                    raise ValueError(f"unknown candidate fields: {sorted(unknown)}")
                columns = {**row, "created_at": now, "updated_at": now}
                for key in _JSON_COLUMNS:
                    if key in columns:
                        columns[key] = json.dumps(columns[key])
                names = ", ".join(columns)
                marks = ", ".join("?" for _ in columns)
                cursor = db.execute(
                    f"INSERT INTO candidates ({names}) VALUES ({marks})", tuple(columns.values())
                )
                ids.append(int(cursor.lastrowid))
        return ids

    def update_candidate(self, candidate_id: int, **values: Any) -> None:
        """Update fields of a candidate row."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown candidate fields: {sorted(unknown)}")
        if not values:
            return
        for key in _JSON_COLUMNS:
            if key in values:
                values[key] = json.dumps(values[key])
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self._write() as db:
            db.execute(
                f"UPDATE candidates SET {assignments}, updated_at = ? WHERE id = ?",
                (*values.values(), time.time(), candidate_id),
            )

    def candidate(self, candidate_id: int) -> Candidate:
        """One candidate by id (KeyError if absent)."""
        row = self._db.execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
        if row is None:
            raise KeyError(candidate_id)
        return _candidate(row)

    def find_candidate(self, genotype: str) -> Candidate | None:
        """The candidate with this canonical string, if any."""
        row = self._db.execute(
            "SELECT * FROM candidates WHERE genotype = ?", (genotype,)
        ).fetchone()
        return _candidate(row) if row is not None else None

    def candidates(
        self, status: str | None = None, *, pool: bool = True, other_than: str | None = None
    ) -> list[Candidate]:
        """All candidates in id order (optionally only those with ``status``, or with a
        status ``other_than`` one; with ``pool=False`` without the pool rows that are
        only scored)."""
        where = ["1"]
        params: list[Any] = []
        if status is not None:
            where.append("c.status = ?")
            params.append(status)
        if other_than is not None:
            where.append("c.status != ?")
            params.append(other_than)
        if not pool:
            where.append(CANDIDATE_FILTERS["searched"])
        rows = self._db.execute(
            f"SELECT * FROM candidates AS c WHERE {' AND '.join(where)} ORDER BY c.id", params
        )
        return [_candidate(row) for row in rows]

    def candidates_by_id(self, ids: Sequence[int]) -> list[Candidate]:
        """The candidates with these ids (those that exist), in id order."""
        found = []
        ids = list(ids)
        for first in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[first : first + _IDS_PER_QUERY]
            marks = ", ".join("?" for _ in chunk)
            found += self._db.execute(f"SELECT * FROM candidates WHERE id IN ({marks})", chunk)
        return [_candidate(row) for row in sorted(found, key=lambda row: row["id"])]

    def count_candidates(self, status: str | None = None, *, subset: str = "all") -> int:
        """How many candidates there are (with ``status``, if given; in ``subset``, a key
        of :data:`CANDIDATE_FILTERS`)."""
        query = f"SELECT COUNT(*) FROM candidates AS c WHERE {CANDIDATE_FILTERS[subset]}"
        if status is None:
            return int(self._db.execute(query).fetchone()[0])
        return int(self._db.execute(query + " AND c.status = ?", (status,)).fetchone()[0])

    # ------------------------------------------------------------- readers
    @property
    def has_change_counter(self) -> bool:
        """Whether the candidates carry the change counter. A store written before it
        gains it when first opened for writing; until then a reader cannot tell which
        rows changed (:meth:`candidate_signature` tells it that some did)."""
        if not self._has_counter:
            columns = self._db.execute("PRAGMA table_info(candidates)")
            self._has_counter = any(row["name"] == "change_seq" for row in columns)
        return self._has_counter

    @contextmanager
    def reading(self) -> Iterator[RunStore]:
        """One consistent view of the store across several queries (a read
        transaction): what a writer commits meanwhile is seen after the block."""
        if self._db.in_transaction:
            yield self
            return
        self._db.execute("BEGIN")
        try:
            yield self
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def candidate_digests(self, after_seq: int = 0) -> list[CandidateDigest]:
        """The candidates changed after ``after_seq`` of the change counter (all of
        them by default), in the order of their changes, as light digests. A store
        without the counter gives all candidates, in id order, with ``change_seq`` 0."""
        columns = "c.id, c.origin, c.status, c.score, c.latency_source"
        if self.has_change_counter:
            rows = self._db.execute(
                f"SELECT {columns}, c.change_seq FROM candidates AS c "
                "WHERE c.change_seq > ? ORDER BY c.change_seq",
                (after_seq,),
            )
        else:
            rows = self._db.execute(f"SELECT {columns}, 0 FROM candidates AS c ORDER BY c.id")
        return [CandidateDigest(*row) for row in rows]

    def last_change_seq(self) -> int:
        """The largest number of the change counter (0 in a store without it)."""
        if not self.has_change_counter:
            return 0
        row = self._db.execute("SELECT COALESCE(MAX(change_seq), 0) FROM candidates").fetchone()
        return int(row[0])

    def pool_digests(self) -> list[tuple[int, float | None, str | None]]:
        """(id, score, latency source) of the pool rows that are only scored (the bulk
        of a paper-scale run: plain tuples, no genotype)."""
        cursor = self._db.cursor()
        cursor.row_factory = None  # tuples: 60,000 rows in a fraction of the time
        return cursor.execute(
            f"SELECT c.id, c.score, c.latency_source FROM candidates AS c WHERE {POOL_ONLY_SQL}"
        ).fetchall()

    def candidate_signature(self) -> tuple[int, float, int]:
        """(count, latest ``updated_at``, largest id) of the candidates: for readers of
        a store without the change counter, a cheap sign that something changed."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(MAX(updated_at), 0), COALESCE(MAX(id), 0) FROM candidates"
        ).fetchone()
        return int(row[0]), float(row[1]), int(row[2])

    def candidate_page(
        self,
        *,
        order: str = "id",
        descending: bool = False,
        subset: str = "all",
        metric: str = "accuracy",
        offset: int = 0,
        limit: int = 100,
    ) -> list[tuple[Candidate, str | None]]:
        """One page of candidates sorted and filtered in SQL, each with its parent's
        genotype (None without a parent): ``order`` a key of :data:`CANDIDATE_ORDERS`
        (missing values last in both directions, ties by id), ``subset`` a key of
        :data:`CANDIDATE_FILTERS`, ``metric`` the metrics field the ``metric`` order
        sorts by."""
        column = CANDIDATE_ORDERS[order]
        direction = "DESC" if descending else "ASC"
        sort = f"c.id {direction}" if order == "id" else (
            f"({column}) IS NULL, {column} {direction}, c.id"
        )  # fmt: skip
        rows = self._db.execute(
            "SELECT c.*, p.genotype AS parent_genotype FROM candidates AS c "
            "LEFT JOIN candidates AS p ON p.id = c.parent_id "
            f"WHERE {CANDIDATE_FILTERS[subset]} ORDER BY {sort} LIMIT :limit OFFSET :offset",
            {"metric": f'$."{metric}"', "limit": limit, "offset": offset},
        )
        return [(_candidate(row), row["parent_genotype"]) for row in rows]

    def timing_totals(self, keys: Sequence[str]) -> dict[str, float]:
        """The sum over all candidates of each ``timings`` field in ``keys``."""
        totals = ", ".join("TOTAL(json_extract(timings, ?))" for _ in keys)
        row = self._db.execute(
            f"SELECT {totals} FROM candidates WHERE timings IS NOT NULL",
            [f'$."{key}"' for key in keys],
        ).fetchone()
        return {key: float(value) for key, value in zip(keys, row, strict=True)}

    # -------------------------------------------------------------- events
    def append_event(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        candidate_id: int | None = None,
        iteration: int | None = None,
    ) -> int:
        """Append an event; returns its id (strictly increasing)."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO events (ts, kind, candidate_id, iteration, payload) VALUES (?, ?, ?, ?, ?)",
                (time.time(), kind, candidate_id, iteration, json.dumps(payload or {})),
            )
        return int(cursor.lastrowid)

    def events(
        self, after_id: int = 0, kinds: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Event]:
        """Events with ``id > after_id`` in id order, optionally of some kinds only."""
        query = "SELECT * FROM events WHERE id > ?"
        params: list[Any] = [after_id]
        if kinds:
            query += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params += list(kinds)
        query += " ORDER BY id"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return [_event(row) for row in self._db.execute(query, params)]

    def latest_events(self, kinds: tuple[str, ...] | None = None, limit: int = 1) -> list[Event]:
        """The newest ``limit`` events (of ``kinds``, if given), in id order."""
        query = "SELECT * FROM events"
        params: list[Any] = []
        if kinds:
            query += f" WHERE kind IN ({', '.join('?' for _ in kinds)})"
            params += list(kinds)
        query += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_event(row) for row in reversed(self._db.execute(query, params).fetchall())]

    def event_span(self, kinds: tuple[str, ...]) -> tuple[int, float | None, float | None]:
        """(count, first time, last time) of the events of ``kinds``."""
        marks = ", ".join("?" for _ in kinds)
        row = self._db.execute(
            f"SELECT COUNT(*), MIN(ts), MAX(ts) FROM events WHERE kind IN ({marks})", kinds
        ).fetchone()
        return int(row[0]), row[1], row[2]

    def last_event_id(self) -> int:
        """Id of the newest event (0 when there is none)."""
        row = self._db.execute("SELECT COALESCE(MAX(id), 0) AS last FROM events").fetchone()
        return int(row["last"])


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Give a store written before :data:`_ADDED_COLUMNS` existed those columns, and
    the change counter's indexes and triggers (:data:`_COUNTER_SQL`)."""
    present = {row["name"] for row in connection.execute("PRAGMA table_info(candidates)")}
    with connection:
        for name, kind in _ADDED_COLUMNS:
            if name not in present:
                connection.execute(f"ALTER TABLE candidates ADD COLUMN {name} {kind}")
        if "change_seq" not in present:
            # Rows written before the counter: numbered in id order, below every later change.
            connection.execute("UPDATE candidates SET change_seq = id")
    connection.executescript(_COUNTER_SQL)  # no-op once they exist


def _event(row: sqlite3.Row) -> Event:
    return Event(
        id=row["id"],
        ts=row["ts"],
        kind=row["kind"],
        candidate_id=row["candidate_id"],
        iteration=row["iteration"],
        payload=json.loads(row["payload"]),
    )


def _candidate(row: sqlite3.Row) -> Candidate:
    values = {key: row[key] for key in row.keys() if key in _CANDIDATE_FIELDS}  # noqa: SIM118
    for key in _JSON_COLUMNS:
        empty = [] if key == "loss_history" else {}
        values[key] = json.loads(values[key]) if values.get(key) else empty
    return Candidate(**values)


def candidate_to_dict(candidate: Candidate) -> dict[str, Any]:
    """JSON-ready dictionary of a candidate."""
    return asdict(candidate)
