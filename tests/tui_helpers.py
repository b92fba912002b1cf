"""Fixture run stores for the monitor tests, written without torch.

:func:`write_ldp_run` writes the candidates and events an LDP search writes (same kinds,
payloads and order as ``edgenas.search.ldp``) with made-up but deterministic numbers;
:func:`write_shrink_run` does the same for an HR-NAS shrink run. ``freeze_times`` sets
every timestamp to a fixed value, so snapshot tests do not depend on the clock.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from edgenas.space import LDPSpace, decode
from edgenas.store import RunStore, store_path

BASE_TIME = 1_700_000_000.0
LDP_CONFIG = {
    "task": "depth",
    "data": None,
    "device": "cpu",
    "target_params": 250_000.0,
    "target_flops": None,
    "target_latency_ms": None,
    "alpha": 0.5,
    "pool_size": 6,
    "parents": 2,
    "children": 2,
    "max_iterations": 3,
    "deploy_input": [32, 40],
    "scales": [2, 3],
    "channels": [8, 16, 24, 32],
}


def loss_curve(final: float, steps: int = 20) -> list[list[float]]:
    """A made-up decaying loss curve ``[[step, loss], ...]`` ending near ``final``."""
    return [[s, round(final + 2.0 / (1 + s), 4)] for s in range(1, steps + 1)]


class FakeLDPRun:
    """Writes an LDP search step by step (so a test can write part of it, then more)."""

    def __init__(self, store: RunStore, config: dict, seed: int = 0) -> None:
        self.store = store
        self.config = config
        self.rng = random.Random(seed)
        self.space = LDPSpace(scales=(2, 3), channels=(8, 16, 24, 32))
        self.iteration = 0

    def _params(self, genotype: str) -> int:
        blocks = decode(genotype).blocks
        return sum(b.channels * b.channels * b.layers * 9 for b in blocks)

    def pool(self, batch: int = 3) -> list[tuple[int, str]]:
        """Score the pool and select the parents; returns [(id, genotype)] of the parents.

        As the search streams it: rows inserted ``batch`` at a time, a ``pool_progress``
        event per batch, ``pool_scored`` at the end."""
        total = self.config["pool_size"]
        scored = []
        for g in self.space.sample_unique(total, 0):
            genotype = g.encode()
            score = round(180 + 30 * self.rng.random(), 3)
            params = self._params(genotype)
            scored.append(
                {"genotype": genotype, "origin": "pool", "status": "scored", "score": score,
                 "params": params, "flops": params * 200}
            )  # fmt: skip
        rows = []
        for first in range(0, total, batch):
            chunk = scored[first : first + batch]
            ids = self.store.add_candidates(chunk)
            rows += [(r["score"], cid, r["genotype"]) for r, cid in zip(chunk, ids, strict=True)]
            done = first + len(chunk)
            self.store.append_event(
                "pool_progress",
                {"scored": done, "total": total, "rate_per_s": 2.0, "eta_s": (total - done) / 2},
            )
        self.store.append_event("pool_scored", {"total": total, "scored": total})
        rows.sort(reverse=True)
        parents = [(cid, g) for _, cid, g in rows[: self.config["parents"]]]
        self.store.append_event(
            "parents_selected", {"genotypes": [g for _, g in parents], "resource": "params"}
        )
        return parents

    def train(self, cid: int, genotype: str) -> float:
        """Train a candidate: update its row, append candidate_trained; returns G."""
        self.iteration += 1
        accuracy = round(0.3 + 0.5 * self.rng.random(), 4)
        params = self._params(genotype)
        grade = round(0.5 * accuracy + 0.5 * min(1.0, 250_000 / params) ** 0.07, 4)
        metrics = {"delta1": accuracy, "rel": round(1 - accuracy, 4)}
        self.store.update_candidate(
            cid,
            status="trained",
            accuracy=accuracy,
            grade=grade,
            metrics=metrics,
            params=params,
            flops=params * 200,
            iteration=self.iteration,
            timings={"train": 1.5, "steps": 2.0},
            loss_history=loss_curve(1.0 - accuracy),
        )
        self.store.append_event(
            "candidate_trained",
            {
                "genotype": genotype,
                "accuracy": accuracy,
                "metrics": metrics,
                "params": params,
                "flops": params * 200,
                "latency_ms": None,
                "grade": grade,
            },
            candidate_id=cid,
            iteration=self.iteration,
        )
        return grade

    def tabu_search(self, parent_index: int, cid: int, genotype: str) -> None:
        """One parent's Assisted Tabu Search, as edgenas.search.ldp writes it."""
        self.store.update_candidate(cid, origin="parent")
        current = (cid, genotype, self.train(cid, genotype))
        best = current
        tabu: list[str] = []
        for step in range(self.config["max_iterations"]):
            children = []
            for _ in range(self.config["children"]):
                child = self.space.mutate(decode(current[1]), self.rng).encode()
                if self.store.find_candidate(child) is not None:
                    continue
                score = round(180 + 30 * self.rng.random(), 3)
                reward = round(self.rng.random(), 4)
                params = self._params(child)
                child_id = self.store.add_candidate(
                    child,
                    origin="child",
                    status="proposed",
                    parent_id=current[0],
                    iteration=self.iteration,
                    score=score,
                    params=params,
                    flops=params * 200,
                    reward=reward,
                )
                self.store.append_event(
                    "child_proposed",
                    {
                        "genotype": child,
                        "parent": current[1],
                        "score": score,
                        "reward": reward,
                        "params": params,
                        "latency_ms": None,
                    },
                    candidate_id=child_id,
                )
                children.append((reward, child_id, child))
            if not children:
                break
            reward, child_id, child = max(children)
            grade = self.train(child_id, child)
            tabu.append(current[1])
            kind = "move_accepted" if grade > current[2] else "move_rejected"
            payload = {"from": current[1], "to": child, "grade": grade, "step": step}
            payload["parent_index"] = parent_index
            if kind == "move_accepted":
                payload["reward"] = reward
                current = (child_id, child, grade)
            else:
                payload.update(rejected=child, current_grade=current[2], to=current[1])
            self.store.append_event(kind, payload, candidate_id=child_id, iteration=self.iteration)
            self.store.append_event(
                "tabu_updated", {"tabu": list(tabu), "candidate_list": []}, iteration=self.iteration
            )
            if current[2] > best[2]:
                best = current
        self.store.append_event(
            "parent_finished",
            {"parent": genotype, "best": best[1], "grade": best[2], "parent_index": parent_index},
            candidate_id=best[0],
            iteration=self.iteration,
        )

    def run(self) -> None:
        """The whole search, marked finished."""
        for index, (cid, genotype) in enumerate(self.pool()):
            self.tabu_search(index, cid, genotype)
        best = max(
            (c for c in self.store.candidates() if c.grade is not None), key=lambda c: c.grade
        )
        summary = {
            "alpha": 0.5,
            "best": best.genotype,
            "best_candidate_id": best.id,
            "best_grade": best.grade,
            "final_loss_history": loss_curve(0.1, steps=60),
        }
        self.store.append_event("run_finished", summary)
        self.store.set_status("finished", summary)


