"""The LDP search loop (parent selection, tabu list, ranking updates) on a synthetic
evaluator: scores, sizes and accuracies are fixed functions of the genotype string, so
every decision of the loop is exact and cheap to check. Training is not under test
here (tests/test_search_e2e.py runs the real evaluator)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import zlib

import pytest

from edgenas.errors import UserError
from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import TrainedCandidate
from edgenas.search.executor import InlineExecutor
from edgenas.search.ldp import POOL_DRAWS_PER_NETWORK, LDPSearch
from edgenas.search.recorder import Recorder
from edgenas.space import LDPSpace, decode
from edgenas.store import RunStore


def _unit(genotype: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) per genotype."""
    return zlib.crc32((salt + genotype).encode()) / 2**32


class SyntheticEvaluator:
    """Deterministic stand-in for CandidateEvaluator's four questions."""

    def __init__(self, latency=None, score=None, noise: float = 1.0) -> None:
        self.noise = noise  # a trained network's measurement vs its other latencies
        self.latency = latency or (lambda g: 5.0 + 50.0 * _unit(g, "latency"))
        self.score_of = score or (lambda g: 100.0 + 100.0 * _unit(g, "score"))
        self.trained: list[str] = []
        self.measured: list[str] = []

    def score(self, genotype: str) -> float:
        return self.score_of(genotype)

    def pool_entry(self, genotype: str) -> tuple[float, int, int]:
        values = self.static_resources(genotype)
        return self.score(genotype), values["params"], values["flops"]

    def params(self, genotype: str) -> int:
        return int(self.static_resources(genotype)["params"])

    def network_latency(self, genotype: str) -> float:
        self.measured.append(genotype)
        return self.latency(genotype)

    def static_resources(self, genotype: str) -> dict[str, float]:
        units = LDPSpace.compute_units(decode(genotype))
        return {"params": 100 * units, "flops": 10_000 * units}

    def resources(self, genotype: str, *, measured: bool, model=None):
        values = self.static_resources(genotype)
        values["latency_ms"] = self.latency(genotype)
        return values, "measured" if measured else "predicted"

    def train(self, genotype: str) -> TrainedCandidate:
        self.trained.append(genotype)
        values = self.static_resources(genotype)
        accuracy = 0.5 + 0.4 * _unit(genotype, "accuracy")
        return TrainedCandidate(
            genotype=genotype,
            metrics={"accuracy": accuracy},
            accuracy=accuracy,
            params=int(values["params"]),
            flops=int(values["flops"]),
            latency_ms=self.noise * self.latency(genotype),
        )


SMALL_SPACE = dict(
    scales=(2,),
    channels=(8, 16),
    ops=("conv",),
    kernels=(3,),
    se=(0,),
    residual=(True,),
    layers=(1, 2),
)


def _search(tmp_path, evaluator, name="run", deadline=None, clock=None, **overrides) -> LDPSearch:
    overrides.setdefault("start_genotypes", ())
    config = SearchConfig(task="sr", run_name=name, runs_dir=str(tmp_path), **overrides)
    path = tmp_path / name
    if (path / "run.sqlite").exists():
        store = RunStore.open(path)
    else:
        store = RunStore.create(path, name=name, kind="ldp-search", config={})
    extra = {"clock": clock} if clock else {}
    return LDPSearch(
        config,
        evaluator,
        InlineExecutor(evaluator),
        Recorder(store),
        search_deadline=deadline,
        **extra,
    )


