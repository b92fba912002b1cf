"""LDP's search (paper Sec. 2.3, Fig. 4): score-ranked parents, then Assisted Tabu
Search from each parent, driven by the validation grade G and the mutation reward R.

1. Parents: ``pool_size`` unique random genotypes (with a parameter target, drawn
   within it: :meth:`LDPSearch.sample_pool`) scored by ``config.score``: training
   steps per second (``"speed"``, the default with a seconds proxy) or the paper's
   NASWOT on one fixed batch of training images (``"naswot"``); the
   3 best by score, and the 3 best by score among the pool members whose size is
   closest to the target compactness. After each parent's search the ranking is
   updated (the children scored meanwhile join it, networks trained meanwhile leave it)
   and the remaining parents are chosen again by the same rule.
2. From each parent, Assisted Tabu Search: mutate ``children`` valid children of the
   current architecture (not in the tabu list of the last ``tabu_tenure`` visited
   architectures), compute R for each, train the child with the highest R (a child
   trained before keeps its grade) and compute its G. If G improves on the current architecture the child
   becomes current; otherwise the search moves to the best entry of the tabu candidate
   list (the evaluated children not taken, tabu ones excluded), even if it is worse:
   that is how tabu search leaves local optima. Stop after ``max_iterations`` or after
   ``patience`` iterations without improving the best G of this parent.
3. The global best G and the Pareto front (accuracy vs the primary resource) over all
   trained candidates.

All values go to the run store through :class:`~edgenas.search.recorder.Recorder`,
which also makes ``resume`` a deterministic replay.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edgenas.errors import UserError
from edgenas.search import objectives
from edgenas.search.budget import expected_candidate_seconds, parent_deadline
from edgenas.search.config import DEFAULT_TRAIN_SECONDS, SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.search.executor import Executor, FailedEvaluation
from edgenas.search.recorder import Recorder
from edgenas.space import decode
from edgenas.store import Candidate

Log = Callable[[str], None]
# With a latency target, pool members are placed against it by MACs times the median
# ms-per-MAC of this many networks of median size, each measured whole once.
CALIBRATION_NETWORKS = 3
# With a target, the "best score" parents are the best scores among the networks at
# most this many times over it (a deviation from the paper, docs/search.md).
SCORE_PARENT_LIMIT = 2.0
# Share of the parents (after the warm starts) chosen as the best scores among the
# networks closest to the target size (paper Sec. 2.3); the rest are the best scores.
NEAR_TARGET_PARENT_SHARE = 0.5
# With a parameter target, random draws per pool network at most (the pool is drawn
# within the target, LDPSearch.sample_pool), and a progress line every this many draws.
POOL_DRAWS_PER_NETWORK = 200
POOL_PROGRESS_DRAWS = 100_000
# Pool scores reach the store in batches of this many networks, or after this many
# seconds: one transaction per batch (a 60,000-network pool), little lost on a kill.
POOL_BATCH = 256
POOL_FLUSH_S = 5.0


class PoolProgress:
    """Pool scoring's progress for the ``pool_progress`` events and the log: networks
    scored, rate and time left. The rate is measured from the first batch on: before
    it, workers start and load the data, which says nothing of the hours to come
    (and networks scored before a resume do not count)."""

    def __init__(self, total: int, done: int, clock: Callable[[], float], log: Log) -> None:
        self.total, self.done, self.clock, self.log = total, done, clock, log
        self.first: tuple[float, int] | None = None  # (time, done) at the first batch

    def advance(self, count: int) -> dict:
        """Count ``count`` more scored networks; returns the event payload (logged)."""
        self.done += count
        now = self.clock()
        rate = eta = None
        if self.first is None:
            self.first = (now, self.done)
        elif now > self.first[0]:
            rate = (self.done - self.first[1]) / (now - self.first[0])
            eta = (self.total - self.done) / rate if rate > 0 else None
        self.log(
            f"  pool {self.done:,}/{self.total:,} scored"
            + (f", {rate:.1f} networks/s" if rate is not None else "")
            + (f", {_clock_text(eta)} left" if eta is not None and self.done < self.total else "")
        )
        return {"scored": self.done, "total": self.total, "rate_per_s": rate, "eta_s": eta}


@dataclass
class Evaluated:
    """A trained candidate as the search sees it."""

    candidate: Candidate
    grade: float

    @property
    def genotype(self) -> str:
        return self.candidate.genotype


class LDPSearch:
    """One LDP search over a config, an evaluator, an executor and a recorder."""

    def __init__(
        self,
        config: SearchConfig,
        evaluator: CandidateEvaluator,
        executor: Executor,
        recorder: Recorder,
        log: Log | None = None,
        *,
        search_deadline: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``search_deadline``: a time of ``clock`` by which the tabu searches must end
        (a run with a budget, :mod:`edgenas.search.budget`); None: no time limit."""
        self.config = config
        self.evaluator = evaluator
        self.executor = executor
        self.recorder = recorder
        self.log = log or (lambda _message: None)
        self.space = config.space()
        self.targets = config.targets()
        self.rng = random.Random(config.seed)
        self.trained: dict[str, Evaluated] = {}
        # Genotypes scored so far in this run, in order (the pool, then children): the
        # ranking is built from these, not from the store, which during a replay
        # already holds rows the search has not reached yet.
        self.scored: dict[str, None] = {}
        self.iteration = 0
        self.phase_seconds: dict[str, float] = {}
        self.search_deadline = search_deadline
        self.clock = clock
        self._parent_deadline: float | None = None
        self._step_seconds: list[float] = []  # tabu steps that trained, for the estimate
        self._calibration: dict[str, float] = {}  # whole-network latencies (events)

    # ----------------------------------------------------------------- parents
    def score_pool(self) -> list[Candidate]:
        """Sample and score the pool (``config.score``: NASWOT or training speed);
        returns its rows, best score first.

        Scores stream into the store in batches as they arrive (every
        :data:`POOL_BATCH` networks or :data:`POOL_FLUSH_S` seconds), in pool order, so
        a search stopped during the pool resumes without scoring those again.
        """
        pool = self.recorder.stored_pool(self.config.pool_size) or self.sample_pool()
        # A network with a row was scored (or failed: it is not tried again on resume).
        missing = [g for g in pool if self.recorder.known(g) is None]
        if missing:
            what = "training speed" if self.config.score == "speed" else "NASWOT"
            self.log(f"scoring {len(missing)} random genotypes with {what}")
        progress = PoolProgress(len(pool), len(pool) - len(missing), self.clock, self.log)
        batch: list[dict] = []
        flushed = self.clock()
        failures: list[list[str]] = []
        for genotype, entry in zip(missing, self.executor.imap("pool_entry", missing), strict=True):
            if isinstance(entry, FailedEvaluation):  # a Ray task lost or stuck
                batch.append({"genotype": genotype, "origin": "pool", "status": "failed"})
                failures.append([genotype, entry.reason])
            else:
                score, params, flops = entry
                batch.append(
                    {"genotype": genotype, "origin": "pool", "status": "scored",
                     "score": _finite_or_none(score), "params": params, "flops": flops}
                )  # fmt: skip
            if len(batch) >= POOL_BATCH or self.clock() - flushed >= POOL_FLUSH_S:
                self._flush_pool(batch, progress, failures)
                batch, failures, flushed = [], [], self.clock()
        if batch:
            self._flush_pool(batch, progress, failures)
        rows = [self.recorder.known(g) for g in pool]
        for genotype in pool:
            self.scored[genotype] = None
        # scored_now: by this process (fewer after a resume during the pool)
        self.recorder.event("pool_scored", {"total": len(pool), "scored_now": len(missing)})
        return sorted(rows, key=_score_key)

    def sample_pool(self) -> list[str]:
        """The pool's genotypes: ``pool_size`` distinct samples of the space, seeded.

        With a parameter target, only networks within it, drawn by rejection (at most
        :data:`POOL_DRAWS_PER_NETWORK` draws per pool network; if too few fit, the
        smallest of the rest fill the pool). Uniform samples of the default spaces are
        mostly far over a small target (2 % of segmentation samples fit 100K), and a
        grade penalises every network over it, so a uniform pool leaves the parents
        over the target too: measured, that made ATS lose to random search within the
        target (docs/search.md, "ATS against random search"). Deterministic for a
        config, so a search stopped during the pool draws the same pool again.
        """
        size, seed = self.config.pool_size, self.config.seed
        target = self.targets.get("params")
        if target is None:
            return [g.encode() for g in self.space.sample_unique(size, seed)]
        self.log(f"drawing {size:,} random genotypes within {target:,.0f} parameters")
        within: dict[str, None] = {}  # in draw order
        # The smallest distinct draws over the target, in case too few fit: a max-heap
        # of (-params, -draw index, genotype) bounded to `size` entries, so memory
        # stays flat however many draws a large pool takes.
        over: list[tuple[int, int, str]] = []
        in_over: set[str] = set()
        draws = itertools.islice(self.space.iter_draws(seed), size * POOL_DRAWS_PER_NETWORK)
        drawn = 0
        for drawn, genotype in enumerate(draws, start=1):
            encoded = genotype.encode()
            params = self.evaluator.params(encoded)
            if params <= target:
                within.setdefault(encoded, None)
                if len(within) == size:
                    break
            elif encoded not in in_over and encoded not in within:
                in_over.add(encoded)
                heapq.heappush(over, (-params, -drawn, encoded))
                if len(over) > size:
                    in_over.discard(heapq.heappop(over)[2])
            if drawn % POOL_PROGRESS_DRAWS == 0:
                self.log(f"  {drawn:,} drawn, {len(within):,} fit the target")
        self.log(f"pool: {len(within):,} of {drawn:,} random networks fit {target:,.0f} parameters")
        pool = list(within)
        if len(pool) < size:
            fill = [g for _p, _i, g in sorted((-p, -i, g) for p, i, g in over)]
            pool += fill[: size - len(pool)]
            self.log(f"  the {size - len(within):,} smallest of the rest fill the pool")
        if len(pool) < size:
            raise UserError(
                f"could not draw {size} distinct genotypes in {drawn:,} draws: the space is "
                "too small for this pool; lower --pool or widen the space"
            )
        return pool

    def _flush_pool(self, batch: list[dict], progress: PoolProgress, failures: list) -> None:
        """Write a batch of pool rows (one transaction) and a progress event, which
        also names the networks whose scoring failed and why."""
        self.recorder.ensure_many(batch)
        payload = progress.advance(len(batch))
        if failures:
            payload["failed"] = failures
            self.log(f"  {len(failures)} pool network(s) failed: {failures[0][1]}")
        self.recorder.progress("pool_progress", payload)

    def select_parents(
        self, ranked: list[Candidate], used: list[Candidate] | None = None
    ) -> list[Candidate]:
        """The parents of the search: ``used`` (already searched from) followed by the
        rest chosen from ``ranked`` (scored networks, best score first).

        Of ``parents`` in all (after the warm starts), the share
        :data:`NEAR_TARGET_PARENT_SHARE` (half, rounded down) are the best scores among
        the ``2 x parents`` networks closest to the target compactness, over the whole
        ranking (paper Sec. 2.3); the others the best scores (with a target: among
        networks at most :data:`SCORE_PARENT_LIMIT` times over it). Networks already trained
        are never chosen: their grade is known. Emits ``parents_selected``.
        """
        used = list(used or [])
        count = self.config.parents
        starts = self.start_rows()
        parents = list(used)
        # Warm starts come first, then the paper's rule over the remaining slots.
        for row in starts:
            chosen = {c.genotype for c in parents}
            if len(parents) < count and row.genotype not in chosen | set(self.trained):
                parents.append(row)
        start_set = {row.genotype for row in starts}
        fixed = sum(1 for c in parents if c.genotype in start_set)
        # The near-target slots round down; the epsilon keeps e.g. 10 x 0.7 at 7.
        near_count = math.floor((count - fixed) * NEAR_TARGET_PARENT_SHARE + 1e-9)
        by_score_count = count - near_count
        taken = {c.genotype for c in parents}
        available = [  # fresh rows: predictions may have been stored since ranking
            self.recorder.known(c.genotype) or c
            for c in ranked
            if c.genotype not in taken and c.genotype not in self.trained
        ]
        resource = self.config.primary_resource()
        target = self.targets.get(resource)
        estimate = self._estimates(available, resource) if target is not None else {}
        while len(parents) < min(by_score_count, count) and available:
            # The best score among networks at most SCORE_PARENT_LIMIT x the target
            # (NASWOT grows with MACs: unconstrained, these are the slowest networks).
            limit = SCORE_PARENT_LIMIT * target if target is not None else math.inf
            fits = [c for c in available if estimate.get(c.genotype, 0.0) <= limit]
            pick = (fits or available)[0]
            available.remove(pick)
            parents.append(pick)
        wanted = count - len(parents)
        if wanted > 0 and available:
            if target is None:
                near = available  # no target: the next best scores
            else:
                order = objectives.closest_to_target(
                    [estimate[c.genotype] for c in available], target
                )
                closest = [available[i] for i in order[: 2 * count]]
                near = sorted(closest, key=_score_key)
            parents += near[:wanted]
        self.recorder.event(
            "parents_selected",
            {
                "genotypes": [c.genotype for c in parents],
                "resource": self.config.primary_resource(),
                "searched": len(used),
            },
        )
        return parents

    def start_rows(self) -> list[Candidate]:
        """The rows of the warm-start genotypes (``start_genotypes``), scored like the
        pool, so that their score feeds their children's rewards."""
        rows = []
        for genotype in self.config.start_genotypes or ():
            row = self.recorder.known(genotype)
            if row is None or row.score is None:
                entry = self.executor.map("pool_entry", [genotype])[0]
                if isinstance(entry, FailedEvaluation):
                    raise RuntimeError(f"scoring the start genotype failed: {entry.reason}")
                score, params, flops = entry
                row = self.recorder.ensure(
                    genotype,
                    origin="start",
                    status="scored",
                    score=_finite_or_none(score),
                    params=params,
                    flops=flops,
                )
            self.scored[genotype] = None
            rows.append(row)
        return rows

    def ranking(self) -> list[Candidate]:
        """Every scored network of the run (the pool and the children proposed so far),
        best score first: the ranking the remaining parents come from."""
        rows = (self.recorder.known(g) for g in self.scored)
        return sorted((c for c in rows if c is not None and c.score is not None), key=_score_key)

    def _estimates(self, available: list[Candidate], resource: str) -> dict[str, float]:
        """Each network's ``resource``, cheaply: exact for parameters and MACs. For
        latency, a measurement or lookup-table prediction where the store has one, else
        MACs times the median ms-per-MAC of :data:`CALIBRATION_NETWORKS` networks of
        median size, each measured whole once (a table prediction may first measure
        every new part, seconds each: for a pool at a new input size, minutes). The
        measurements are stored, so a resumed search estimates alike."""
        if resource != "latency_ms":
            return {c.genotype: float(getattr(c, resource) or 0.0) for c in available}

        def known(c: Candidate) -> float | None:
            # Only values fixed when first written: a calibration of this run, or a
            # child's prediction. Never a trained row's measurement: during a replay
            # the store already holds measurements the original run made later.
            return self._calibration.get(c.genotype) or c.predicted_latency_ms

        with_flops = [c for c in available if c.flops]
        calibrated = [c for c in with_flops if known(c)]
        if len(calibrated) < CALIBRATION_NETWORKS and with_flops:
            median = statistics.median(float(c.flops) for c in with_flops)
            nearest = sorted(with_flops, key=lambda c: (abs(math.log(c.flops / median)), c.id))
            for candidate in nearest:
                if len(calibrated) >= CALIBRATION_NETWORKS:
                    break
                if known(candidate):
                    continue
                self._calibrate(candidate)
                calibrated.append(candidate)
        ratios = [known(c) / c.flops for c in calibrated]
        ms_per_mac = statistics.median(ratios) if ratios else 0.0
        return {c.genotype: known(c) or float(c.flops or 0) * ms_per_mac for c in available}

    def _calibrate(self, candidate: Candidate) -> None:
        """Measure a network whole for the latency estimate; the value lives in a
        ``latency_calibrated`` event, which a replay reads instead of measuring."""
        recorded = self.recorder.next_payload("latency_calibrated")
        if recorded is not None:
            latency = float(recorded["latency_ms"])
        else:
            latency = self.evaluator.network_latency(candidate.genotype)
        self._calibration[candidate.genotype] = latency
        self.recorder.event(
            "latency_calibrated",
            {"genotype": candidate.genotype, "latency_ms": latency, "device": self.config.device},
            candidate_id=candidate.id,
        )

    # ----------------------------------------------------------------- budget
    def time_left(self) -> float | None:
        """Seconds until the search deadline (None without a budget)."""
        if self.search_deadline is None:
            return None
        return self.search_deadline - self.clock()

    def _time_is_up(self, deadline: float | None, scope: str, parent_index: int) -> bool:
        """True when the next candidate would not finish before ``deadline``; the
        decision is recorded (``budget_spent``) so that a replay takes it again."""
        if deadline is None:
            return False
        if self.recorder.replaying:
            up = self.recorder.next_kind() == "budget_spent"
        else:
            # Before any step is timed (a proxy in steps has no seconds: assume the
            # default proxy's).
            budget = self.config.train_seconds or DEFAULT_TRAIN_SECONDS
            fallback = 1.5 * budget + self.config.children + 3.0
            expected = expected_candidate_seconds(self._step_seconds, fallback)
            up = self.clock() + expected > deadline
        if up:
            self.recorder.event(
                "budget_spent",
                {"scope": scope, "parent_index": parent_index, "time_left": self.time_left()},
                iteration=self.iteration,
            )
        return up

    # --------------------------------------------------------------- training
    def evaluate(self, candidate: Candidate) -> Evaluated:
        """Train (or read from the store) a candidate and compute its grade."""
        return self.evaluate_many([candidate])[0]

    def evaluate_many(self, candidates: list[Candidate]) -> list[Evaluated]:
        """Train the candidates not trained yet together (as many at once as the
        executor runs), then record each in order; returns their grades in order. A
        candidate whose training failed (a Ray task lost or stuck) gets grade -inf."""
        fresh = [
            c for c in candidates
            if c.genotype not in self.trained and c.status not in ("trained", "failed")
        ]  # fmt: skip
        for candidate in fresh:
            self.log(f"training {_short(candidate.genotype)}")
        outcomes = dict(
            zip(
                [c.genotype for c in fresh],
                self.executor.map("train", [c.genotype for c in fresh]),
                strict=True,
            )
        )
        return [self._record(c, outcomes.get(c.genotype)) for c in candidates]

    def _record(self, candidate: Candidate, outcome) -> Evaluated:
        """Store a training's outcome (None: trained before) and its events."""
        genotype = candidate.genotype
        if genotype in self.trained:
            return self.trained[genotype]
        if isinstance(outcome, FailedEvaluation):
            candidate = self.recorder.update(candidate, status="failed", iteration=self.iteration)
        elif outcome is not None:
            values = {"params": outcome.params, "flops": outcome.flops}
            if outcome.latency_ms is not None:
                values["latency_ms"] = outcome.latency_ms
            candidate = self.recorder.update(
                candidate,
                status="trained",
                metrics=outcome.metrics,
                accuracy=outcome.accuracy,
                params=outcome.params,
                flops=outcome.flops,
                latency_ms=outcome.latency_ms,
                latency_source="measured" if outcome.latency_ms is not None else None,
                device=self.config.device if outcome.latency_ms is not None else None,
                grade=objectives.grade(outcome.accuracy, values, self.targets, self.config.alpha),
                timings=outcome.timings,
                loss_history=outcome.loss_history,
                iteration=self.iteration,
            )
        self.iteration += 1
        if candidate.status == "failed":
            # Replayed too: the reason is not stored in the row, the event has it.
            reason = outcome.reason if isinstance(outcome, FailedEvaluation) else None
            self.recorder.event(
                "candidate_failed",
                {"genotype": genotype, "reason": reason},
                candidate_id=candidate.id,
                iteration=self.iteration,
            )
            self.log(f"  failed: {reason or 'see the store'}")
            evaluated = Evaluated(candidate, -math.inf)
            self.trained[genotype] = evaluated
            return evaluated
        payload = {
            "genotype": genotype,
            "accuracy": candidate.accuracy,
            "metrics": candidate.metrics,
            "params": candidate.params,
            "flops": candidate.flops,
            "latency_ms": candidate.latency_ms,
            "grade": candidate.grade,
        }
        self.recorder.event(
            "candidate_trained", payload, candidate_id=candidate.id, iteration=self.iteration
        )
        if candidate.latency_ms is not None:
            self.recorder.event(
                "latency_measured",
                {"latency_ms": candidate.latency_ms, "device": self.config.device},
                candidate_id=candidate.id,
                iteration=self.iteration,
            )
        evaluated = Evaluated(candidate, float(candidate.grade))
        self.trained[genotype] = evaluated
        left = self.time_left()
        self.log(
            f"  G {evaluated.grade:.4f}  accuracy {candidate.accuracy:.4f}  "
            f"params {candidate.params:,}"
            + (f"  latency {candidate.latency_ms:.2f} ms" if candidate.latency_ms else "")
            + (f"  (search time left {_clock_text(left)})" if left is not None else "")
        )
        return evaluated

    # --------------------------------------------------------------- children
    def propose_children(self, current: Evaluated, tabu: deque) -> list[tuple[Candidate, float]]:
        """``children`` new valid mutations of ``current`` with their rewards."""
        parent_score = current.candidate.score
        if parent_score is None:
            parent_score = self.evaluator.score(current.genotype)
        children: list[tuple[Candidate, float]] = []
        proposed: set[str] = set()
        attempts = 0
        while len(children) < self.config.children and attempts < 20 * self.config.children:
            attempts += 1
            child = self.space.mutate(decode(current.genotype), self.rng).encode()
            # Tabu search: only the architectures in the tabu list (the last
            # ``tabu_tenure`` visited) are forbidden. A child trained before may come
            # back once it leaves the list; its grade is reused, not retrained.
            if child == current.genotype or child in proposed or child in tabu:
                continue
            proposed.add(child)
            row = self.recorder.known(child)
            if row is None or row.score is None or row.params is None:
                score = self.evaluator.score(child)
                values, source = self.evaluator.resources(child, measured=False)
                measured = {
                    "score": _finite_or_none(score),
                    "params": int(values["params"]),
                    "flops": int(values["flops"]),
                    "latency_ms": values.get("latency_ms"),
                    "latency_source": source,
                    "predicted_latency_ms": values.get("latency_ms"),
                    "device": self.config.device if source else None,
                }
                if row is None:
                    row = self.recorder.ensure(
                        child,
                        origin="child",
                        status="proposed",
                        parent_id=current.candidate.id,
                        iteration=self.iteration,
                        **measured,
                    )
                else:  # a pool network whose scoring failed, or scored -inf
                    row = self.recorder.update(row, **measured)
            if "latency_ms" in self.targets and row.predicted_latency_ms is None:
                # A parent or pool network proposed again (it left the tabu list): R
                # needs its predicted latency, written once like a child's.
                values, _source = self.evaluator.resources(child, measured=False)
                row = self.recorder.update(row, predicted_latency_ms=values["latency_ms"])
            # R depends on the parent: recomputed for every proposal, from stored values
            # only (score, sizes, predicted latency), so a replay decides alike.
            values = {"params": float(row.params), "flops": float(row.flops)}
            if row.predicted_latency_ms is not None:
                values["latency_ms"] = row.predicted_latency_ms
            score = row.score if row.score is not None else -math.inf
            reward = objectives.reward(parent_score, score, values, self.targets, self.config.alpha)
            row = self.recorder.update(row, reward=reward)
            self.recorder.event(
                "child_proposed",
                {
                    "genotype": child,
                    "parent": current.genotype,
                    "score": row.score,
                    "reward": reward,
                    "params": row.params,
                    "latency_ms": row.latency_ms,
                },
                candidate_id=row.id,
                iteration=self.iteration,
            )
            self.scored[child] = None
            children.append((row, reward))
        return children

    # ------------------------------------------------------------ tabu search
    def tabu_search(self, parent: Candidate, parent_index: int) -> Evaluated:
        """Assisted Tabu Search from one parent; returns the best candidate it found."""
        origin = "start" if parent.origin == "start" else "parent"
        current = self.evaluate(self.recorder.update(parent, origin=origin))
        best = current
        tabu: deque[str] = deque(maxlen=self.config.tabu_tenure)
        candidate_list: dict[str, Evaluated] = {}
        stale = 0
        for step in range(self.config.max_iterations):
            if self._time_is_up(self._parent_deadline, "parent", parent_index):
                self.log("  this parent's share of the budget is spent: next parent")
                break
            step_start, replayed = self.clock(), self.recorder.replaying
            children = self.propose_children(current, tabu)
            if not children:
                self.log("  no new valid child: stopping this parent")
                break
            # The child with the highest R; a wider executor trains the next best
            # rewarded ones beside it (they join the candidate list), and the move
            # goes to the best graded of them (docs/distributed.md).
            ranked = sorted(children, key=lambda pair: -pair[1])[: max(1, self.executor.width)]
            trained_before = all(c.genotype in self.trained for c, _ in ranked)
            batch = self.evaluate_many([c for c, _ in ranked])
            best_index = max(range(len(batch)), key=lambda i: (batch[i].grade, -i))
            child, reward = batch[best_index], ranked[best_index][1]
            if not (replayed or trained_before):
                self._step_seconds.append(self.clock() - step_start)
            previous = current
            tabu.append(previous.genotype)
            for i, other in enumerate(batch):
                if i != best_index and math.isfinite(other.grade):
                    candidate_list[other.genotype] = other
            if child.grade > current.grade:
                current = child
                self.recorder.event(
                    "move_accepted",
                    {
                        "from": previous.genotype,
                        "to": child.genotype,
                        "grade": child.grade,
                        "reward": reward,
                        "step": step,
                        "parent_index": parent_index,
                    },
                    candidate_id=child.candidate.id,
                    iteration=self.iteration,
                )
            else:
                if math.isfinite(child.grade):  # a failed training is no place to move to
                    candidate_list[child.genotype] = child
                options = [e for g, e in candidate_list.items() if g not in tabu]
                if options:
                    current = max(options, key=lambda e: e.grade)
                    del candidate_list[current.genotype]
                self.recorder.event(
                    "move_rejected",
                    {
                        "from": previous.genotype,
                        "to": current.genotype,
                        "rejected": child.genotype,
                        "grade": child.grade,
                        "current_grade": previous.grade,
                        "step": step,
                        "parent_index": parent_index,
                    },
                    candidate_id=child.candidate.id,
                    iteration=self.iteration,
                )
            self.recorder.event(
                "tabu_updated",
                {"tabu": list(tabu), "candidate_list": sorted(candidate_list)},
                iteration=self.iteration,
            )
            if current.grade > best.grade:
                best, stale = current, 0
            else:
                stale += 1
                if stale >= self.config.patience:
                    self.log(f"  {stale} iterations without improvement: next parent")
                    break
        self.recorder.event(
            "parent_finished",
            {
                "parent": parent.genotype,
                "best": best.genotype,
                "grade": best.grade,
                "parent_index": parent_index,
            },
            candidate_id=best.candidate.id,
            iteration=self.iteration,
        )
        return best

    # -------------------------------------------------------------------- run
    def run(self) -> list[Evaluated]:
        """The whole search; returns the trained candidates, best grade first.

        ``self.phase_seconds`` gets the wall time of the parent phase (sampling, NASWOT
        scoring, parent selection) and of the tabu search phase.
        """
        start = time.perf_counter()
        parents = self.select_parents(self.score_pool())
        self.phase_seconds["parents"] = time.perf_counter() - start
        start = time.perf_counter()
        index = 0
        while index < len(parents):
            parent = parents[index]
            if self.trained and self._time_is_up(self.search_deadline, "search", index):
                self.log("the search budget is spent: final training next")
                break
            if self.search_deadline is not None:
                self._parent_deadline = parent_deadline(
                    self.clock(), self.search_deadline, len(parents) - index
                )
            self.log(f"parent {index + 1}/{len(parents)}: {_short(parent.genotype)}")
            self.tabu_search(parent, index)
            index += 1
            if index < self.config.parents:
                # "The network ranking will be updated, and the search will continue for
                # the remaining parent architectures": the children scored so far join
                # the ranking, and networks trained meanwhile stop being parents.
                parents = self.select_parents(self.ranking(), used=parents[:index])
        self.phase_seconds["tabu_search"] = time.perf_counter() - start
        return sorted(self.trained.values(), key=lambda e: -e.grade)

    def pareto(self) -> list[Evaluated]:
        """Trained candidates on the Pareto front of accuracy vs the primary resource."""
        resource = self.config.primary_resource()
        evaluated = [e for e in self.trained.values() if math.isfinite(e.grade)]
        points = [
            (e.candidate.accuracy or 0.0, float(getattr(e.candidate, resource) or 0.0))
            for e in evaluated
        ]
        return [evaluated[i] for i in objectives.pareto_front(points)]


def _score_key(candidate: Candidate) -> tuple[float, int]:
    """Best score first (NASWOT or training speed: higher is better for both); ties by
    store id, so orders are reproducible."""
    score = candidate.score if candidate.score is not None else -math.inf
    return (-score, candidate.id)


def _clock_text(seconds: float) -> str:
    """``725.2`` -> ``12m05s``; negative -> ``0m00s``."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _short(genotype: str, width: int = 60) -> str:
    return genotype if len(genotype) <= width else genotype[: width - 3] + "..."
