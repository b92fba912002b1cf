"""The run store and the monitor's reader at scale (issue 17): a poll reads what
changed, not the table; what the views show does not depend on how many events came
after; pages are sorted and filtered in SQL; stores from before the change counter
still read. The stores are written through the store's own API (thousands of pool
rows in batches, then a small tabu search), and one at the paper's 60,000 candidates;
the timings at that size are in benchmarks/bench_store_scale.py."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
from edgenas.tui.reader import PageQuery, RunReader
from edgenas.tui.state import derive
from tui_helpers import LDP_CONFIG, FakeLDPRun

from edgenas.store import RunStore, is_pool_only, store_path

POOL = 6_000  # synthetic pool rows, besides the six real genotypes of the fake search
BATCH = 500
CONFIG = {**LDP_CONFIG, "pool_size": POOL + 6}


def add_pool(store: RunStore, count: int, start: int = 0) -> list[int]:
    """``count`` scored pool rows in batches, with a ``pool_progress`` event per batch
    (as streaming pool scoring writes them); genotypes are stand-ins, scores spread."""
    ids = []
    for first in range(start, start + count, BATCH):
        rows = [
            {"genotype": f"S2:pool-{i}", "origin": "pool", "status": "scored",
             "score": 150.0 + (i * 37 % 101) / 2, "params": 10_000 + i * 7 % 5_000,
             "flops": None if i % 11 == 0 else 2_000_000 + i % 997}
            for i in range(first, min(first + BATCH, start + count))
        ]  # fmt: skip
        ids += store.add_candidates(rows)
        store.append_event("pool_progress", {"scored": len(ids), "total": count})
    return ids


def write_run(run_dir, after_each_parent=None):
    """A finished run: the synthetic pool, then the fake search (pool of six, two
    parents with their tabu searches); ``after_each_parent()`` is called after the
    pool and after each parent (a reader following the run polls there)."""
    with RunStore.create(run_dir, name="big", kind="ldp-search", config=CONFIG) as store:
        add_pool(store, POOL)
        fake = FakeLDPRun(store, LDP_CONFIG)  # its own pool: six real genotypes
        parents = fake.pool()
        if after_each_parent:
            after_each_parent()
        for index, (cid, genotype) in enumerate(parents):
            fake.tabu_search(index, cid, genotype)
            store.append_event("latency_measured", {"latency_ms": 1.0 + index, "device": "cpu"})
            if after_each_parent:
                after_each_parent()
        store.append_event("run_finished", {"best_grade": 0.5})
        store.set_status("finished", {"alpha": 0.5})
    return run_dir


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("scale") / "big")


@pytest.fixture
def live_run(big_run, tmp_path):
    """A copy of the big run to write to."""
    copy = tmp_path / "live"
    copy.mkdir()
    source = sqlite3.connect(store_path(big_run))
    target = sqlite3.connect(store_path(copy))
    source.backup(target)
    source.close()
    target.close()
    return copy


def _vm_steps(reader: RunReader, action) -> int:
    """SQLite virtual machine instructions ``action`` makes the reader's connection run
    (in hundreds): the work done inside SQLite, which rows returned do not show."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0  # go on

    db = reader._store._db  # the reader's own connection (white box: what it costs)
    db.set_progress_handler(count, 100)
    try:
        action()
    finally:
        db.set_progress_handler(None, 100)
    return steps[0]


def test_a_poll_reads_the_rows_that_changed_not_the_table(live_run):
    reader = RunReader(live_run)
    first = reader.poll()
    total = first.counts.total
    assert total > POOL and first.counts.pool + first.counts.searched == total
    assert reader.rows_read >= total  # the first poll reads a digest of every row
    assert reader.poll() is None and reader.rows_read == 0  # nothing new: nothing read
    pool_ids = [cid for cid in range(1, POOL + 1, 97)]
    searched = [c.id for c in first.candidates]
    for k in (1, 10, 50):
        with RunStore.open(live_run) as writer:
            for cid in pool_ids[:k]:
                writer.update_candidate(cid, reward=0.25)
            writer.append_event("latency_measured", {"latency_ms": 2.0, "device": "cpu"})
        snapshot = reader.poll()
        assert snapshot is not None and snapshot.new_events[-1].kind == "latency_measured"
        assert reader.rows_read <= k + 1  # k digests (pool rows stay digests) + 1 event
        with RunStore.open(live_run) as writer:
            for cid in searched[:k]:
                writer.update_candidate(cid, reward=0.5)
        assert reader.poll() is not None
        # k digests + the k whole rows (searched rows are kept whole), no events.
        assert reader.rows_read <= 2 * min(k, len(searched))
    assert [c.reward for c in reader.snapshot.candidates][: len(searched[:50])] == [0.5] * len(
        searched[:50]
    )
    reader.close()