def test_latency_parents_are_the_best_scores_among_the_whole_pool_closest_to_target(tmp_path):
    # Latency proportional to MACs (what the estimate assumes); the target
    # is the latency of a member far down the score ranking, so the members closest to
    # it lie outside the 10 best scores that an earlier shortlist looked at.
    def flops(genotype: str) -> float:
        return SyntheticEvaluator().static_resources(genotype)["flops"]

    # Like NASWOT, the score grows with the network's size (plus noise).
    evaluator = SyntheticEvaluator(
        latency=lambda g: 1e-6 * flops(g),
        score=lambda g: 1e-5 * flops(g) + 20.0 * _unit(g, "score"),
    )
    probe = _search(tmp_path, evaluator, name="probe", pool_size=40, seed=3)
    ranked_probe = probe.score_pool()
    target = evaluator.latency(ranked_probe[30].genotype)
    search = _search(tmp_path, evaluator, pool_size=40, parents=2, target_latency_ms=target, seed=3)
    ranked = search.score_pool()
    parents = search.select_parents(ranked)

    # The best score among the networks at most twice the target (NASWOT favours the
    # largest networks, which the grade would then penalise).
    fitting = [c for c in ranked if evaluator.latency(c.genotype) <= 2 * target]
    assert fitting[0] != ranked[0]
    assert parents[0].genotype == fitting[0].genotype
    distance = {c.genotype: abs(math.log(evaluator.latency(c.genotype) / target)) for c in ranked}
    rest = [c for c in ranked if c.genotype != parents[0].genotype]
    nearest = sorted(rest, key=lambda c: distance[c.genotype])[: 2 * 2]
    expected = max(nearest, key=lambda c: c.score)
    assert parents[1].genotype == expected.genotype
    assert ranked.index(parents[1]) >= 10
    # No pool member got a (costly) lookup-table prediction: three were measured whole
    # to turn MACs into milliseconds.
    assert not [c for c in search.recorder.store.candidates() if c.predicted_latency_ms]
    assert len(evaluator.measured) == 3


def test_a_parameter_target_draws_the_pool_within_it(tmp_path):
    # Synthetic parameters are 100 x the compute units (81K-173K in the small space): a
    # 100K target keeps about one sample in six.
    evaluator = SyntheticEvaluator()
    search = _search(tmp_path, evaluator, pool_size=6, target_params=1e5, **SMALL_SPACE)
    pool = search.sample_pool()
    assert len(set(pool)) == 6
    assert all(evaluator.params(g) <= 1e5 for g in pool)
    uniform = [g.encode() for g in search.space.sample_unique(6, seed=0)]
    assert any(evaluator.params(g) > 1e5 for g in uniform)  # what the filter changed
    # Seeded: the same config draws the same pool; without a parameter target the pool
    # is the uniform sample.
    assert _search(tmp_path, SyntheticEvaluator(), name="again", pool_size=6,
                   target_params=1e5, **SMALL_SPACE).sample_pool() == pool  # fmt: skip
    plain = _search(tmp_path, SyntheticEvaluator(), name="plain", pool_size=6,
                    target_flops=1e7, **SMALL_SPACE)  # fmt: skip
    assert plain.sample_pool() == uniform


def _first_draws(search: LDPSearch, count: int) -> list[str]:
    """The distinct genotypes among the first ``count`` draws of the search's seed."""
    draws = itertools.islice(search.space.iter_draws(search.config.seed), count)
    return list(dict.fromkeys(g.encode() for g in draws))


def test_too_small_a_parameter_target_fills_the_pool_with_the_smallest_draws(tmp_path):
    evaluator = SyntheticEvaluator()
    search = _search(tmp_path, evaluator, pool_size=5, target_params=1.0, **SMALL_SPACE)
    pool = search.sample_pool()
    assert len(set(pool)) == 5
    # No draw fits: the pool is the smallest of all the draws sample_pool may take.
    drawn = _first_draws(search, 5 * POOL_DRAWS_PER_NETWORK)
    smallest = sorted(evaluator.params(g) for g in drawn)[:5]
    assert sorted(evaluator.params(g) for g in pool) == smallest


