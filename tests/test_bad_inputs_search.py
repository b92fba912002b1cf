"""`edgenas search` and `--resume` refuse bad input in one line and write nothing.

The stores that `--resume` must refuse (another kind of run, a newer store, a config
edited by hand, a corrupt file, a run another process writes) are built with the
store's own API in a module fixture; see tests/bad_inputs.py for the contract.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from bad_inputs import case, check_rejected
from data_helpers import nyu

from edgenas.search.config import SearchConfig
from edgenas.store import RunStore
from edgenas.tasks.defaults import SR_GENOTYPE, SR_PAPER_GENOTYPE

NO_PHONE = {"ANDROID_ADB_SERVER_PORT": "1"}  # nothing listens there


def _stored_run(runs, name, *, kind="ldp-search", config=None):
    run_dir = runs / name
    config = config if config is not None else SearchConfig(run_name=name).to_dict()
    RunStore.create(run_dir, name=name, kind=kind, config=config).close()
    return run_dir


def _edit(run_dir, sql, *params):
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        db.execute(sql, params)
    db.close()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with runs that cannot be resumed, and a file where a folder belongs."""
    root = tmp_path_factory.mktemp("search-bad")
    runs = root / "runs"
    _stored_run(runs, "paused")  # a valid run nobody writes
    _stored_run(runs, "shrink", kind="hrnas-shrink", config={})
    newer = _stored_run(runs, "newer")
    _edit(newer, "UPDATE meta SET value = 'edgenas.store/v9' WHERE key = 'schema'")
    unknown = _stored_run(runs, "unknown-key")
    config = {**SearchConfig(run_name="unknown-key").to_dict(), "warp_drive": True}
    _edit(unknown, "UPDATE runs SET config = ?", json.dumps(config))
    wrong = _stored_run(runs, "wrong-type")
    config = {**SearchConfig(run_name="wrong-type").to_dict(), "pool_size": "many"}
    _edit(wrong, "UPDATE runs SET config = ?", json.dumps(config))
    _edit(_stored_run(runs, "no-json"), "UPDATE runs SET config = 'not json {'")
    _edit(_stored_run(runs, "not-object"), "UPDATE runs SET config = '[1, 2]'")
    old = _stored_run(runs, "old-loop")
    config = {**SearchConfig(run_name="old-loop").to_dict(), "search_version": 1}
    _edit(old, "UPDATE runs SET config = ?", json.dumps(config))
    finished = _stored_run(runs, "finished")
    _edit(finished, "UPDATE runs SET status = 'finished'")
    corrupt = runs / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.sqlite").write_bytes(b"\x00garbage" * 64)
    (runs / "empty-folder").mkdir()
    (root / "a-file").write_text("not a folder\n")
    (root / "no-ray" / "ray").mkdir(parents=True)
    (root / "no-ray" / "ray" / "__init__.py").write_text("raise ImportError('no ray')\n")
    nyu(root / "one-image", n=1)  # depth pairs: one to train on
    nyu(root / "val-images", n=2)
    return root


