"""The measurement protocol: warm-up, timed runs, sessions; and the host timing loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from edgenas.devices.stats import SessionTimings

from edgenas.errors import UserError


@dataclass(frozen=True)
class Protocol:
    """How one model is measured.

    Each session warms up for at least ``warmup_runs`` runs and ``warmup_min_s``
    seconds, then times at least ``runs`` runs and ``min_time_s`` seconds (capped by
    ``max_runs``). ``sessions`` sessions are run (each with a fresh runtime session),
    separated by ``cooldown_s`` seconds.
    """

    warmup_runs: int = 10
    warmup_min_s: float = 0.1
    runs: int = 50
    min_time_s: float = 0.0
    sessions: int = 3
    cooldown_s: float = 0.0
    max_runs: int = 100_000

    def __post_init__(self) -> None:
        if self.runs < 1 or self.sessions < 1 or self.warmup_runs < 0:
            raise UserError("--runs and --sessions must be >= 1 and --warmup >= 0")
        if self.min_time_s < 0 or self.warmup_min_s < 0 or self.cooldown_s < 0:
            raise UserError("times in the protocol must be >= 0 seconds")

    def to_dict(self) -> dict:
        return asdict(self)


def timed_session(run_once: Callable[[], object], protocol: Protocol) -> SessionTimings:
    """Warm up, then time ``run_once`` per the protocol; samples in milliseconds.

    Each sample is one call timed with ``perf_counter_ns``; nothing else happens between
    the two clock reads.
    """
    clock = time.perf_counter_ns
    start = clock()
    done = 0
    while done < protocol.warmup_runs or (clock() - start) < protocol.warmup_min_s * 1e9:
        run_once()
        done += 1
        if done >= protocol.max_runs:
            break
    samples: list[float] = []
    start = clock()
    while len(samples) < protocol.runs or (
        (clock() - start) < protocol.min_time_s * 1e9 and len(samples) < protocol.max_runs
    ):
        t0 = clock()
        run_once()
        samples.append((clock() - t0) / 1e6)
    wall_s = (clock() - start) / 1e9
    return SessionTimings.from_samples(samples, warmup_runs=done, wall_s=wall_s)


def host_session(load: Callable[[], Callable[[], object]], protocol: Protocol) -> SessionTimings:
    """One host session from scratch: ``load()`` creates the runtime session (or
    compiles the model) and returns its ``run_once``; then the first inference, then
    :func:`timed_session`.

    Records the load time and the first inference's time (it also counts as a
    warm-up run); :func:`~edgenas.devices.profile.profile_model` adds the memory.
    """
    clock = time.perf_counter_ns
    t0 = clock()
    run_once = load()
    load_ms = (clock() - t0) / 1e6
    t0 = clock()
    run_once()
    first_ms = (clock() - t0) / 1e6
    timings = timed_session(run_once, protocol)
    timings.warmup_runs += 1
    timings.load_ms, timings.first_ms = load_ms, first_ms
    return timings
