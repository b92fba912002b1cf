"""Where candidate evaluations run: in this process, or in a local process pool.

The search asks an :class:`Executor` to apply one :class:`CandidateEvaluator` method
(``score``, ``train``, ...) to a list of genotypes and gets the results back in order.
It does not know where they ran; a distributed engine can implement the same two
methods later.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator

ALLOWED_METHODS = ("score", "train", "static_resources")


class Executor(Protocol):
    """Runs evaluator methods on genotypes; results come back in input order."""

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Everything in the calling process, one genotype after another."""

    def __init__(self, evaluator: CandidateEvaluator) -> None:
        self.evaluator = evaluator

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]:
        if method not in ALLOWED_METHODS:
            raise ValueError(f"unknown evaluation {method!r}")
        return [getattr(self.evaluator, method)(g) for g in genotypes]

    def close(self) -> None:
        pass


_WORKER_EVALUATOR: CandidateEvaluator | None = None


def _init_worker(config: dict, threads: int) -> None:
    import torch

    global _WORKER_EVALUATOR
    torch.set_num_threads(threads)
    _WORKER_EVALUATOR = CandidateEvaluator(SearchConfig.from_dict(config))


def _run(method: str, genotype: str):
    assert _WORKER_EVALUATOR is not None
    return getattr(_WORKER_EVALUATOR, method)(genotype)


class ProcessExecutor:
    """A pool of worker processes, each with its own evaluator (data loaded once).

    Workers are spawned (not forked) so that torch's thread pools start clean; each
    uses ``threads`` intra-op threads. Latency is never measured concurrently with
    other work in a worker: ``train`` measures on the device, so use one worker when
    latency matters, or the inline executor.
    """

    def __init__(self, config: SearchConfig, workers: int, threads: int = 1) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(config.to_dict(), threads),
        )

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]:
        if method not in ALLOWED_METHODS:
            raise ValueError(f"unknown evaluation {method!r}")
        return list(self._pool.map(_run, [method] * len(genotypes), genotypes))

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