SEARCH_CASES = [
    # task, data, device
    case("search", "--task", "detection", says="unknown task"),
    case("search", "--data", "no/such/folder", says="does not exist"),
    case("search", "--device", "toaster", says="toaster"),
    case("search", "--device", "pixel3a", says="not usable", **NO_PHONE),
    case("search", "--val-data", "no/such/folder", says="does not exist"),
    # sizes
    case("search", "--task", "sr", "--scale", "7", says="--scale"),
    case("search", "--scale", "3", says="--task sr only"),
    case("search", "--input", "99999x99999", says="--input"),
    case("search", "--deploy-input", "99999x99999", says="--deploy-input"),
    case("search", "--final-input", "99999x99999", says="--final-input"),
    case("search", "--input", "32x0", says="positive"),
    case("search", "--deploy-input", "1x3x32x32", says="2 dimensions"),
    # targets
    case("search", "--target-params", "lots", says="bad count"),
    case("search", "--target-flops", "1e309", says="--target-flops"),
    case("search", "--target-latency", "soon", says=("soon", "not a depth reference model")),
    case("search", "--target-latency", "1.5.2ms", says="bad latency"),
    case("search", "--task", "seg", "--target-latency", "espcn", says="not a segmentation"),
    case("search", "--task", "cls", "--target-latency", "baseline", says="no reference model"),
    case(
        "search",
        "--task",
        "seg",
        "--target-latency",
        "unet",
        "--executor",
        "ray",
        "--ray-address",
        "10.0.0.1:6379",
        says="measure it on the device",
    ),
    case("search", "--target-latency", "-5ms", says="positive time"),
    case("search", "--alpha", "2", says="--alpha"),
    case("search", "--alpha", "nan", says="--alpha"),
    case("search", "--alpha-grid", "0.4,x", says="--alpha-grid"),
    case("search", "--alpha-grid", "0.4,0.5", "--subsample", "0", says="--subsample"),
    case("search", "--threads", "0", says="--threads"),
    # space
    case("search", "--scales", "9", says="--scales"),
    case("search", "--channels", "0,8", says="channels"),
    case("search", "--channels", "-8,16", says="channels"),
    case("search", "--ops", "conv,lstm", says="unknown op"),
    case("search", "--start-from", "S2:nonsense", says="bad"),
    # the SR genotype layout: SR only, one of two, the warm start in the searched one
    case("search", "--sr-layout", "paper", says=("--sr-layout", "--task sr only")),
    case("search", "--task", "sr", "--sr-layout", "sideways", says="invalid choice"),
    case(
        "search",
        "--task",
        "sr",
        "--sr-layout",
        "paper",
        "--start-from",
        SR_GENOTYPE,
        says=("not in the space", "use --sr-layout head"),
    ),
    case(
        "search",
        "--task",
        "sr",
        "--start-from",
        SR_PAPER_GENOTYPE,
        says=("not in the space", "use --sr-layout paper"),
    ),
    case(
        "search",
        "--start-from",
        "S2:" + "-".join(["micro_k3_se0_res_c8_n1"] * 12),
        says="not in the space",
    ),
    # budgets and search settings
    case("search", "--parents", "50", says="parents"),
    case("search", "--pool", "0", says="--pool"),
    case("search", "--children", "-1", says="--children"),
    case("search", "--iterations", "nan", says="--iterations"),
    case("search", "--tabu-tenure", "0", says="--tabu-tenure"),
    case("search", "--train-seconds", "-1", says="--train-seconds"),
    case("search", "--train-seconds", "inf", says="--train-seconds"),
    case("search", "--final-seconds", "0", says="--final-seconds"),
    case("search", "--train-steps", "0", says="--train-steps"),
    case("search", "--batch-size", "0", says="--batch-size"),
    case("search", "--workers", "0", says="--workers"),
    case("search", "--seed", "-1", says="--seed"),
    case("search", "--seed", str(2**64), says="from 0 to 4294967295"),
    case("search", "--budget", "soon", says="bad duration"),
    case("search", "--budget", "1m", "--final-seconds", "60", says="larger --budget"),
    case("search", "--budget", "5m", "--final-steps", "10", says="final training in seconds"),
    case("search", "--preset", "huge", says="invalid choice"),
    case("search", "--executor", "threads", says="invalid choice"),
    case("search", "--task-timeout", "0", says="--task-timeout"),
    case("search", "--ray-address", "auto", says="need --executor ray"),
    # Ray: a cluster that does not answer; Ray not installed (a stand-in package that
    # fails to import, as a missing one does)
    case("search", "--executor", "ray", "--ray-address", "127.0.0.1:1", says="no Ray cluster"),
    case("search", "--executor", "ray", says=("needs Ray", "edgenas[ray]"), PYTHONPATH="no-ray"),
    case("search", "--data", "one-image", "--val-data", "val-images", says="at least 2"),
    # run folder
    case("search", "--name", "a/b", says="run name"),
    case("search", "--runs-dir", "a-file", says="is a file"),
    case("search", "--name", "paused", says="exists"),
]

RESUME_CASES = [
    case("search", "--resume", "runs/nothing", says="no run store"),
    case("search", "--resume", "runs/empty-folder", says="no run store"),
    case("search", "--resume", "runs/paused", "--alpha", "0.9", says="drop --alpha"),
    case("search", "--resume", "runs/paused", "--sr-layout", "paper", says="drop --sr-layout"),
    case("search", "--resume", "runs/paused", "--pool", "99", "--task", "seg", says="drop --task"),
    case("search", "--resume", "runs/shrink", says="not an LDP search"),
    case("search", "--resume", "runs/newer", says="another edgenas version"),
    case("search", "--resume", "runs/unknown-key", says="warp_drive"),
    case("search", "--resume", "runs/wrong-type", says="pool_size"),
    case("search", "--resume", "runs/no-json", says="not JSON"),
    case("search", "--resume", "runs/not-object", says="not a JSON object"),
    case("search", "--resume", "runs/old-loop", says="search loop differs"),
    case("search", "--resume", "runs/finished", says="has finished"),
    case("search", "--resume", "runs/finished/run.sqlite", says="has finished"),
    case("search", "--resume", "runs/corrupt", says="not a readable edgenas run store"),
]


@pytest.mark.parametrize("bad", SEARCH_CASES + RESUME_CASES, ids=lambda c: c.id)
def test_search_refuses_in_one_line_and_writes_nothing(bad, workspace):
    check_rejected(bad, workspace)


def test_a_run_another_process_writes_is_refused_naming_it(workspace):
    import os

    writer = RunStore.open(workspace / "runs" / "paused")  # this process holds the run
    try:
        result = check_rejected(case("search", "--resume", "runs/paused"), workspace)
    finally:
        writer.close()
    assert f"process {os.getpid()}" in result.stderr


def test_a_disk_too_full_for_the_store_leaves_no_run_behind(workspace):
    import resource

    def small_files():  # writes past 60 kB fail (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    bad = case("search", "--name", "full-disk", says="is the disk full")
    check_rejected(bad, workspace, preexec=small_files)
