"""The run store, the monitor and the report at paper scale (issue 17): synthetic run
stores of 1K / 10K / 60K candidates, and what reading them costs.

Each store is what a finished LDP search with the paper's shape writes (6 parents, 4
children per step, up to 100 steps per parent, the rest of the candidates a NASWOT-scored
pool), written through the store's own API: pool rows in batches (``add_candidates``),
children and trainings one by one with the events the search appends. ``--events old``
writes one ``parent_scored`` event per pool member instead of the batch progress events,
as searches did before pool scoring streamed (a store the monitor must still read).

For each store, in fresh processes (medians of ``--repeats``):

- first screen: the monitor (``MonitorApp`` under Textual's headless ``run_test``) from
  its construction until the dashboard shows the run; also from process start, and
  until the whole run is read (the monitor reads the pool after the first screen);
- memory: the monitor process's RSS after 3 s of polling, and its peak;
- poll cost: candidate and event rows fetched, and ms, for a poll after 10 candidate
  rows were updated (plus the ms to derive the dashboard state from it);
- report: ``write_report`` (report.md and its figures);
- replay start: ``Recorder(store)``, what ``--resume`` loads before replaying.

``--source DIR`` measures another checkout of the code (e.g. ``git archive HEAD | tar
-x -C DIR`` before a change), so before and after come from the same script.

    python benchmarks/bench_store_scale.py [--sizes 1000,10000,60000] [--repeats 3]
        [--events new|old] [--source DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARENTS = 6
CHILDREN = 4
BATCH = 500  # pool rows per add_candidates batch (and per pool_progress event)


# ------------------------------------------------------------------ code under test
class _SourceFinder:
    """Imports ``edgenas`` (and its ``devices``/``tui`` folders) from another checkout."""

    def __init__(self, source: Path) -> None:
        self.mapping = {
            "edgenas": source / "edgenas",
            "edgenas.devices": source / "devices",
            "edgenas.tui": source / "tui",
        }

    def find_spec(self, fullname, path=None, target=None):
        folder = self.mapping.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def _use_source(source: str | None) -> None:
    if source:
        sys.meta_path.insert(0, _SourceFinder(Path(source).resolve()))


# ------------------------------------------------------------------ synthetic store
def _genotype_maker(seed: int):
    """A function returning distinct, realistic genotype strings quickly: each block
    drawn from the blocks of a few hundred genotypes sampled from the default space
    (sampling 60K valid genotypes one by one takes minutes)."""
    from edgenas.space import LDPSpace
    from edgenas.space.genotype import Genotype

    space = LDPSpace()
    rng = random.Random(seed)
    by_scales: dict[int, list] = {}
    for _ in range(300):
        g = space.sample(rng)
        by_scales.setdefault(g.scales, []).append(g)
    seen: set[str] = set()

    def make() -> str:
        while True:
            scales = rng.choice(sorted(by_scales))
            base = by_scales[scales]
            blocks = tuple(rng.choice(base).blocks[i] for i in range(len(base[0].blocks)))
            text = Genotype(scales, blocks).encode()
            if text not in seen:
                seen.add(text)
                return text

    def mutate(genotype: str) -> str:
        from edgenas.space import decode

        g = decode(genotype)
        while True:
            i = rng.randrange(len(g.blocks))
            donor = rng.choice(by_scales[g.scales])
            text = g.replace_block(i, donor.blocks[i]).encode()
            if text not in seen:
                seen.add(text)
                return text

    return make, mutate


def build_store(run_dir: Path, size: int, events: str, seed: int = 0) -> dict:
    """Write a finished synthetic LDP run of ``size`` candidates; returns its shape."""
    from edgenas.search.config import SearchConfig
    from edgenas.store import RunStore

    rng = random.Random(seed)
    iterations = max(1, min(100, size // 100))
    pool_size = size - PARENTS * iterations * CHILDREN
    config = SearchConfig(
        task="depth", run_name=run_dir.name, pool_size=pool_size, parents=PARENTS,
        children=CHILDREN, max_iterations=iterations, patience=1000, train_seconds=60.0,
        final_seconds=600.0, target_params=250_000.0,
    ).to_dict()  # fmt: skip
    make, mutate = _genotype_maker(seed)
    store = RunStore.create(run_dir, name=run_dir.name, kind="ldp-search", config=config)
    store.append_event("run_started", {"settings": config})
    pool: list[tuple[float, int, str]] = []
    start = time.time()
    for first in range(0, pool_size, BATCH):
        rows = []
        for _ in range(min(BATCH, pool_size - first)):
            params = rng.randrange(20_000, 900_000)
            rows.append(
                {"genotype": make(), "origin": "pool", "status": "scored",
                 "score": round(rng.gauss(1200, 60), 3), "params": params,
                 "flops": params * 180}
            )  # fmt: skip
        ids = store.add_candidates(rows)
        pool += [(r["score"], i, r["genotype"]) for r, i in zip(rows, ids, strict=True)]
        if events == "old":
            for r, i in zip(rows, ids, strict=True):
                store.append_event(
                    "parent_scored",
                    {"genotype": r["genotype"], "score": r["score"], "params": r["params"]},
                    candidate_id=i,
                )
        else:
            done = first + len(rows)
            rate = done / max(1e-6, time.time() - start)
            store.append_event(
                "pool_progress",
                {"scored": done, "total": pool_size, "rate_per_s": rate,
                 "eta_s": (pool_size - done) / rate},
            )  # fmt: skip
    if events != "old":
        store.append_event("pool_scored", {"total": pool_size, "scored": pool_size})
    pool.sort(reverse=True)
    parents = pool[:PARENTS]
    store.append_event(
        "parents_selected", {"genotypes": [g for _, _, g in parents], "resource": "params"}
    )
    iteration = 0

    def train(cid: int, genotype: str) -> float:
        nonlocal iteration
        accuracy = round(0.3 + 0.5 * rng.random(), 4)
        params = rng.randrange(50_000, 400_000)
        grade = round(0.5 * accuracy + 0.5 * min(1.0, 250_000 / params) ** 0.07, 4)
        metrics = {"delta1": accuracy, "rel": round(1 - accuracy, 4)}
        curve = [[s * 8, round(1 - accuracy + 2.0 / s, 4)] for s in range(1, 65)]
        store.update_candidate(
            cid, status="trained", accuracy=accuracy, grade=grade, metrics=metrics,
            params=params, flops=params * 180, iteration=iteration,
            timings={"train": 60.0, "measure": 2.0}, loss_history=curve,
        )  # fmt: skip
        iteration += 1
        store.append_event(
            "candidate_trained",
            {"genotype": genotype, "accuracy": accuracy, "metrics": metrics,
             "params": params, "flops": params * 180, "latency_ms": None, "grade": grade},
            candidate_id=cid, iteration=iteration,
        )  # fmt: skip
        return grade

    best = (-1.0, 0, "")
    for index, (_, cid, genotype) in enumerate(parents):
        store.update_candidate(cid, origin="parent")
        current = (train(cid, genotype), cid, genotype)
        tabu: list[str] = []
        for step in range(iterations):
            proposed = []
            for _ in range(CHILDREN):
                child = mutate(current[2])
                score, reward = round(rng.gauss(1200, 60), 3), round(rng.random(), 4)
                params = rng.randrange(50_000, 400_000)
                child_id = store.add_candidate(
                    child, origin="child", status="proposed", parent_id=current[1],
                    iteration=iteration, score=score, params=params, flops=params * 180,
                    reward=reward, latency_ms=round(rng.uniform(2, 20), 3),
                    latency_source="predicted",
                )  # fmt: skip
                store.append_event(
                    "child_proposed",
                    {"genotype": child, "parent": current[2], "score": score,
                     "reward": reward, "params": params, "latency_ms": None},
                    candidate_id=child_id, iteration=iteration,
                )  # fmt: skip
                proposed.append((reward, child_id, child))
            _, child_id, child = max(proposed)
            grade = train(child_id, child)
            tabu = [*tabu, current[2]][-5:]
            payload = {"from": current[2], "to": child, "grade": grade, "step": step,
                       "parent_index": index}  # fmt: skip
            if grade > current[0]:
                kind, current = "move_accepted", (grade, child_id, child)
            else:
                kind = "move_rejected"
                payload.update(rejected=child, current_grade=current[0], to=current[2])
            store.append_event(kind, payload, candidate_id=child_id, iteration=iteration)
            store.append_event(
                "tabu_updated", {"tabu": tabu, "candidate_list": []}, iteration=iteration
            )
            best = max(best, current)
        store.append_event(
            "parent_finished",
            {"parent": genotype, "best": best[2], "grade": best[0], "parent_index": index},
            candidate_id=best[1], iteration=iteration,
        )  # fmt: skip
    summary = {"alpha": 0.5, "best": best[2], "best_candidate_id": best[1],
               "best_grade": best[0], "trained": iteration, "seconds": 3600.0}  # fmt: skip
    store.append_event("run_finished", summary)
    store.set_status("finished", summary)
    store.close()
    return {"pool": pool_size, "trained": iteration, "children": PARENTS * iterations * CHILDREN}


# ------------------------------------------------------------------ measurements
def _memory_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc/self/status."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def measure_screen(run_dir: Path, spawned_at: float) -> dict:
    """First full screen of the monitor on ``run_dir`` and its memory."""
    import asyncio

    from edgenas.tui.app import MonitorApp
    from edgenas.tui.screens.dashboard import DashboardScreen

    async def go() -> dict:
        app = MonitorApp(run_dir, poll_interval=1.0)
        start = time.perf_counter()
        async with app.run_test(size=(100, 30)) as pilot:
            while True:
                screens = [s for s in app.screen_stack if isinstance(s, DashboardScreen)]
                state = screens[0].state if screens else None
                if state is not None and state.header.kind != "?":
                    break
                await pilot.pause(0.01)
            await pilot.pause()  # the screen drawn with the data
            first = time.perf_counter() - start
            since_spawn = time.time() - spawned_at
            # A staged reader's first screen comes before the pool is read: until all is.
            while getattr(screens[0].state, "partial", False):
                await pilot.pause(0.01)
            complete = time.perf_counter() - start
            await pilot.pause(3.0)  # a few polls: what the monitor holds while it runs
            rss, _ = _memory_mb()
        _, peak = _memory_mb()
        return {
            "screen_s": first,
            "spawn_s": since_spawn,
            "complete_s": complete,
            "rss_mb": rss,
            "peak_mb": peak,
        }

    return asyncio.run(go())


def measure_poll(run_dir: Path) -> dict:
    """Rows fetched and time of a poll after 10 candidate rows changed."""
    from edgenas.tui.reader import RunReader
    from edgenas.tui.state import derive

    from edgenas.store import RunStore

    reader = RunReader(run_dir)
    reader.poll()
    db = reader._store._db  # count every row the reader fetches, whatever its query
    fetched = [0]

    def counting(cursor, row, base=db.row_factory):
        fetched[0] += 1
        return base(cursor, row)

    db.row_factory = counting
    with RunStore.open(run_dir) as writer:
        ids = [c for c in range(101, 10_000, 97)][:10]
        for cid in ids:
            writer.update_candidate(cid, reward=0.5, predicted_latency_ms=3.0)
        writer.append_event("latency_measured", {"latency_ms": 3.0, "device": "cpu"})
    start = time.perf_counter()
    snapshot = reader.poll()
    poll_s = time.perf_counter() - start
    start = time.perf_counter()
    derive(snapshot)
    derive_s = time.perf_counter() - start
    reader.close()
    return {"poll_rows": fetched[0], "poll_ms": poll_s * 1e3, "derive_ms": derive_s * 1e3}


def measure_report(run_dir: Path) -> dict:
    import matplotlib.pyplot  # noqa: F401  (imported before the clock starts)

    from edgenas.search.report import write_report

    start = time.perf_counter()
    write_report(run_dir)
    return {"report_s": time.perf_counter() - start}


def measure_recorder(run_dir: Path) -> dict:
    from edgenas.search.recorder import Recorder
    from edgenas.store import RunStore

    with RunStore.open(run_dir) as store:
        start = time.perf_counter()
        Recorder(store)
        return {"recorder_s": time.perf_counter() - start}


WORKERS = {
    "screen": lambda run_dir, args: measure_screen(run_dir, args.spawned_at),
    "poll": lambda run_dir, args: measure_poll(run_dir),
    "report": lambda run_dir, args: measure_report(run_dir),
    "recorder": lambda run_dir, args: measure_recorder(run_dir),
    "build": lambda run_dir, args: build_store(run_dir, args.size, args.events),
}


def _worker(args) -> None:
    _use_source(args.source)
    result = WORKERS[args.worker](Path(args.store), args)
    print(json.dumps(result))


def _run_worker(task: str, store: Path, args, **extra) -> dict:
    """Run one measurement in a fresh process; its last output line is the result."""
    argv = [sys.executable, __file__, "--worker", task, "--store", str(store)]
    if args.source:
        argv += ["--source", args.source]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    spawned = time.time()
    if task == "screen":
        argv += ["--spawned-at", repr(spawned)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{task} on {store} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _copy(store: Path, into: Path) -> Path:
    """A fresh copy of a run folder (a poll or a resume changes the store)."""
    if into.exists():
        shutil.rmtree(into)
    shutil.copytree(store, into)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,60000", help="candidates per store")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", choices=("new", "old"), default="new")
    parser.add_argument("--source", help="checkout whose edgenas to measure")
    parser.add_argument("--keep", help="build the stores here and keep them")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench_store_scale_"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"code: {args.source or 'this checkout'}; events: {args.events}; "
          f"medians of {args.repeats}; stores under {root}")  # fmt: skip
    header = (
        f"{'cands':>6} {'events':>6} {'screen s':>8} {'from start s':>12} {'all read s':>10} "
        f"{'RSS MB':>7} "
        f"{'peak MB':>7} {'poll rows':>9} {'poll ms':>8} {'derive ms':>9} {'report s':>8} "
        f"{'Recorder s':>10}"
    )
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            store = root / f"run-{size}-{args.events}"
            if not (store / "run.sqlite").exists():
                shape = _run_worker("build", store, args, size=size, events=args.events)
                print(f"built {store.name}: {shape}", flush=True)
            results: dict[str, list[float]] = {}
            for repeat in range(args.repeats):
                measured = {
                    **_run_worker("screen", store, args),
                    **_run_worker("report", _copy(store, root / "scratch"), args),
                    **_run_worker("recorder", _copy(store, root / "scratch"), args),
                    **_run_worker("poll", _copy(store, root / "scratch"), args),
                }
                for key, value in measured.items():
                    results.setdefault(key, []).append(value)
                print(f"  {size} repeat {repeat + 1}: "
                      + ", ".join(f"{k} {v:.3g}" for k, v in measured.items()), flush=True)  # fmt: skip
            med = {key: statistics.median(values) for key, values in results.items()}
            rows.append(
                f"{size:>6} {args.events:>6} {med['screen_s']:>8.2f} {med['spawn_s']:>12.2f} "
                f"{med.get('complete_s', med['screen_s']):>10.2f} {med['rss_mb']:>7.0f} {med['peak_mb']:>7.0f} {med['poll_rows']:>9.0f} "
                f"{med['poll_ms']:>8.1f} {med['derive_ms']:>9.1f} {med['report_s']:>8.2f} "
                f"{med['recorder_s']:>10.2f}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
