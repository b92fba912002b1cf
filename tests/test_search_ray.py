"""The Ray executor on a real local Ray instance (2 CPUs): a search gives the candidates
the inline executor gives, a worker killed mid-task is retried, a stuck task is
cancelled and recorded as failed, and the device actor runs one measurement at a time."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='the Ray executor needs pip install "edgenas[ray]"')

from edgenas.search.config import SearchConfig  # noqa: E402
from edgenas.search.executor import FailedEvaluation  # noqa: E402
from edgenas.search.latency import LatencySetup  # noqa: E402
from edgenas.search.ray_executor import RayExecutor, start_device_actor  # noqa: E402
from edgenas.search.run import run_search  # noqa: E402
from edgenas.store import RunStore  # noqa: E402

# Small and deterministic: step budgets, a parameter target (no latency inside the
# search path; the final model is still measured, through the device actor).
SMALL = SearchConfig(
    proxy_input=(32, 40), deploy_input=(32, 40), target_params=40_000, pool_size=6,
    parents=2, children=2, max_iterations=2, train_steps=2, final_steps=2, batch_size=4,
    seed=3, baselines=(),
)  # fmt: skip


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray instance for this module; the evaluators below travel to its
    workers by value (the tests folder is not importable there)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _candidates(run_dir: Path):
    with RunStore.open_readonly(run_dir) as store:
        rows = [
            (c.genotype, c.origin, c.status, c.parent_id, c.score, c.accuracy, c.grade, c.params)
            for c in store.candidates()
        ]
        skip = ("run_started", "run_resumed", "pool_progress")  # progress, not the search
        kinds = [(e.kind, e.candidate_id) for e in store.events() if e.kind not in skip]
        summary = store.run_info().summary
    return rows, kinds, summary


def test_a_ray_search_with_one_worker_gives_the_inline_search(local_ray, tmp_path):
    quiet = lambda _message: None  # noqa: E731
    inline = dataclasses.replace(SMALL, run_name="inline", runs_dir=str(tmp_path))
    on_ray = dataclasses.replace(inline, run_name="ray", executor="ray", workers=1)
    run_search(inline, quiet)
    outcome = run_search(on_ray, quiet)
    rows, kinds, summary = _candidates(tmp_path / "ray")
    expected_rows, expected_kinds, expected_summary = _candidates(tmp_path / "inline")
    assert rows == expected_rows and kinds == expected_kinds
    assert sum(row[2] == "trained" for row in rows) >= 3
    assert summary["best"] == expected_summary["best"]
    assert summary["final_accuracy"] == expected_summary["final_accuracy"]
    # The final model was measured on the device through the actor.
    assert outcome.latency_ms is not None and outcome.latency_ms > 0
    assert ray.is_initialized()  # a search never ends a Ray connection it did not make


def test_a_ray_search_with_a_latency_target_measures_through_the_device_actor(local_ray, tmp_path):
    config = dataclasses.replace(
        SMALL, run_name="latency", runs_dir=str(tmp_path), executor="ray", workers=2,
        target_params=None, target_latency_ms=5.0, pool_size=4, parents=1, max_iterations=1,
    )  # fmt: skip
    run_search(config, lambda _message: None)
    with RunStore.open_readonly(tmp_path / "latency") as store:
        trained = store.candidates("trained")
        children = [c for c in store.candidates() if c.origin == "child"]
        calibrated = store.events(kinds=("latency_calibrated",))
    # Trained in the workers, measured whole by the actor; children predicted by it.
    assert len(trained) == 3  # the parent, then the two children of one step together
    assert all(c.latency_source == "measured" and c.latency_ms > 0 for c in trained)
    assert children and all(c.predicted_latency_ms > 0 for c in children)
    assert calibrated and all(e.payload["latency_ms"] > 0 for e in calibrated)


class Scores:
    """A worker-side evaluator whose score is a function of the genotype string."""

    def __init__(self, config) -> None:
        self.config = config

    def score(self, genotype: str) -> float:
        return float(len(genotype))


class CrashesOnce(Scores):
    """Kills its worker process the first time it scores (a marker file says whether
    that happened already, since the retry runs in a fresh process)."""

    def score(self, genotype: str) -> float:
        marker = Path(self.config.extra["marker"])
        if genotype == "crash" and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return super().score(genotype)


class HangsOnce(Scores):
    def score(self, genotype: str) -> float:
        if genotype == "hang":
            time.sleep(120)
        return super().score(genotype)


class Niceness(Scores):
    def score(self, genotype: str) -> float:
        return float(os.nice(0))  # adds 0: the worker process's niceness


def test_tasks_and_the_device_actor_run_at_the_nodes_priority_not_rays_nice_15(local_ray):
    base = os.nice(0)  # this test's own niceness, which the local Ray instance inherits
    config = dataclasses.replace(SMALL, executor="ray", workers=2)
    executor = RayExecutor(config, None, make=Niceness)
    try:
        assert executor.map("score", ["a", "b"]) == [float(base), float(base)]
    finally:
        executor.close()
    setup = LatencySetup(device="cpu", threads=1, task="depth", deploy_shape=(1, 3, 32, 40))
    actor = start_device_actor(setup)
    try:
        assert ray.get(actor.__ray_call__.remote(lambda _self: os.nice(0))) == base
    finally:
        ray.kill(actor)
    # What Ray would have given them: a plain task runs 15 lower (19 at most).
    assert ray.get(ray.remote(lambda: os.nice(0)).remote()) == min(19, base + 15)


def test_a_killed_worker_is_retried(local_ray, tmp_path):
    marker = tmp_path / "crashed"
    config = dataclasses.replace(SMALL, executor="ray", workers=2, extra={"marker": str(marker)})
    executor = RayExecutor(config, None, make=CrashesOnce)
    try:
        assert executor.map("score", ["ok", "crash", "fine!"]) == [2.0, 5.0, 5.0]
    finally:
        executor.close()
    assert marker.exists()  # the first attempt did die


def test_a_stuck_task_is_cancelled_and_fails_while_the_others_complete(local_ray):
    config = dataclasses.replace(SMALL, executor="ray", workers=2, task_timeout_s=8.0)
    executor = RayExecutor(config, None, make=HangsOnce)
    try:
        # Workers started and their evaluators built (the timeout counts a cold start).
        assert executor.map("score", ["warm", "up"]) == [4.0, 2.0]
        results = executor.map("score", ["hang", "a", "ab", "abc", "abcd"])
    finally:
        executor.close()
    assert isinstance(results[0], FailedEvaluation) and results[0].genotype == "hang"
    assert "8 s" in results[0].reason
    # The hung task held one worker; the other went through the rest meanwhile.
    assert results[1:] == [1.0, 2.0, 3.0, 4.0]


def test_the_device_actor_runs_one_measurement_at_a_time(local_ray):
    from edgenas.space import LDPSpace

    genotypes = [
        g.encode() for g in LDPSpace(scales=(2,), channels=(8, 16)).sample_unique(3, seed=1)
    ]
    setup = LatencySetup(device="cpu", threads=1, task="depth", deploy_shape=(1, 3, 32, 40))
    actor = start_device_actor(setup)
    try:
        # Asked all at once, as workers finishing together would.
        latencies = ray.get([actor.network.remote(g) for g in genotypes])
        calls = ray.get(actor.history.remote())
    finally:
        ray.kill(actor)
    assert all(ms > 0 for ms in latencies)
    assert [name for name, _start, _end in calls] == ["network"] * 3
    intervals = sorted((start, end) for _name, start, end in calls)
    assert all(prev_end <= start for (_s, prev_end), (start, _e) in pairwise(intervals))


# Two workers, trainings long enough for the kill to land in the middle of the search.
RAY_SEARCH = [
    "search", "--executor", "ray", "--workers", "2", "--input", "32x40", "--deploy-input",
    "32x40", "--target-params", "40k", "--pool", "6", "--parents", "2", "--children", "2",
    "--iterations", "3", "--train-steps", "30", "--final-steps", "2", "--batch-size", "4",
    "--seed", "3", "--baselines", "none",
]  # fmt: skip


@pytest.mark.slow
def test_kill_9_of_the_driver_then_resume_finishes_as_an_uninterrupted_run(tmp_path):
    import signal
    import subprocess

    from cli_helpers import edgenas_command, run_cli

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [*edgenas_command(), *RAY_SEARCH, "--name", "killed"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    run_dir = tmp_path / "runs" / "killed"
    deadline = time.time() + 300
    while time.time() < deadline:  # until two trainings are stored: mid-search
        if (run_dir / "run.sqlite").exists():
            with RunStore.open_readonly(run_dir) as store:
                if len(store.candidates("trained")) >= 2:
                    break
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the search never trained two candidates")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    resumed = run_cli("search", "--resume", "runs/killed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    whole = run_cli(*RAY_SEARCH, "--name", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    rows, kinds, summary = _candidates(run_dir)
    expected_rows, expected_kinds, expected_summary = _candidates(tmp_path / "runs" / "whole")
    assert rows == expected_rows and kinds == expected_kinds
    assert summary["best"] == expected_summary["best"]
    assert summary["final_accuracy"] == expected_summary["final_accuracy"]