def test_when_a_few_draws_fit_the_smallest_of_the_rest_complete_the_pool(tmp_path):
    evaluator = SyntheticEvaluator()
    drawn = _first_draws(_search(tmp_path, evaluator, name="probe", **SMALL_SPACE),
                         6 * POOL_DRAWS_PER_NETWORK)  # fmt: skip
    sizes = {g: evaluator.params(g) for g in drawn}
    target = sorted(set(sizes.values()))[1]  # the two smallest sizes fit
    fitting = [g for g in drawn if sizes[g] <= target]
    assert 0 < len(fitting) < 6
    rest = sorted((g for g in drawn if sizes[g] > target), key=lambda g: (sizes[g], drawn.index(g)))
    search = _search(tmp_path, evaluator, pool_size=6, target_params=target, **SMALL_SPACE)
    assert search.sample_pool() == fitting + rest[: 6 - len(fitting)]


def test_a_pool_the_space_cannot_fill_is_a_one_line_error(tmp_path):
    tiny = {**SMALL_SPACE, "channels": (8,), "layers": (1,)}  # one genotype per scale count
    search = _search(tmp_path, SyntheticEvaluator(), pool_size=3, target_params=1.0, **tiny)
    with pytest.raises(UserError, match="could not draw 3 distinct genotypes"):
        search.sample_pool()


def _moves(search: LDPSearch) -> list[tuple[str, str]]:
    return [
        (e.payload["from"], e.payload["to"])
        for e in search.recorder.store.events()
        if e.kind in ("move_accepted", "move_rejected")
    ]


def test_tabu_tenure_decides_which_architectures_may_come_back(tmp_path):
    runs = {}
    for tenure in (1, 100):
        evaluator = SyntheticEvaluator()
        search = _search(
            tmp_path, evaluator, name=f"tenure{tenure}", pool_size=4, parents=1,
            children=3, max_iterations=25, patience=25, tabu_tenure=tenure, seed=1,
            target_flops=2e5, **SMALL_SPACE,
        )  # fmt: skip
        search.run()
        runs[tenure] = (search, evaluator)

    assert _moves(runs[1][0]) != _moves(runs[100][0])

    # With a long tenure no architecture is current twice; with tenure 1 the search
    # returns to architectures it left (its grade is reused, never retrained).
    def returns(moves):  # moves back to an architecture the search had left before
        left, count = set(), 0
        for origin, to in moves:
            if to != origin:
                count += to in left
                left.add(origin)
        return count

    assert returns(_moves(runs[100][0])) == 0
    assert returns(_moves(runs[1][0])) > 0
    for _search_run, evaluator in runs.values():
        assert len(evaluator.trained) == len(set(evaluator.trained))


def test_a_tabu_architecture_is_never_proposed(tmp_path):
    evaluator = SyntheticEvaluator()
    search = _search(tmp_path, evaluator, pool_size=4, parents=1, children=4, seed=2,
                     **SMALL_SPACE)  # fmt: skip
    parent = search.score_pool()[0]
    current = search.evaluate(parent)
    neighbours = set()
    for _ in range(5):
        neighbours |= {row.genotype for row, _r in search.propose_children(current, [])}
    tabu = sorted(neighbours)[:3]
    for _ in range(5):
        proposed = {row.genotype for row, _r in search.propose_children(current, tabu)}
        assert proposed and not proposed & set(tabu)
        assert current.genotype not in proposed


def test_ranking_is_updated_between_parents(tmp_path):
    # Children score far above every pool member: after the first parent's search one
    # of its children must lead the ranking the second parent is chosen from.
    pool_genotypes: set[str] = set()

    def score(genotype: str) -> float:
        base = 100.0 + 100.0 * _unit(genotype, "score")
        return base if genotype in pool_genotypes else base + 1000.0

    evaluator = SyntheticEvaluator(score=score)
    search = _search(tmp_path, evaluator, pool_size=10, parents=3, children=3,
                     max_iterations=2, seed=4, target_flops=2e5)  # fmt: skip
    pool_genotypes.update(g.encode() for g in search.space.sample_unique(10, search.config.seed))
    search.run()

    events = list(search.recorder.store.events())
    selected = [i for i, e in enumerate(events) if e.kind == "parents_selected"]
    assert len(selected) == 3  # the first choice, then one update after each parent
    first, update = events[selected[0]].payload, events[selected[1]].payload
    assert update["genotypes"][0] == first["genotypes"][0]  # the searched parent stays
    second_parent = update["genotypes"][1]
    assert second_parent not in pool_genotypes  # a child from the first parent's search
    before = events[: selected[1]]
    proposed = {e.payload["genotype"] for e in before if e.kind == "child_proposed"}
    trained = {e.payload["genotype"] for e in before if e.kind == "candidate_trained"}
    assert second_parent == max(proposed - trained, key=score)


