"""The monitor's data side without Textual: run listing, polling, derived state, plots,
background jobs, and bad store files reported as messages."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys

from edgenas.tui import jobs
from edgenas.tui.plots import progress_plots, shrink_plots
from edgenas.tui.reader import RunReader, list_runs
from edgenas.tui.state import derive, describe_event, format_count, format_duration
from tui_helpers import BASE_TIME, write_ldp_run, write_shrink_run

from edgenas.store import Event, RunLock, RunStore, store_path


def test_data_side_imports_no_widgets_or_torch():
    code = (
        "import sys, edgenas.tui.reader, edgenas.tui.state, edgenas.tui.plots, edgenas.tui.jobs;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'torch')];"
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_list_runs_newest_first_with_unreadable_ones(tmp_path):
    write_ldp_run(tmp_path / "runs" / "old")
    write_ldp_run(tmp_path / "runs" / "new", freeze=False)
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    (broken / "run.sqlite").write_bytes(b"not a database at all" * 100)
    entries = list_runs(tmp_path / "runs")
    by_name = {e.name: e for e in entries}
    assert [e.name for e in entries if e.error is None] == ["new", "old"]
    assert by_name["old"].kind == "ldp-search" and by_name["old"].status == "finished"
    assert by_name["old"].candidates > 6
    assert by_name["broken"].error and "broken" in str(by_name["broken"].path)
    assert list_runs(tmp_path / "nowhere") == []


def test_poll_returns_changes_only_and_merges_bursts(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run", finished=False)
    reader = RunReader(run_dir)
    first = reader.poll()
    assert first is not None and first.error is None
    # Two batches of the pool (pool_progress), pool_scored, parents_selected.
    assert len(first.new_events) == len(first.events) == 4
    assert reader.poll() is None  # nothing new
    with RunStore.open(run_dir) as writer:
        for i in range(50):
            writer.append_event("latency_measured", {"latency_ms": float(i), "device": "cpu"})
    burst = reader.poll()
    assert burst is not None and len(burst.new_events) == 50
    assert [e.id for e in burst.events] == sorted({e.id for e in burst.events})
    assert burst.version == first.version + 1
    reader.close()


def test_missing_then_created_store_recovers(tmp_path):
    run_dir = tmp_path / "later"
    reader = RunReader(run_dir)
    snapshot = reader.poll()
    assert snapshot is not None and "no run store" in snapshot.error
    assert reader.poll() is None  # same error: no new snapshot
    write_ldp_run(run_dir, finished=False)
    snapshot = reader.poll()
    assert snapshot.error is None and snapshot.info.kind == "ldp-search"


def test_corrupt_and_foreign_files_become_messages(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.sqlite").write_bytes(b"\x00garbage" * 512)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    db = sqlite3.connect(foreign / "run.sqlite")
    db.execute("CREATE TABLE things (x)")
    db.commit()
    db.close()
    assert "not a readable edgenas run store" in RunReader(corrupt).poll().error
    assert "not an edgenas run store" in RunReader(foreign).poll().error
    # The error state still derives into something the header can show.
    state = derive(RunReader(foreign).poll())
    assert state.header.status == "unreadable" and state.error


def test_locked_store_is_a_message_and_the_reader_recovers(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run", finished=False)
    reader = RunReader(run_dir)
    assert reader.poll().error is None
    reader.close()
    # An exclusive-mode writer keeps every reader out until it lets go.
    locker = sqlite3.connect(store_path(run_dir), timeout=0)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    try:
        locked = reader.poll()
    finally:
        locker.rollback()
        locker.close()
    assert locked is not None and locked.error
    recovered = reader.poll()
    assert recovered is not None and recovered.error is None


def test_derive_ldp_state(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run")
    state = derive(RunReader(run_dir).poll(), now=BASE_TIME + 10_000)
    header = state.header
    assert header.status == "finished" and header.task == "depth"
    assert header.targets == "params≤250k" and header.alpha == 0.5
    assert header.planned == 8 and header.trained == len(state.progress) == 8
    assert header.eta_s is None  # finished: no ETA
    assert header.elapsed_s > 0
    trained = [r for r in state.rows if r.status == "trained"]
    assert state.best_id == max(trained, key=lambda r: r.grade).id
    assert sum(p.is_best for p in state.pareto) == 1
    assert any(p.on_front for p in state.pareto if p.is_best) or state.pareto
    assert state.metric_name == "delta1" and all(r.metric == r.accuracy for r in trained)
    ats = state.ats
    assert ats.parents_total == 2 and ats.parent_index == 1 and ats.tabu
    assert ats.children and all(c.reward is not None for c in ats.children)
    assert any("parent 2 done" in m for m in ats.moves)
    assert state.log[-1].kind == "run_finished"


def test_eta_while_running(tmp_path):
    run_dir = tmp_path / "run"
    write_ldp_run(run_dir, finished=False, freeze=False)
    with RunStore.open(run_dir) as writer:
        from tui_helpers import LDP_CONFIG, FakeLDPRun

        fake = FakeLDPRun(writer, LDP_CONFIG, seed=3)
        parents = [(c.id, c.genotype) for c in writer.candidates()[:1]]
        fake.train(*parents[0])
        fake.train(*[(c.id, c.genotype) for c in writer.candidates()][1])
    from tui_helpers import freeze_times

    freeze_times(run_dir)
    lock = RunLock.acquire(run_dir)  # as the search process holds it while it runs
    try:
        state = derive(RunReader(run_dir).poll(), now=BASE_TIME + 1000)
    finally:
        lock.release()
    assert state.header.status == "running" and state.header.trained == 2
    # Two trainings 10 s apart, 6 to go.
    assert state.header.eta_s == 60.0
    assert state.header.elapsed_s == 1000
    # Nobody holds the run any more, but it never said it ended (kill -9): stopped.
    assert derive(RunReader(run_dir).poll()).header.status == "stopped"


def test_shrink_state_and_plots(tmp_path):
    state = derive(RunReader(write_shrink_run(tmp_path / "shrink")).poll())
    assert state.header.kind == "hrnas-shrink" and state.header.trained == 4
    assert state.shrink.blocks == ("block0", "block1", "block2")
    assert state.shrink.units[0] == (44, 44, 44) and state.shrink.units[-1] == (41, 38, 35)
    specs = shrink_plots(state)
    assert next(s.title for s in specs) == "units kept (all blocks)"
    assert specs[1].title == "macs (M) vs step" and specs[1].series[0].ys[0] == 1.0
    assert "MACs 700k" in state.log[-1].text


def test_progress_plots_mark_the_best(tmp_path):
    state = derive(RunReader(write_ldp_run(tmp_path / "run")).poll())
    accuracy, resource, grade, pareto = progress_plots(state)
    assert len(accuracy.series[0].xs) == 8 and resource.title == "parameters (k) vs iteration"
    best_so_far = grade.series[1].ys
    assert list(best_so_far) == sorted(best_so_far)
    best = next(s for s in pareto.series if s.label == "best")
    best_row = next(r for r in state.rows if r.id == state.best_id)
    assert best.xs == (best_row.params / 1e3,) and pareto.xlabel == "parameters (k)"
    assert progress_plots(state, "flops")[1].title == "MACs (M) vs iteration"
    empty = progress_plots(derive(RunReader(write_ldp_run(tmp_path / "r2", finished=False)).poll()))
    assert all(not spec.series for spec in empty)


def test_formatting_and_unknown_events():
    assert format_count(282_543) == "283k" and format_count(16_827_552) == "16.8M"
    assert format_count(None) == "-" and format_count(12) == "12"
    assert format_duration(3725) == "1h02m" and format_duration(75) == "1m15s"
    assert describe_event(Event(1, 0.0, "brand_new", 4, None, {"b": 1, "a": 2})) == "#4 a, b"


def test_job_specs_and_profile_reading(tmp_path):
    config = {"task": "sr", "scale": 3, "deploy_input": [24, 32], "device": "cpu"}
    spec = jobs.export_job(tmp_path, 7, "S2:x", config)
    assert spec.argv[1:4] == ("-m", "edgenas", "export")
    assert "--scale" in spec.argv and "1x3x24x32" in spec.argv
    assert spec.output == tmp_path / "monitor" / "candidate-7.onnx"
    profile = jobs.profile_job(tmp_path, 7, "S2:x", config)
    assert "--layers" in profile.argv and profile.output == jobs.latency_path(tmp_path, 7)
    assert jobs.read_profile(tmp_path, 7) is None
    profile.output.parent.mkdir(parents=True)
    profile.output.write_text(
        json.dumps(
            {
                "device": {"name": "cpu"},
                "runtime": {"name": "onnxruntime", "version": "1.2"},
                "timings": {"median_ms": 1.5},
                "layers": [
                    {"name": "a", "op_type": "Conv", "time_ms": 0.1, "onnx_node": "a"},
                    {"name": "b", "op_type": "Relu", "time_ms": 0.7, "onnx_node": None},
                ],
            }
        )
    )
    read = jobs.read_profile(tmp_path, 7)
    assert read.median_ms == 1.5 and [layer.name for layer in read.layers] == ["b", "a"]


def test_run_job_streams_lines(tmp_path):
    out = tmp_path / "out.txt"
    code = f"import sys; print('one'); print('two', file=sys.stderr); open({str(out)!r}, 'w')"
    spec = jobs.JobSpec("demo", (sys.executable, "-c", code), out)
    lines: list[str] = []
    result = asyncio.run(jobs.run_job(spec, lines.append))
    assert result.returncode == 0 and result.output == out
    assert sorted(lines) == ["one", "two"]
    failing = jobs.JobSpec("bad", (sys.executable, "-c", "raise SystemExit(3)"), tmp_path / "x")
    result = asyncio.run(jobs.run_job(failing, lines.append))
    assert result.returncode == 3 and result.output is None


def test_close_from_another_thread_while_polling_is_safe(tmp_path):
    # The app polls in a worker thread and closes on unmount from its own thread; an
    # unguarded sqlite3 close during a query crashes the interpreter.
    import threading

    run_dir = write_ldp_run(tmp_path / "run")
    reader = RunReader(run_dir)
    stop = threading.Event()

    def poll_forever():
        while not stop.is_set():
            reader.poll()

    worker = threading.Thread(target=poll_forever)
    worker.start()
    try:
        for _ in range(200):
            reader.close()
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert reader.poll() is None or reader.snapshot.error is None


def test_the_pareto_front_is_the_set_no_point_dominates():
    import random

    from edgenas.tui.state import front_ids

    rng = random.Random(0)
    for _ in range(200):  # small grids: many ties in resource and accuracy
        items = [(i, float(rng.randint(0, 6)), float(rng.randint(0, 6))) for i in range(20)]
        every_pair = {
            cid
            for cid, r, a in items
            if not any(r2 <= r and a2 >= a and (r2 < r or a2 > a) for _, r2, a2 in items)
        }
        assert front_ids(items) == every_pair


def test_plots_draw_no_more_points_than_the_canvas_shows():
    from edgenas.tui.plots import Series
    from edgenas.tui.widgets.plot import thin

    xs = tuple(float(i) for i in range(1000))
    ys = tuple(float((i * 7919) % 1000) for i in range(1000))
    line = thin(Series("A", xs, ys), columns=10, rows=4)
    assert len(line.xs) <= 2 * 2 * 10 + 2 and list(line.xs) == sorted(line.xs)
    assert min(line.ys) == min(ys) and max(line.ys) == max(ys)  # the envelope is kept
    dots = thin(Series("p", xs, ys, scatter=True), columns=10, rows=4)
    assert len(dots.xs) <= (2 * 10 + 1) * (4 * 4 + 1) and dots.scatter
    short = Series("s", xs[:30], ys[:30])
    assert thin(short, columns=10, rows=4) is short


def test_the_header_shows_the_pool_while_it_is_scored(tmp_path):
    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, name="run", kind="ldp-search", config={}) as store:
        store.append_event(
            "pool_progress", {"scored": 1500, "total": 60000, "rate_per_s": 2.5, "eta_s": 23400}
        )
        # Read while this process holds the run: a live writer, the run is "running".
        state = derive(RunReader(run_dir).poll(), now=BASE_TIME)
    assert state.header.pool.scored == 1500 and state.header.pool.eta_s == 23400
    assert state.log[-1].text == "pool 1.5k/60.0k scored, 2.5/s, ETA 6h30m"
    done = Event(2, 0.0, "pool_scored", None, None, {"total": 60000, "scored_now": 58500})
    assert describe_event(done) == "pool of 60.0k scored"
    failed = {"scored": 1756, "total": 60000, "failed": [["S2:x", "WorkerCrashedError: lost"]]}
    line = describe_event(Event(3, 0.0, "pool_progress", None, None, failed))
    assert line == "pool 1.8k/60.0k scored, 1 failed"


def test_the_pool_panel_draws_the_histogram_and_marks_the_parents():
    from edgenas.tui.reader import PoolSummary, histogram
    from edgenas.tui.widgets.pool import histogram_lines, parent_marks

    scores = sorted([100.0] * 5 + [150.0] * 20 + [200.0] * 5 + [10_000.0])  # one outlier
    low, high, bins = histogram(scores, bins=10)
    assert (low, high) == (100.0, 200.0) and sum(bins) == len(scores)
    assert bins[0] == 5 and bins[5] == 20 and bins[-1] == 6  # the outlier in the last bar
    top, bottom = histogram_lines(bins)
    assert top[5] == "█" and bottom[5] == "█" and top[0] == " " and bottom[0] != " "
    pool = PoolSummary(size=31, scored=31, low=low, high=high, bins=bins, parents=(10_000.0,))
    assert parent_marks(pool) == " " * 9 + "▲"


def test_a_speed_search_labels_its_score_steps_per_second(tmp_path):
    proposed = {"genotype": "S2:x", "parent": "S2:y", "score": 7.25, "reward": 0.9}
    labels = {}
    for score in ("naswot", "speed", None):
        run_dir = tmp_path / str(score)
        config = {"task": "seg"} if score is None else {"task": "seg", "score": score}
        with RunStore.create(run_dir, name="run", kind="ldp-search", config=config) as store:
            store.append_event("child_proposed", proposed, candidate_id=3)
            state = derive(RunReader(run_dir).poll(), now=BASE_TIME)
        labels[score] = (state.score_name, state.log[-1].text)
    assert labels["speed"] == ("steps/s", "#3 R 0.900 steps/s 7.2")
    assert labels["naswot"] == ("NASWOT", "#3 R 0.900 NASWOT 7.2")
    assert labels[None] == labels["naswot"]  # stored before the choice: NASWOT