def write_ldp_run(run_dir: Path, *, finished: bool = True, freeze: bool = True) -> Path:
    """A small complete (or, with ``finished=False``, pool-only running) LDP run."""
    with RunStore.create(run_dir, name=run_dir.name, kind="ldp-search", config=LDP_CONFIG) as s:
        fake = FakeLDPRun(s, LDP_CONFIG)
        if finished:
            fake.run()
        else:
            fake.pool()
    if freeze:
        freeze_times(run_dir)
    return run_dir


def write_shrink_run(run_dir: Path, steps: int = 4) -> Path:
    """An HR-NAS shrink run: ``shrink_step`` events with units kept per block."""
    config = {"task": "depth", "device": "cpu", "epochs": steps - 1, "shrink_every": 1}
    config |= {"cost": "flops", "lambda": 1e-4}
    with RunStore.create(run_dir, name=run_dir.name, kind="hrnas-shrink", config=config) as s:
        s.append_event("run_started", {"settings": config})
        for step in range(steps):
            units = {
                f"block{b}": {"k3": 16 - step * b, "k5": 16 - step, "k7": 8, "tokens": 4}
                for b in range(3)
            }
            s.append_event(
                "shrink_step",
                {
                    "step": step,
                    "epoch": step,
                    "units": units,
                    "macs": 1_000_000 - 100_000 * step,
                    "params": 50_000 - 5_000 * step,
                    "accuracy": 0.5 + 0.05 * step,
                    "lam": 1e-4,
                    "predicted_ms": None,
                },
                iteration=step,
            )
        s.set_status("finished")
    freeze_times(run_dir)
    return run_dir


def freeze_times(run_dir: Path) -> None:
    """Fixed timestamps: event i at BASE_TIME + 10 i, the run from BASE_TIME to its last
    event (so elapsed time and ETA do not depend on when the test ran)."""
    db = sqlite3.connect(store_path(run_dir))
    with db:
        db.execute("UPDATE events SET ts = ? + 10 * id", (BASE_TIME,))
        last = db.execute("SELECT COALESCE(MAX(ts), ?) FROM events", (BASE_TIME,)).fetchone()[0]
        db.execute("UPDATE runs SET created_at = ?, updated_at = ?", (BASE_TIME, last))
        db.execute("UPDATE candidates SET created_at = ?, updated_at = ?", (BASE_TIME, BASE_TIME))
    db.close()