def test_a_network_trained_during_an_earlier_parent_is_not_a_parent_again(tmp_path):
    evaluator = SyntheticEvaluator()
    search = _search(tmp_path, evaluator, pool_size=6, parents=3, children=3,
                     max_iterations=3, seed=5, **SMALL_SPACE)  # fmt: skip
    search.run()
    starts = [
        e.payload["parent"] for e in search.recorder.store.events() if e.kind == "parent_finished"
    ]
    assert len(starts) == 3 and len(set(starts)) == 3
    assert len(evaluator.trained) == len(set(evaluator.trained))


@pytest.mark.parametrize("field", ["ops", "se", "residual", "kernels", "layers"])
def test_stored_configs_without_space_fields_resume_the_paper_space(field):
    stored = SearchConfig().to_dict()
    newer = ("start_genotypes", "search_version", "preset", "budget_seconds", "final_input")
    for name in ("ops", "se", "residual", "kernels", "layers", *newer):
        stored.pop(name)
    config = SearchConfig.from_dict(stored)
    assert config.start_genotypes == () and config.search_version == 1
    full = LDPSpace()
    assert getattr(config.space(), field) == getattr(full, field)
    assert dataclasses.asdict(SearchConfig.from_dict(SearchConfig().to_dict())) == (
        dataclasses.asdict(SearchConfig())
    )


def test_a_warm_start_genotype_is_the_first_parent_then_the_paper_rule(tmp_path):
    evaluator = SyntheticEvaluator()
    start = SearchConfig(task="sr").start_genotypes[0]  # the task's default genotype
    search = _search(tmp_path, evaluator, pool_size=10, parents=3, children=2,
                     max_iterations=1, seed=6, start_genotypes=(start,))  # fmt: skip
    ranked = search.score_pool()
    parents = search.select_parents(ranked)
    assert [p.genotype for p in parents[:2]] == [start, ranked[0].genotype]
    assert parents[0].origin == "start" and len(parents) == 3
    search.run()
    assert evaluator.trained[0] == start


