"""Where candidate evaluations run: in this process, a local process pool, or on Ray.

The search asks an :class:`Executor` to apply one :class:`CandidateEvaluator` method
(``score``, ``train``, ...) to a list of genotypes and gets the results back in order,
all at once (``map``) or one by one as they arrive (``imap``, for the pool, so that
scores reach the store while the rest are computed). It does not know where they ran;
:mod:`edgenas.search.ray_executor` spreads them over a Ray cluster.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator

ALLOWED_METHODS = ("score", "train", "static_resources", "pool_entry")


@dataclass(frozen=True)
class FailedEvaluation:
    """An evaluation that did not come back: its worker died more often than it may be
    retried, or it ran past the task timeout and was cancelled. The search records the
    candidate as failed and goes on (only the Ray executor produces these: elsewhere a
    failure is an error of this process)."""

    genotype: str
    reason: str


class Executor(Protocol):
    """Runs evaluator methods on genotypes; results come back in input order.

    ``width``: how many evaluations run at once (the search trains that many of the
    best-rewarded children per tabu step). ``close`` ends a finished search's executor;
    ``abort`` one stopped by an error, Ctrl-C or SIGTERM: work in flight is dropped,
    not waited for.
    """

    width: int

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]: ...

    def imap(self, method: str, genotypes: Sequence[str]) -> Iterator[Any]: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def check_method(method: str) -> None:
    """Refuse a name that is not an evaluation (executors call it by name)."""
    if method not in ALLOWED_METHODS:
        raise ValueError(f"unknown evaluation {method!r}")


class InlineExecutor:
    """Everything in the calling process, one genotype after another."""

    width = 1

    def __init__(self, evaluator: CandidateEvaluator) -> None:
        self.evaluator = evaluator

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]:
        return list(self.imap(method, genotypes))

    def imap(self, method: str, genotypes: Sequence[str]) -> Iterator[Any]:
        check_method(method)
        evaluate = getattr(self.evaluator, method)
        return (evaluate(g) for g in genotypes)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


_WORKER_EVALUATOR: CandidateEvaluator | None = None


# How often a worker checks that the search that started it is still there.
PARENT_CHECK_S = 0.5


def _init_worker(config: dict, threads: int) -> None:
    import torch

    global _WORKER_EVALUATOR
    # Ctrl-C reaches the whole process group: the search handles it (it marks the run
    # interrupted and stops the workers); a worker would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(os.getppid())
    torch.set_num_threads(threads)
    _WORKER_EVALUATOR = CandidateEvaluator(SearchConfig.from_dict(config))


def _watch_parent(parent: int) -> None:
    """Exit this worker when the search process that started it is gone (kill -9 of
    the search, a crash): an orphaned worker would go on training and holding its
    memory. The OS gives an orphan a new parent, which is what is watched for."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)  # no clean-up to run: the search that wanted the result is gone

    threading.Thread(target=watch, name="edgenas-parent-watch", daemon=True).start()


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
        self.width = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(config.to_dict(), threads),
        )

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]:
        return list(self.imap(method, genotypes))

    def imap(self, method: str, genotypes: Sequence[str]) -> Iterator[Any]:
        check_method(method)
        # Chunks of a few genotypes per round trip: a 60,000-network pool would
        # otherwise cost 60,000 pickled calls.
        chunk = max(1, min(16, len(genotypes) // (4 * self.width)))
        return self._pool.map(_run, [method] * len(genotypes), genotypes, chunksize=chunk)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def abort(self) -> None:
        """Stop the workers now, also in the middle of a training (SIGTERM)."""
        # ProcessPoolExecutor has no public way to stop running work before Python
        # 3.14 (terminate_workers); its process table is the documented-in-practice one.
        for process in list(getattr(self._pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
