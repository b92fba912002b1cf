"""The search's only door to the run store, with deterministic resume.

Resume works by replay: the search is a deterministic function of its config and seed
except for the measured values (scores, accuracies, latencies), and those are all in
the store. A resumed search runs again from the start; every value already in the
store is read instead of computed, and every event already in the log is recognised
instead of appended again. So the replay reaches the point of the crash in seconds and
goes on from there, and the store ends up exactly as one uninterrupted run would have
left it (but for the evaluation that was in flight).
"""

from __future__ import annotations

from typing import Any

from edgenas.errors import UserError
from edgenas.store import Candidate, RunStore

# Events about the run's life or progress, not steps of the search: not part of the
# replayed stream (pool_progress batches depend on timing, not on the search).
OUTSIDE_REPLAY = ("run_started", "run_resumed", "run_failed", "pool_progress")
# A pool row's origin once the search went on: still "pool", or a parent searched from.
POOL_ORIGINS = ("pool", "parent", "start")


class ReplayDiverged(UserError):
    """The resumed search took a different path from the recorded one."""


class Recorder:
    """Writes candidates and events; during a replay, recognises what is already there."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        events = [e for e in store.events() if e.kind not in OUTSIDE_REPLAY]
        self._recorded = [(e.kind, e.candidate_id) for e in events]
        self._payloads = [e.payload for e in events]
        self._position = 0
        self._by_genotype = {c.genotype: c for c in store.candidates()}

    @property
    def replaying(self) -> bool:
        """True while the search is re-walking events that are already recorded."""
        return self._position < len(self._recorded)

    def event(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        candidate_id: int | None = None,
        iteration: int | None = None,
    ) -> None:
        """Append an event, or check it against the log while replaying."""
        if self.replaying:
            expected = self._recorded[self._position]
            if expected != (kind, candidate_id):
                raise ReplayDiverged(
                    f"event {self._position + 1} was {expected}, the resumed search "
                    f"produced {(kind, candidate_id)}; resume with the original config"
                )
            self._position += 1
            return
        self.store.append_event(kind, payload, candidate_id=candidate_id, iteration=iteration)

    def next_kind(self) -> str | None:
        """The kind of the next recorded event while replaying, else None."""
        return self._recorded[self._position][0] if self.replaying else None

    def next_payload(self, kind: str) -> dict[str, Any] | None:
        """While replaying, the payload of the next recorded event if it is a ``kind``
        (a value measured by the original run, to be reused); else None."""
        if self.next_kind() != kind:
            return None
        return self._payloads[self._position]

    def known(self, genotype: str) -> Candidate | None:
        """The stored row of a genotype, as it was when the run was (re)opened or since."""
        return self._by_genotype.get(genotype)

    def ensure(self, genotype: str, *, origin: str, status: str, **values: Any) -> Candidate:
        """The genotype's row, inserted with these values if it is new."""
        existing = self._by_genotype.get(genotype)
        if existing is not None:
            return existing
        candidate_id = self.store.add_candidate(genotype, origin=origin, status=status, **values)
        candidate = self.store.candidate(candidate_id)
        self._by_genotype[genotype] = candidate
        return candidate

    def stored_pool(self, size: int) -> list[str] | None:
        """While replaying a run whose pool was complete (a ``pool_scored`` event), the
        pool's genotypes in order: its first ``size`` rows, written in pool order before
        anything else. Sampling 60,000 genotypes again would take seconds (minutes when
        they are drawn within a parameter target). None when the
        pool must be sampled (a new run, one stopped during the pool)."""
        if not self.replaying or ("pool_scored", None) not in self._recorded:
            return None
        rows = sorted(self._by_genotype.values(), key=lambda c: c.id)[:size]
        if len(rows) < size or any(c.origin not in POOL_ORIGINS for c in rows):
            return None
        return [c.genotype for c in rows]

    def ensure_many(self, rows: list[dict[str, Any]]) -> list[Candidate]:
        """The rows of many genotypes (a pool batch), the new ones inserted in one
        transaction; each row holds ``genotype``, ``origin``, ``status`` and values."""
        new = [row for row in rows if row["genotype"] not in self._by_genotype]
        if new:
            ids = self.store.add_candidates(new)
            for candidate in self.store.candidates_by_id(ids):  # one read per batch
                self._by_genotype[candidate.genotype] = candidate
        return [self._by_genotype[row["genotype"]] for row in rows]

    def progress(self, kind: str, payload: dict[str, Any]) -> None:
        """Append a progress event (one of :data:`OUTSIDE_REPLAY`): never replayed."""
        if kind not in OUTSIDE_REPLAY:
            raise ValueError(f"{kind} is a step of the search, record it with event()")
        self.store.append_event(kind, payload)

    def update(self, candidate: Candidate, **values: Any) -> Candidate:
        """Update a row (skipped when the stored row already holds these values)."""
        if all(getattr(candidate, key) == value for key, value in values.items()):
            return candidate
        self.store.update_candidate(candidate.id, **values)
        fresh = self.store.candidate(candidate.id)
        self._by_genotype[fresh.genotype] = fresh
        return fresh