class FakeClock:
    """Time that moves only when the synthetic evaluator trains (10 s per candidate)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_ends_each_parent_on_its_share_and_replays_alike(tmp_path):
    clock = FakeClock()
    evaluator = SyntheticEvaluator()
    train = evaluator.train

    def slow_train(genotype):
        clock.now += 10.0
        return train(genotype)

    evaluator.train = slow_train
    settings = dict(pool_size=6, parents=2, children=2, max_iterations=100, patience=100,
                    seed=7, target_flops=2e5)  # fmt: skip
    search = _search(tmp_path, evaluator, deadline=100.0, clock=clock, **settings)
    search.run()
    events = list(search.recorder.store.events())
    finished = [e for e in events if e.kind == "parent_finished"]
    assert len(finished) == 2  # the first parent left time for the second
    assert [e.payload["scope"] for e in events if e.kind == "budget_spent"] == ["parent"] * 2
    # Every candidate started only when its expected time (10 s) fitted before the
    # deadline: the search ends on it, not after, and used nearly all of it.
    assert 90.0 <= clock.now <= 100.0
    trained_first = len(evaluator.trained)
    assert trained_first == clock.now / 10.0

    # A resumed run replays the recorded decisions, with no clock and no training.
    search.recorder.store.close()  # the run's one writer stops (releases the run lock)
    replay_evaluator = SyntheticEvaluator()
    replay = _search(tmp_path, replay_evaluator, deadline=0.0, clock=lambda: 1e9, **settings)
    replay.run()
    assert replay_evaluator.trained == []
    assert sorted(replay.trained) == sorted(search.trained)


def test_a_search_with_a_latency_target_replays_from_its_store(tmp_path):
    # Calibration measurements, predictions and measured latencies are all in the
    # store after the run; the replay must decide as the original did, not from values
    # written after the point it is replaying.
    settings = dict(pool_size=12, parents=4, children=3, max_iterations=3, seed=8,
                    target_latency_ms=15.0)  # fmt: skip
    first = SyntheticEvaluator(noise=1.7)  # measured after training: another value
    original = _search(tmp_path, first, **settings)
    original.run()
    assert len(first.measured) == 3  # the estimate's calibration
    original.recorder.store.close()
    replay_evaluator = SyntheticEvaluator(noise=1.7)
    replay = _search(tmp_path, replay_evaluator, **settings)
    replay.run()  # ReplayDiverged would fail here
    assert replay_evaluator.trained == [] and replay_evaluator.measured == []
    assert sorted(replay.trained) == sorted(original.trained)


def test_a_parent_proposed_again_gets_a_predicted_latency_for_its_reward(tmp_path):
    evaluator = SyntheticEvaluator()
    search = _search(tmp_path, evaluator, pool_size=4, parents=1, children=4, seed=9,
                     target_latency_ms=20.0, **SMALL_SPACE)  # fmt: skip
    parent = search.evaluate(search.score_pool()[0])
    assert parent.candidate.predicted_latency_ms is None  # a pool row: measured only
    child = search.evaluate(search.propose_children(parent, [])[0][0])
    for _ in range(40):  # the parent is one mutation from its child: it comes back
        proposed = {row.genotype for row, _r in search.propose_children(child, [])}
        if parent.genotype in proposed:
            break
    assert parent.genotype in proposed
    assert search.recorder.known(parent.genotype).predicted_latency_ms is not None


def test_a_start_already_trained_leaves_the_paper_rule_all_slots(tmp_path):
    evaluator = SyntheticEvaluator()
    start = SearchConfig(task="sr").start_genotypes[0]
    search = _search(tmp_path, evaluator, pool_size=12, parents=4, seed=10,
                     target_flops=2e5, start_genotypes=(start,))  # fmt: skip
    ranked = search.score_pool()
    search.evaluate(search.start_rows()[0])  # trained already: not a parent again
    parents = search.select_parents(ranked)
    assert start not in [p.genotype for p in parents] and len(parents) == 4
    # Half by score (2 of 4), half near the target: a skipped start takes no slot.
    target = 2e3
    pool = [c for c in ranked if c.genotype != start]
    fits = [c for c in pool if c.params <= 2 * target]
    by_score = [c.genotype for c in (fits or pool)[:2]]
    rest = [c for c in pool if c.genotype not in by_score]
    closest = sorted(rest, key=lambda c: abs(math.log(c.params / target)))[: 2 * 4]
    near = [c.genotype for c in sorted(closest, key=lambda c: -c.score)[:2]]
    assert [p.genotype for p in parents] == by_score + near


def test_with_no_near_target_share_every_parent_is_a_best_score(tmp_path, monkeypatch):
    # The benchmark's "score" parent rule (bench_search_ats_vs_random --parent-rules):
    # no parent is chosen for being near the target size.
    from edgenas.search import ldp

    evaluator = SyntheticEvaluator()
    settings = dict(pool_size=40, parents=4, seed=10, target_flops=2e5)
    paper = _search(tmp_path, evaluator, name="paper", **settings)
    paper_parents = paper.select_parents(paper.score_pool())
    monkeypatch.setattr(ldp, "NEAR_TARGET_PARENT_SHARE", 0.0)
    search = _search(tmp_path, evaluator, name="score", **settings)
    ranked = search.score_pool()
    parents = search.select_parents(ranked)
    fits = [c for c in ranked if c.params <= 2 * 2e3]
    assert [p.genotype for p in parents] == [c.genotype for c in (fits or ranked)[:4]]
    assert [p.genotype for p in parents] != [p.genotype for p in paper_parents]


class StopsDuringThePool(SyntheticEvaluator):
    """Scores ``limit`` pool networks, then is interrupted (Ctrl-C, a kill)."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.limit = limit
        self.pool_scored: list[str] = []

    def pool_entry(self, genotype: str):
        if self.limit is not None and len(self.pool_scored) >= self.limit:
            raise KeyboardInterrupt
        self.pool_scored.append(genotype)
        return super().pool_entry(genotype)


