"""Executors: the process pool gives exactly what the inline executor gives, and its
workers never outlive the search (kill -9) nor print tracebacks on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import edgenas_command

from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.search.executor import InlineExecutor, ProcessExecutor
from edgenas.space import LDPSpace
from edgenas.store import RunStore


def test_process_pool_matches_inline():
    # NASWOT: a deterministic score, so the two executors must agree exactly (training
    # speed, the default, is a timing).
    config = SearchConfig(
        proxy_input=(32, 40), deploy_input=(32, 40), score_batch=8, target_latency_ms=None,
        score="naswot",
    )  # fmt: skip
    genotypes = [
        g.encode() for g in LDPSpace(scales=(2,), channels=(8, 16)).sample_unique(3, seed=5)
    ]
    inline = InlineExecutor(CandidateEvaluator(config))
    pool = ProcessExecutor(config, workers=2, threads=1)
    try:
        assert pool.map("score", genotypes) == inline.map("score", genotypes)
        assert pool.map("static_resources", genotypes) == inline.map("static_resources", genotypes)
    finally:
        pool.close()
        inline.close()


# A search with process workers that trains long enough to be stopped mid-way.
PROCESS_SEARCH = [
    "search", "--executor", "process", "--workers", "2", "--input", "32x40",
    "--deploy-input", "32x40", "--target-params", "40k", "--pool", "6", "--parents", "2",
    "--train-seconds", "30", "--final-steps", "2", "--baselines", "none",
]  # fmt: skip


def _children(pid: int) -> list[int]:
    """Ids of the live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not collected it


def _start_until_workers(tmp_path, name):
    """Start a process-executor search; return it once its two workers train."""
    process = subprocess.Popen(
        [*edgenas_command(), *PROCESS_SEARCH, "--name", name],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal job has
    )  # fmt: skip
    run_dir = tmp_path / "runs" / name
    deadline = time.time() + 180
    while time.time() < deadline:
        if (run_dir / "run.sqlite").exists():
            with RunStore.open_readonly(run_dir) as store:
                if store.events(kinds=("child_proposed", "parents_selected")):
                    workers = _children(process.pid)
                    if len(workers) >= 2:
                        return process, workers
        time.sleep(0.2)
    process.kill()
    pytest.fail("the search never started training in its workers")


def _wait_gone(pids, seconds=20.0):
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_workers_exit_when_the_search_is_killed(tmp_path):
    process, workers = _start_until_workers(tmp_path, "killed")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert _wait_gone(workers) == [], "workers outlived a kill -9 of their search"


def test_ctrl_c_stops_the_workers_at_once_without_their_tracebacks(tmp_path):
    process, workers = _start_until_workers(tmp_path, "ctrl-c")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = process.communicate(timeout=60)  # not after a 30 s training
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == [
        "edgenas: interrupted; continue with `edgenas search --resume runs/ctrl-c`"
    ]
    assert _wait_gone(workers) == []
    with RunStore.open_readonly(tmp_path / "runs" / "ctrl-c") as store:
        assert store.run_info().status == "interrupted"
