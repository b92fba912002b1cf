"""The training loss the monitor plots: recorded by the evaluator's proxy training,
stored with the candidate by the search, readable from stores written before it."""

from __future__ import annotations

import itertools
import math
import sqlite3
from types import SimpleNamespace

import pytest

from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import LOSS_POINTS, CandidateEvaluator, LossCurve, loss_history
from edgenas.search.recorder import Recorder
from edgenas.store import RunStore, store_path

GENOTYPE = (
    "S1:conv_k3_se0_res_c8_n1-conv_k3_se0_res_c8_n1-conv_k3_se0_res_c8_n1-"
    "conv_k3_se0_res_c8_n1-conv_k3_se0_res_c8_n1"
)


def test_a_long_training_keeps_at_most_the_point_budget_evenly_spaced():
    curve = LossCurve()
    for step in range(1, 1001):
        curve(step, 1.0 / step)
    steps = [p[0] for p in curve.points]
    assert len(steps) <= LOSS_POINTS and steps == sorted(steps)
    gaps = {b - a for a, b in itertools.pairwise(steps)}
    assert gaps == {curve.stride} and curve.stride == 16
    assert steps[-1] > 1000 - curve.stride  # the curve reaches the end of the training
    # The history a candidate stores ends at the final step, within the same budget.
    result = SimpleNamespace(final_loss=0.0005, steps=1030, history=[])
    for step in range(1001, 1031):
        curve(step, 1.0 / step)
    history = loss_history(result, curve)
    assert len(history) == LOSS_POINTS and history[-1] == [1030, 0.0005]


def test_the_proxy_training_of_a_real_candidate_records_its_loss_and_the_store_keeps_it(
    tmp_path,
):
    config = SearchConfig(
        task="sr", run_name="loss", runs_dir=str(tmp_path), proxy_input=(16, 16),
        deploy_input=(16, 16), train_steps=5, batch_size=2, score_batch=2,
        accelerator="cpu", seed=0, start_genotypes=(),
    )  # fmt: skip
    evaluator = CandidateEvaluator(config)
    try:
        outcome = evaluator.train(GENOTYPE)
    finally:
        evaluator.close()
    # On the CPU every step is recorded; the last point is the final loss.
    assert [p[0] for p in outcome.loss_history] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(p[1]) and p[1] > 0 for p in outcome.loss_history)
    with RunStore.create(tmp_path / "run", name="run", kind="ldp-search", config={}) as store:
        recorder = Recorder(store)
        row = recorder.ensure(GENOTYPE, origin="pool", status="scored")
        recorder.update(row, status="trained", loss_history=outcome.loss_history)
    with RunStore.open_readonly(tmp_path / "run") as reader:
        assert reader.candidates()[0].loss_history == outcome.loss_history


def test_without_a_per_step_curve_the_epochs_and_the_final_loss_are_the_curve():
    from edgenas.training import TrainResult

    result = TrainResult(
        metrics={}, normalised_accuracy=0.0, epochs=2, steps=25, images=50, seconds=1.0,
        images_per_second=50.0, final_loss=0.5,
        history=[{"step": 10, "loss": 2.0}, {"step": 20, "loss": float("nan")}],
    )  # fmt: skip
    assert loss_history(result) == [[10, 2.0], [25, 0.5]]


def test_a_store_from_before_loss_curves_reads_and_resumes(tmp_path):
    run = tmp_path / "old"
    with RunStore.create(run, name="old", kind="ldp-search", config={}) as store:
        cid = store.add_candidate(GENOTYPE, origin="pool", status="trained")
    db = sqlite3.connect(store_path(run))
    db.execute("ALTER TABLE candidates DROP COLUMN loss_history")  # as an older edgenas wrote it
    db.commit()
    db.close()
    with RunStore.open_readonly(run) as reader:
        assert reader.candidates()[0].loss_history == []
    with RunStore.open(run) as store:  # a resume adds the column, then writes it
        store.update_candidate(cid, loss_history=[[1, 0.25]])
        assert store.candidate(cid).loss_history == [[1, 0.25]]


@pytest.mark.parametrize("bad", [None, "text", [1], ["a", 2], [1, float("nan")], [1, 2, 3]])
def test_the_monitor_drops_malformed_stored_points(bad):
    from edgenas.tui.state import _curve

    assert _curve([[1, 2.5], bad]) == ((1.0, 2.5),)
    assert _curve({"not": "a list"}) == ()