def test_a_search_stopped_during_the_pool_resumes_without_scoring_again(tmp_path):
    from edgenas.search.ldp import POOL_BATCH

    pool = 2 * POOL_BATCH + 40
    settings = dict(pool_size=pool, parents=2, seed=4, **SMALL_SPACE)
    first = _search(tmp_path, StopsDuringThePool(limit=POOL_BATCH + 10), **settings)
    with pytest.raises(KeyboardInterrupt):
        first.score_pool()
    first.recorder.store.close()  # the killed search's lock goes with its process
    with RunStore.open_readonly(tmp_path / "run") as store:
        kept = {c.genotype for c in store.candidates() if c.score is not None}
        progress = [e.payload for e in store.events(kinds=("pool_progress",))]
    # Scores reached the store in batches while the pool was scored.
    assert len(kept) >= POOL_BATCH and progress[-1]["scored"] == len(kept)
    assert progress[-1]["total"] == pool

    resumed = StopsDuringThePool()
    search = _search(tmp_path, resumed, **settings)
    ranked = search.score_pool()
    assert len(resumed.pool_scored) == pool - len(kept)
    assert not kept & set(resumed.pool_scored)
    assert len(ranked) == pool
    assert all(c.score == resumed.score(c.genotype) for c in ranked)
    # The same pool as one uninterrupted run, in the same order (ids included).
    whole = _search(tmp_path, StopsDuringThePool(), name="whole", **settings).score_pool()
    assert [(c.id, c.genotype, c.score) for c in whole] == [
        (c.id, c.genotype, c.score) for c in ranked
    ]


class FailsEveryOther(SyntheticEvaluator):
    """Every second training comes back failed (a Ray task lost or stuck)."""

    def train(self, genotype: str):
        from edgenas.search.executor import FailedEvaluation

        if len(self.trained) % 2 == 1:
            self.trained.append(genotype)
            return FailedEvaluation(genotype, "cancelled after 3 s (stuck)")
        return super().train(genotype)


class Wide(InlineExecutor):
    """An inline executor that says it runs two evaluations at once (as two Ray or
    process workers do): the search then trains two children per tabu step."""

    width = 2


def test_failed_trainings_are_recorded_never_moved_to_and_replayed(tmp_path):
    settings = dict(pool_size=4, parents=1, children=3, max_iterations=4, patience=4,
                    seed=5, target_flops=2e5, **SMALL_SPACE)  # fmt: skip
    evaluator = FailsEveryOther()
    search = _search(tmp_path, evaluator, **settings)
    search.run()
    store = search.recorder.store
    failed = store.candidates("failed")
    events = store.events(kinds=("candidate_failed",))
    assert failed and len(events) == len(failed)
    assert {e.payload["reason"] for e in events} == {"cancelled after 3 s (stuck)"}
    moved_to = {to for _from, to in _moves(search)}
    assert not moved_to & {c.genotype for c in failed}
    assert all(math.isfinite(e.grade) for e in search.pareto())
    rows = [(c.genotype, c.status, c.grade) for c in store.candidates()]
    store.close()
    # A resume replays the failures (and everything else) without training again.
    replay = FailsEveryOther()
    again = _search(tmp_path, replay, **settings)
    again.run()
    assert replay.trained == []
    assert [(c.genotype, c.status, c.grade) for c in again.recorder.store.candidates()] == rows


