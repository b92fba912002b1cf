"""`edgenas search` end to end: outputs, bad input, kill -9 and resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import onnx
import pytest
from cli_helpers import assert_one_line_error, edgenas_command, run_cli

from edgenas.store import RunStore

# Deterministic and small: step budgets (not seconds), a parameter target (no latency
# measured inside the search path), tiny images.
FAST = [
    "--input",
    "32x40",
    "--deploy-input",
    "32x40",
    "--target-params",
    "40k",
    "--pool",
    "6",
    "--parents",
    "2",
    "--children",
    "2",
    "--iterations",
    "2",
    "--train-steps",
    "2",
    "--final-steps",
    "2",
    "--batch-size",
    "4",
    "--seed",
    "3",
]


def _snapshot(run_dir):
    with RunStore.open_readonly(run_dir) as store:
        candidates = [
            (
                c.genotype,
                c.origin,
                c.status,
                c.parent_id,
                c.score,
                c.accuracy,
                c.grade,
                c.reward,
                c.params,
            )
            for c in store.candidates()
        ]
        # Progress events are not steps of the search: pool_progress is written every few
        # seconds of scoring, so a loaded machine writes more of them.
        progress = ("run_resumed", "run_started", "pool_progress")
        kinds = [e.kind for e in store.events() if e.kind not in progress]
        info = store.run_info()
    return candidates, kinds, info


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("search")
    umask = os.umask(0o022)  # the run's files must get the umask's mode (0644)
    try:
        result = run_cli("search", *FAST, "--name", "full", cwd=cwd)
    finally:
        os.umask(umask)
    assert result.returncode == 0, result.stderr + result.stdout
    return cwd, result


def test_search_writes_model_report_and_store(finished_run):
    cwd, result = finished_run
    run_dir = cwd / "runs" / "full"
    for name in (
        "run.sqlite",
        "best.onnx",
        "best.pt",
        "best.latency.json",
        "best.static.onnx",  # the fixed-size twin, deploy size only
        "best.static.latency.json",
        "report.md",
        "progress.png",
        "pareto.png",
        "samples.png",
        "baselines/baseline-fastdepth.onnx",  # the depth default, with the final budget
    ):
        assert (run_dir / name).is_file(), name
    for name in ("report.md", "progress.png", "pareto.png", "samples.png"):
        assert os.stat(run_dir / name).st_mode & 0o777 == 0o644, name
    assert "best genotype" in result.stdout and "report.md" in result.stdout
    assert " on cpu (measured))" in " ".join(result.stdout.split())  # latency with its size
    assert "fixed size runs/full/best.static.onnx: " in " ".join(result.stdout.split())
    assert (
        "| ONNX model (deploy size only) | runs/full/best.static.onnx: "
        in (run_dir / "report.md").read_text()
    )
    candidates, kinds, info = _snapshot(run_dir)
    assert info.status == "finished"
    summary = info.summary
    assert summary["best"] in {c[0] for c in candidates if c[2] == "trained"}
    # What the seconds budgets counted is stored, not only logged.
    clocks = summary["train_clocks"]
    assert set(clocks) == {"candidates", "final"} and set(clocks.values()) <= {"cpu", "wall"}
    assert f"training budgets count {'CPU' if clocks['final'] == 'cpu' else 'wall'} time" in (
        result.stdout
    )
    # The config holds every default, written out.
    assert (
        info.config["alpha"] == 0.5
        and info.config["pool_size"] == 6
        and info.config["target_latency_ms"] is None
    )
    # Pool of 6 scored; 2 parents trained: the task's default genotype (warm start),
    # then one from the ranking updated with the first parent's children.
    assert sum(c[1] == "start" for c in candidates) == 1
    assert sum(c[1] == "parent" for c in candidates) == 1
    assert sum(c[1] in ("pool", "parent") for c in candidates) >= 6 - 1
    trained = [c for c in candidates if c[2] == "trained"]
    assert 3 <= len(trained) <= 6
    assert all(c[6] is not None and 0.0 <= c[6] <= 1.0 for c in trained)
    children = [c for c in candidates if c[1] == "child"]
    assert children and all(c[3] is not None and c[7] is not None for c in children)
    # The pool streams into the store: progress batches, then one pool_scored.
    with RunStore.open_readonly(run_dir) as store:
        every = [e.kind for e in store.events() if e.kind not in ("run_resumed", "run_started")]
    pool_events = every[: every.index("pool_scored")]
    assert pool_events and set(pool_events) == {"pool_progress"}
    assert kinds[kinds.index("pool_scored") + 1] == "parents_selected"
    with RunStore.open_readonly(run_dir) as store:
        assert store.events()[0].kind == "run_started"  # the budget's clock on resume
        # The loss curves the monitor plots: every proxy step on the CPU, the final
        # training's epochs and its last step.
        assert all(len(c.loss_history) == 2 for c in store.candidates("trained"))
    assert summary["final_loss_history"][-1][0] == 2
    assert {"child_proposed", "candidate_trained", "tabu_updated", "parent_finished"} <= set(kinds)
    assert kinds[-1] == "run_finished"
    meta = {p.key: p.value for p in onnx.load(str(run_dir / "best.onnx")).metadata_props}
    assert meta["edgenas.genotype"] == summary["best"] and "edgenas.grade" in meta
    report = (run_dir / "report.md").read_text()
    assert summary["best"] in report and "![pareto](pareto.png)" in report
    # What matters first: the target and whether it was met, metrics in their units,
    # latency with size and source, samples, the baselines with their latency.
    assert "Target: parameters <= 40,000" in report
    assert ("meets the target" in report) == (summary["final_params"] <= 40_000)
    assert f"RMSE {summary['final_metrics']['rmse']:.3f} m" in report
    assert "ms at 1x3x32x40 on cpu (measured)" in report and "![samples](samples.png)" in report
    (baseline,) = summary["baselines"]
    assert baseline["name"] == "fastdepth" and baseline["steps"] == 2
    assert baseline["latency_ms"] > 0 and baseline["input_shape"] == [1, 3, 32, 40]
    assert f"| fastdepth | {baseline['metrics']['rel']:.4f} |" in report


def test_search_model_runs_at_any_size_and_its_checkpoint_re_exports(finished_run):
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgenas.checkpoint import load_checkpoint, model_from_checkpoint

    cwd, _ = finished_run
    run_dir = cwd / "runs" / "full"
    ckpt = load_checkpoint(run_dir / "best.pt")
    best = _snapshot(run_dir)[2].summary["best"]
    assert ckpt["model_spec"]["genotype"] == best and ckpt["extra"]["deploy_input"] == [32, 40]
    model = model_from_checkpoint(ckpt).eval()
    session = ort.InferenceSession(str(run_dir / "best.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for size in ((32, 40), (45, 61)):  # the deploy size and a whole image of another size
        x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
        out = session.run(None, {name: x.numpy()})[0]
        with torch.no_grad():
            expected = model(x).numpy()
        assert out.shape == expected.shape and np.abs(out - expected).max() < 1e-3
    # The trained weights re-export: static at another size, verified on a real image.
    result = run_cli("export", "--run", "runs/full", "--static", "--input", "1x3x48x64",
                     "-o", "again.onnx", "--json", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    meta = {p.key: p.value for p in onnx.load(str(cwd / "again.onnx")).metadata_props}
    assert meta["edgenas.trained"] == "true" and meta["edgenas.input_shape"] == "1x3x48x64"
    assert meta["edgenas.genotype"] == best
    profiled = run_cli("profile", "runs/full/best.pt", "--runs", "5", "--warmup", "1",
                       "--sessions", "1", "--json", "-", cwd=cwd)  # fmt: skip
    assert profiled.returncode == 0, profiled.stderr
    assert '"median_ms"' in profiled.stdout
    refused = run_cli("export", "--run", "runs/full", "--task", "seg", cwd=cwd)
    assert_one_line_error(refused, "carry their own task")


def _start_and_kill(args, cwd, name, trained=2, sig=signal.SIGKILL, while_running=None):
    """Start a search, send ``sig`` once it has trained ``trained`` candidates (first
    calling ``while_running(run_dir, pid)``); returns the run folder and the finished
    process (its stderr read)."""
    process = subprocess.Popen(
        [*edgenas_command(), "search", *args, "--name", name],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = cwd / "runs" / name
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if (run_dir / "run.sqlite").exists():
                with RunStore.open_readonly(run_dir) as store:
                    if len(store.events(kinds=("candidate_trained",))) >= trained:
                        break
            time.sleep(0.2)
        else:
            pytest.fail(f"the search never trained {trained} candidates")
        if while_running is not None:
            while_running(run_dir, process.pid)
    finally:
        os.kill(process.pid, sig)
        _, stderr = process.communicate(timeout=120)
    process.stderr_text = stderr
    return run_dir, process


def test_kill_and_resume_matches_an_uninterrupted_run(finished_run, tmp_path):
    full_candidates, full_kinds, full_info = _snapshot(finished_run[0] / "runs" / "full")
    # Kill in the middle of the tabu search: after the second training.
    run_dir, _ = _start_and_kill([*FAST, "--baselines", "none"], tmp_path, "killed")
    _, killed_kinds, killed_info = _snapshot(run_dir)
    assert killed_info.status == "running" and "run_finished" not in killed_kinds

    # Two resumes at once: one continues the run, the other is refused without writing
    # (the run's lock), so the run equals an uninterrupted one, with no duplicates.
    both = [
        subprocess.Popen(
            [*edgenas_command(), "search", "--resume", str(run_dir)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = sorted((p.returncode, err) for p in both for _, err in [p.communicate(timeout=240)])
    (ok, _), (refused, message) = outcomes
    assert (ok, refused) == (0, 2), outcomes
    # Both start together and a resume holds the run for many seconds (replay, final
    # training): the second is refused by the lock, not because the run had finished.
    assert "being written by process" in message, message
    candidates, kinds, info = _snapshot(run_dir)
    assert info.status == "finished"
    assert candidates == full_candidates
    assert kinds == full_kinds
    assert info.summary["best"] == full_info.summary["best"]
    with RunStore.open_readonly(run_dir) as store:
        assert len(store.events(kinds=("run_resumed",))) == 1

    again = run_cli("search", "--resume", str(run_dir), cwd=tmp_path)
    assert_one_line_error(again, "has finished")


@pytest.mark.slow  # suite time: see docs/testing.md
def test_resume_with_a_latency_target_replays_its_own_decisions(tmp_path):
    # Measured latencies differ from run to run, so the resumed run is compared with
    # its own log: the replay must re-make every recorded decision (it reads the
    # predicted latencies and rewards it decided on, not later measurements).
    args = [a if a != "--target-params" else "--target-latency" for a in FAST]
    args += ["--baselines", "none"]  # the replay is under test, not the baselines
    args[args.index("--target-latency") + 1] = "3ms"

    def second_writer(run_dir, pid):
        with RunStore.open_readonly(run_dir) as store:
            events = store.last_event_id()
        refused = run_cli("search", "--resume", str(run_dir), cwd=tmp_path)
        assert_one_line_error(refused, f"being written by process {pid}")
        with RunStore.open_readonly(run_dir) as store:
            kinds = [e.kind for e in store.events(after_id=events)]
        assert "run_resumed" not in kinds and "run_failed" not in kinds

    # SIGTERM (a CI timeout, `kill`): the run says it was interrupted and how to go on.
    # After the second training: most of the search is still to come when the second
    # writer (a second or two) has been refused, so SIGTERM finds the search running.
    run_dir, process = _start_and_kill(
        args, tmp_path, "latency", trained=2, sig=signal.SIGTERM, while_running=second_writer
    )
    assert process.returncode == 143, process.stderr_text
    assert f"edgenas search --resume {run_dir.relative_to(tmp_path)}" in process.stderr_text
    assert "Traceback" not in process.stderr_text
    with RunStore.open_readonly(run_dir) as store:
        assert store.run_info().status == "interrupted"
        before = [(e.id, e.kind, e.candidate_id) for e in store.events()]
    resumed = run_cli("search", "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    with RunStore.open_readonly(run_dir) as store:
        after = [(e.id, e.kind, e.candidate_id) for e in store.events()]
        assert store.run_info().status == "finished"
        children = [c for c in store.candidates() if c.origin == "child"]
    assert after[: len(before)] == before
    assert all(c.predicted_latency_ms is not None for c in children)
    assert any(
        c.latency_source == "measured" and c.latency_ms != c.predicted_latency_ms for c in children
    )


def test_a_baseline_latency_target_is_measured_once_and_kept_with_the_run(tmp_path):
    # `--target-latency baseline`: the depth baseline's latency on the device is the
    # target, measured before the run exists, stored with it, and the scale every
    # candidate is measured on (tests/test_search_latency_paired.py: the pairing).
    args = [a if a != "--target-params" else "--target-latency" for a in FAST]
    args[args.index("--target-latency") + 1] = "baseline"
    result = run_cli("search", *args, "--baselines", "none", "--name", "bl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    log = " ".join(result.stdout.split())
    match = re.search(r"latency target: fastdepth measures ([0-9.]+) ms on cpu at 32x40", log)
    assert match, log
    run_dir = tmp_path / "runs" / "bl"
    with RunStore.open_readonly(run_dir) as store:
        config = store.run_info().config
        trained = [c for c in store.candidates() if c.status == "trained"]
    assert config["target_latency_reference"] == "fastdepth"
    assert f"{config['target_latency_ms']:.2f}" == match[1]
    assert trained and all(c.latency_source == "measured" and c.latency_ms > 0 for c in trained)
    # A resume (or a worker) measures on the stored scale, without measuring again.
    from edgenas.search.config import SearchConfig
    from edgenas.search.evaluation import CandidateEvaluator

    evaluator = CandidateEvaluator(SearchConfig.from_dict(config))
    try:
        setup = evaluator.latency_setup()
        assert setup.reference_model == "fastdepth"
        assert setup.reference_latency_ms == config["target_latency_ms"]
    finally:
        evaluator.close()
    report = " ".join((run_dir / "report.md").read_text().split())
    assert "fastdepth's latency, measured at the start of the run" in report
    # The final network is timed against the same reference, and judged on that.
    with RunStore.open_readonly(run_dir) as store:
        paired = store.run_info().summary["paired_latency"]
    assert paired["reference"] == "fastdepth" and paired["latency_ms"] > 0
    assert paired["ratio"] == pytest.approx(paired["latency_ms"] / config["target_latency_ms"])
    assert f"{paired['latency_ms']:.2f} ms ({paired['ratio']:.2f}x fastdepth, timed" in report


# Bad input to `edgenas search`: tests/test_bad_inputs_search.py.


def test_final_model_and_baselines_train_at_the_final_input(tmp_path):
    result = run_cli(
        "search", "--task", "seg", *FAST, "--pool", "3", "--parents", "1", "--iterations", "1",
        "--final-input", "48x64", "--name", "sizes", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    from edgenas.checkpoint import load_checkpoint

    run_dir = tmp_path / "runs" / "sizes"
    ckpt = load_checkpoint(run_dir / "best.pt")
    assert ckpt["extra"]["input"] == [48, 64]  # trained at the final size, not the proxy's
    with RunStore.open_readonly(run_dir) as store:
        info = store.run_info()
    assert info.config["final_input"] == [48, 64] and info.config["proxy_input"] == [32, 40]
    (baseline,) = info.summary["baselines"]
    assert baseline["name"] == "unet" and baseline["steps"] == 2


def test_a_run_killed_while_writing_its_outputs_is_completed_by_resume(tmp_path):
    # The status says finished only once the report exists: kill -9 just after the
    # summary is stored (the report takes a second or more to draw), then resume.
    process = subprocess.Popen(
        [*edgenas_command(), "search", *FAST, "--baselines", "none", "--name", "final"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_dir = tmp_path / "runs" / "final"
    deadline = time.time() + 240
    try:
        while not (run_dir / "run.sqlite").exists() and time.time() < deadline:
            time.sleep(0.05)
        with RunStore.open_readonly(run_dir) as store:
            while store.run_info().summary is None and time.time() < deadline:
                time.sleep(0.002)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert not (run_dir / "report.md").exists(), "killed too late: the report was written"
    with RunStore.open_readonly(run_dir) as store:
        assert store.run_info().status == "running"
        trained_before = len(store.events(kinds=("candidate_trained",)))
    checkpoint_time = (run_dir / "best.pt").stat().st_mtime_ns

    resumed = run_cli("search", "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert "writing the missing outputs" in resumed.stdout
    assert (run_dir / "report.md").is_file() and (run_dir / "progress.png").is_file()
    assert "status **finished**" in (run_dir / "report.md").read_text()
    with RunStore.open_readonly(run_dir) as store:
        assert store.run_info().status == "finished"
        assert len(store.events(kinds=("run_finished",))) == 1
        assert len(store.events(kinds=("candidate_trained",))) == trained_before
    assert (run_dir / "best.pt").stat().st_mtime_ns == checkpoint_time  # not trained again


def test_a_speed_search_resumes_with_the_scores_it_timed(tmp_path):
    # Training speed is a timing, different at every measurement: a resumed run must
    # read the scores it stored, so its replay re-makes the same decisions.
    args = [*FAST, "--score", "speed", "--baselines", "none"]
    run_dir, _ = _start_and_kill(args, tmp_path, "speed")
    with RunStore.open_readonly(run_dir) as store:
        before = [(e.id, e.kind, e.candidate_id) for e in store.events()]
        scores = {c.genotype: c.score for c in store.candidates() if c.score is not None}
        assert store.run_info().config["score"] == "speed"
    assert scores and all(s > 0 for s in scores.values())
    # A replay that met a decision other than the recorded one would stop the run.
    resumed = run_cli("search", "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    with RunStore.open_readonly(run_dir) as store:
        after = [(e.id, e.kind, e.candidate_id) for e in store.events()]
        stored = {c.genotype: c.score for c in store.candidates()}
        assert store.run_info().status == "finished"
    assert after[: len(before)] == before
    assert [k for _, k, _ in after].count("run_resumed") == 1
    assert {g: stored[g] for g in scores} == scores  # none re-timed