def test_the_work_of_a_poll_does_not_grow_with_the_table(live_run):
    reader = RunReader(live_run)
    reader.poll()

    def poll_after_ten_changes() -> int:
        with RunStore.open(live_run) as writer:
            for cid in range(5, 1005, 100):
                writer.update_candidate(cid, reward=0.75)
            writer.append_event("latency_measured", {"latency_ms": 2.0, "device": "cpu"})
        return _vm_steps(reader, lambda: reader.poll())

    small = poll_after_ten_changes()
    with RunStore.open(live_run) as writer:
        add_pool(writer, 3 * POOL, start=POOL)  # four times the rows
    reader.poll()
    large = poll_after_ten_changes()
    # One pass over the table would cost each poll more than the whole poll does.
    assert large < 1.5 * small + 50
    with RunStore.open_readonly(live_run) as store:
        scan = _scan_steps(store)
    assert large < scan / 4
    reader.close()


def _scan_steps(store: RunStore) -> int:
    """Instructions (in hundreds) of one pass over the candidates' scores."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store._db.set_progress_handler(count, 100)
    store._db.execute("SELECT SUM(score) FROM candidates").fetchone()
    store._db.set_progress_handler(None, 100)
    return steps[0]


def test_what_the_views_show_does_not_depend_on_the_event_window(big_run):
    full = derive(RunReader(big_run).poll(), now=0.0)
    narrow_reader = RunReader(big_run, max_events=5)
    narrow = derive(narrow_reader.poll(), now=0.0)
    with RunStore.open_readonly(big_run) as store:
        trained = [c for c in store.candidates(status="trained") if c.grade is not None]
    assert len(full.progress) == len(trained) == full.header.trained > 2
    for field in ("progress", "pareto", "ats", "device", "pool", "counts", "header", "rows"):
        assert getattr(narrow, field) == getattr(full, field), field
    assert len(narrow.log) == 5 and narrow.log == full.log[-5:]
    assert full.ats.parents_total == 2 and full.ats.parent_index == 1 and full.ats.tabu
    assert full.device.recent[-1].latency_ms == 2.0  # the second parent's measurement


def test_a_reader_that_follows_the_run_and_one_that_opens_it_at_the_end_agree(tmp_path):
    follower = RunReader(tmp_path / "run", max_events=12)
    write_run(tmp_path / "run", after_each_parent=follower.poll)
    assert follower.poll() is not None  # the end of the run
    late = RunReader(tmp_path / "run", max_events=12).poll()
    assert late.digest == follower.snapshot.digest
    assert [e.id for e in late.events] == [e.id for e in follower.snapshot.events]
    assert late.pool == follower.snapshot.pool and late.counts == follower.snapshot.counts
    assert late.candidates == follower.snapshot.candidates


def test_a_burst_longer_than_the_window_reads_only_the_window(live_run):
    reader = RunReader(live_run, max_events=20)
    reader.poll()
    with RunStore.open(live_run) as writer:
        for i in range(300):
            writer.append_event("latency_measured", {"latency_ms": float(i), "device": "cpu"})
    snapshot = reader.poll()
    assert reader.rows_read < 100  # the newest events, not the 300
    assert [e.payload["latency_ms"] for e in snapshot.events] == [float(i) for i in range(280, 300)]
    assert snapshot.digest.measurements[-1].payload["latency_ms"] == 299.0
    assert snapshot.digest.ats == RunReader(live_run).poll().digest.ats


def test_the_pool_is_a_histogram_of_every_member(big_run):
    snapshot = RunReader(big_run).poll()
    pool = snapshot.pool
    with RunStore.open_readonly(big_run) as store:
        rows = store.candidates()
    members = [c for c in rows if is_pool_only(c.origin, c.status) or c.origin == "parent"]
    assert pool.size == len(members) == POOL + 6
    assert pool.scored == sum(bins := pool.bins) == len(members) and len(bins) == 40
    assert pool.low < pool.median < pool.high and len(pool.parents) == 2
    assert snapshot.counts.pool == sum(1 for c in rows if is_pool_only(c.origin, c.status))


@pytest.mark.parametrize(
    ("sort", "descending", "subset"),
    [("score", True, "pool"), ("flops", False, "all"), ("metric", True, "searched"),
     ("grade", False, "trained"), ("id", True, "all")],
)  # fmt: skip
def test_pages_are_sorted_and_filtered_in_sql(big_run, sort, descending, subset):
    query = PageQuery(sort=sort, descending=descending, subset=subset, offset=3, limit=40)
    query = dataclasses.replace(query, metric="delta1")
    reader = RunReader(big_run)
    reader.page_query = query
    page = reader.poll().page
    assert page.query == query
    with RunStore.open_readonly(big_run) as store:
        rows = store.candidates()
    keep = {
        "all": lambda c: True,
        "pool": lambda c: is_pool_only(c.origin, c.status),
        "searched": lambda c: not is_pool_only(c.origin, c.status),
        "trained": lambda c: c.status == "trained",
    }[subset]
    attribute = {"latency": "latency_ms"}.get(sort, sort)

    def value(c):
        return c.metrics.get("delta1") if sort == "metric" else getattr(c, attribute)

    present = sorted((c for c in rows if keep(c) and value(c) is not None),
                     key=lambda c: (value(c), c.id if not descending else -c.id),
                     reverse=descending)  # fmt: skip
    missing = [c for c in rows if keep(c) and value(c) is None]  # id order, last
    expected = (present + missing)[3:43]
    assert [c.id for c, _ in page.rows] == [c.id for c in expected]
    by_id = {c.id: c for c in rows}
    for candidate, parent in page.rows:
        assert parent == (by_id[candidate.parent_id].genotype if candidate.parent_id else None)


def test_the_change_counter_follows_every_writer(tmp_path):
    with RunStore.create(tmp_path / "r", name="r", kind="ldp-search", config={}) as store:
        ids = add_pool(store, 20)
        store.update_candidate(ids[3], reward=1.0)
        assert [d.id for d in store.candidate_digests(after_seq=20)] == [ids[3]]
    # Another program (an older edgenas, an sqlite3 shell) updates a row: still counted.
    db = sqlite3.connect(store_path(tmp_path / "r"))
    with db:
        db.execute("UPDATE candidates SET score = 1.0 WHERE id = ?", (ids[5],))
    db.close()
    with RunStore.open_readonly(tmp_path / "r") as store:
        digests = store.candidate_digests()
        assert [d.id for d in digests][-2:] == [ids[3], ids[5]]
        assert [d.change_seq for d in digests] == sorted({d.change_seq for d in digests})


def _strip_counter(run_dir) -> None:
    """Make a store look written before the change counter existed."""
    db = sqlite3.connect(store_path(run_dir))
    db.executescript(
        "DROP TRIGGER candidates_counted_insert; DROP TRIGGER candidates_counted_update;"
        "DROP INDEX candidates_change; ALTER TABLE candidates DROP COLUMN change_seq;"
    )
    db.close()


def test_a_store_from_before_the_change_counter_still_reads_and_gains_it(tmp_path):
    run_dir = tmp_path / "old"
    with RunStore.create(run_dir, name="old", kind="ldp-search", config=CONFIG) as store:
        add_pool(store, 50)
        FakeLDPRun(store, LDP_CONFIG).pool()
    _strip_counter(run_dir)
    reader = RunReader(run_dir)
    first = reader.poll()
    assert first.error is None and first.counts.total == 56
    assert reader.poll() is None  # unchanged
    db = sqlite3.connect(store_path(run_dir))  # an older edgenas writing it
    with db:
        db.execute("UPDATE candidates SET status = 'trained', grade = 0.5, updated_at = 1e10 "
                   "WHERE id = 3")  # fmt: skip
    db.close()
    changed = reader.poll()
    assert changed.counts.trained == 1 and 3 in {c.id for c in changed.candidates}
    # Opened for writing (a resume), it gains the counter; the reader switches to it.
    with RunStore.open(run_dir) as store:
        assert store.has_change_counter
        store.update_candidate(4, reward=0.5)
    assert reader.poll().counts.total == 56
    with RunStore.open(run_dir) as store:
        store.update_candidate(5, status="failed")
    assert reader.poll().counts.searched == 2  # ids 3 and 5 (the parents are not searched yet)
    assert reader.rows_read <= 2
    reader.close()


def test_at_paper_scale_a_poll_reads_what_changed(tmp_path):
    """The issue's size: a 60,000-candidate store written through the store's API (the
    pool in batches, as the search streams it), then polls after k changes read k rows."""
    paper_pool = 60_000
    run_dir = tmp_path / "paper"
    config = {**LDP_CONFIG, "pool_size": paper_pool}
    with RunStore.create(run_dir, name="paper", kind="ldp-search", config=config) as store:
        ids = add_pool(store, paper_pool)
    reader = RunReader(run_dir)
    first = reader.poll()
    assert first.counts.total == paper_pool == first.pool.size == sum(first.pool.bins)
    assert reader.poll() is None and reader.rows_read == 0
    for k in (1, 25):
        with RunStore.open(run_dir) as writer:
            for cid in ids[-k:]:
                writer.update_candidate(cid, status="trained", accuracy=0.5, grade=0.5)
        assert reader.poll() is not None
        assert reader.rows_read <= 2 * k + 1  # the k changed rows, never the 60,000
    reader.close()
