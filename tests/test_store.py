"""The SQLite run store: round trips, append-only events, readers, bad files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from edgenas.store import RunStore, StoreError, store_path


@pytest.fixture
def store(tmp_path):
    with RunStore.create(
        tmp_path / "run", name="run", kind="ldp-search", config={"a": 0.5, "seed": 1}
    ) as s:
        yield s


def test_config_and_status_round_trip(store, tmp_path):
    info = store.run_info()
    assert (
        info.config == {"a": 0.5, "seed": 1}
        and info.status == "running"
        and info.kind == "ldp-search"
    )
    store.set_status("finished", {"best": 3})
    with RunStore.open_readonly(tmp_path / "run") as reader:
        assert reader.run_info().status == "finished"
        assert reader.run_info().summary == {"best": 3}
    assert store_path(tmp_path / "run").name == "run.sqlite"
    journal = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_candidates_insert_update_find(store):
    parent = store.add_candidate("S1:a", origin="parent", status="scored", score=401.5, params=1000)
    child = store.add_candidate(
        "S1:b", origin="child", status="proposed", parent_id=parent, reward=0.8
    )
    store.update_candidate(
        child,
        status="trained",
        metrics={"miou": 0.4},
        accuracy=0.4,
        grade=0.7,
        latency_ms=12.5,
        latency_source="measured",
        device="cpu",
        timings={"train": 3.0},
    )
    got = store.candidate(child)
    assert (got.parent_id, got.status, got.metrics, got.timings) == (
        parent,
        "trained",
        {"miou": 0.4},
        {"train": 3.0},
    )
    assert (
        got.latency_source == "measured" and got.reward == 0.8 and got.updated_at >= got.created_at
    )
    assert store.find_candidate("S1:a").score == 401.5
    assert store.find_candidate("S1:zzz") is None
    assert [c.genotype for c in store.candidates()] == ["S1:a", "S1:b"]
    assert [c.genotype for c in store.candidates(status="trained")] == ["S1:b"]
    with pytest.raises(sqlite3.IntegrityError):
        store.add_candidate("S1:a", origin="child", status="proposed")
    with pytest.raises(ValueError, match="unknown candidate fields"):
        store.update_candidate(child, colour="red")
    with pytest.raises(KeyError):
        store.candidate(99)


def test_events_are_append_only_and_increasing(store):
    ids = [store.append_event("child_proposed", {"i": i}, iteration=i) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [e.payload["i"] for e in store.events(after_id=ids[1])] == [2, 3, 4]
    store.append_event("move_accepted", {"x": 1}, candidate_id=1)
    assert [e.kind for e in store.events(kinds=("move_accepted",))] == ["move_accepted"]
    assert store.last_event_id() == ids[-1] + 1
    assert len(store.events(limit=2)) == 2


def test_reader_in_another_process_sees_committed_writes(store, tmp_path):
    store.add_candidate("S1:a", origin="parent", status="scored")
    store.append_event("parent_scored", {"score": 1.0})
    code = (
        "import sys; from edgenas.store import RunStore;"
        "s = RunStore.open_readonly(sys.argv[1]);"
        "print(len(s.candidates()), s.last_event_id())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["1", "1"]


def test_readonly_refuses_writes(store, tmp_path):
    with (
        RunStore.open_readonly(tmp_path / "run") as reader,
        pytest.raises(StoreError, match="read-only"),
    ):
        reader.append_event("x")


def test_create_refuses_to_overwrite(store, tmp_path):
    with pytest.raises(StoreError, match="already exists"):
        RunStore.create(tmp_path / "run", name="run", kind="ldp-search", config={})


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="no run store"):
        RunStore.open(tmp_path / "missing")
    junk = tmp_path / "junk" / "run.sqlite"
    junk.parent.mkdir()
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable"):
        RunStore.open_readonly(junk.parent)
    foreign = tmp_path / "foreign" / "run.sqlite"
    foreign.parent.mkdir()
    sqlite3.connect(foreign).executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
    with pytest.raises(StoreError, match="not an edgenas run store"):
        RunStore.open(foreign.parent)


def test_store_module_needs_no_torch():
    code = "import sys, edgenas.store; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_store_another_program_locks_is_a_write_error_naming_it(tmp_path):
    import sqlite3

    from edgenas.store import StoreWriteError

    store = RunStore.create(tmp_path / "r", name="r", kind="test", config={})
    store._db.execute("PRAGMA busy_timeout = 200")  # instead of waiting the usual 30 s
    other = sqlite3.connect(str(tmp_path / "r" / "run.sqlite"))
    other.execute("BEGIN EXCLUSIVE")  # e.g. an sqlite3 shell in the middle of an edit
    try:
        with pytest.raises(StoreWriteError, match="another program holds it locked"):
            store.append_event("run_started", {})
    finally:
        other.rollback()
        other.close()
    store.append_event("run_started", {})  # once it is let go, the run goes on
    assert [e.kind for e in store.events()] == ["run_started"]
    store.close()