def test_a_wider_executor_trains_the_best_rewarded_children_together(tmp_path):
    settings = dict(pool_size=4, parents=1, children=3, max_iterations=3, patience=3,
                    seed=6, target_flops=2e5, start_genotypes=(), **SMALL_SPACE)  # fmt: skip
    config = SearchConfig(task="sr", run_name="wide", runs_dir=str(tmp_path), **settings)
    store = RunStore.create(tmp_path / "wide", name="wide", kind="ldp-search", config={})
    evaluator = SyntheticEvaluator()
    search = LDPSearch(config, evaluator, Wide(evaluator), Recorder(store))
    search.run()
    proposed = store.events(kinds=("child_proposed",))
    trained = [e.candidate_id for e in store.events(kinds=("candidate_trained",))]
    # Per step: the two highest rewards among its three children were trained.
    steps = [proposed[i : i + 3] for i in range(0, len(proposed), 3)]
    assert steps and all(len(step) == 3 for step in steps)
    for step in steps:
        best_two = sorted(step, key=lambda e: -e.payload["reward"])[:2]
        assert {e.candidate_id for e in best_two} <= set(trained)
    assert len(evaluator.trained) == 1 + 2 * len(steps)  # the parent, then two per step


class PoolFailsOnce(SyntheticEvaluator):
    """The scoring of the third pool network fails (its Ray task was lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool_calls: list[str] = []

    def pool_entry(self, genotype: str):
        from edgenas.search.executor import FailedEvaluation

        self.pool_calls.append(genotype)
        if len(self.pool_calls) == 3:
            return FailedEvaluation(genotype, "WorkerCrashedError: lost")
        return super().pool_entry(genotype)


class MutatesInto:
    """A space whose every mutation gives one genotype (the case under test)."""

    def __init__(self, genotype: str) -> None:
        self.genotype = decode(genotype)

    def mutate(self, _genotype, _rng):
        return self.genotype


def test_a_pool_network_whose_scoring_failed_is_recorded_and_not_scored_again(tmp_path):
    settings = dict(pool_size=6, parents=2, seed=7, **SMALL_SPACE)
    first = PoolFailsOnce()
    search = _search(tmp_path, first, **settings)
    ranked = search.score_pool()
    failed = [c for c in ranked if c.status == "failed"]
    assert [c.genotype for c in failed] == [first.pool_calls[2]]
    assert failed[0].score is None and ranked[-1].genotype == failed[0].genotype
    progress = search.recorder.store.events(kinds=("pool_progress",))
    assert progress[-1].payload["failed"] == [[failed[0].genotype, "WorkerCrashedError: lost"]]
    # A child equal to it gets a score and sizes when proposed, not a crash.
    child = search.recorder.known(failed[0].genotype)
    current = search.evaluate(ranked[0])
    search.space = MutatesInto(child.genotype)
    proposed = search.propose_children(current, [])
    assert proposed[0][0].score is not None and proposed[0][0].params is not None
    search.recorder.store.close()
    resumed = PoolFailsOnce()
    _search(tmp_path, resumed, **settings).score_pool()
    assert resumed.pool_calls == []  # nothing scored again, the failure included


def test_pool_progress_measures_its_rate_from_the_first_batch_on():
    from edgenas.search.ldp import PoolProgress

    now = [100.0]
    lines: list[str] = []
    progress = PoolProgress(total=1_000, done=200, clock=lambda: now[0], log=lines.append)
    now[0] = 160.0  # a minute of workers starting, then the first batch
    first = progress.advance(50)
    assert first["scored"] == 250 and first["rate_per_s"] is None and first["eta_s"] is None
    now[0] = 170.0
    second = progress.advance(100)
    assert second["rate_per_s"] == 10.0 and second["eta_s"] == 65.0
    assert lines[-1] == "  pool 350/1,000 scored, 10.0 networks/s, 1m05s left"
