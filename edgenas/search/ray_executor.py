"""The search's evaluations on a Ray cluster (``edgenas search --executor ray``).

Training and NASWOT scoring run as Ray tasks, at most ``workers`` at once, each asking
for ``torch_threads`` CPUs (and one GPU with ``--accelerator cuda``). A worker process
keeps one :class:`~edgenas.search.evaluation.CandidateEvaluator` per search (data
loaded once), so only the genotype travels per task.

Every latency question (a child's prediction, a network measured whole, the final
model's profile) goes to one actor per device, :class:`DeviceActor`. It is placed on
the node that advertises the device as a custom resource (``ray start --resources
'{"device:pixel3a": 1}'`` on the machine the phone is plugged into), else on the
search's own node, and it runs one call at a time: measurements are serialised, and on
a host CPU the actor holds the CPUs it measures with, so Ray never schedules a training
on them.

A task whose worker dies is retried by Ray (:data:`TASK_RETRIES`); one that runs past
the task timeout is cancelled. Either way it comes back as a
:class:`~edgenas.search.executor.FailedEvaluation` and the search records the candidate
as failed. Only the search process (the Ray driver) writes the run store.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from edgenas.errors import UserError
from edgenas.search.config import SearchConfig
from edgenas.search.executor import FailedEvaluation, check_method
from edgenas.search.latency import LatencyService, LatencySetup

INSTALL_HINT = 'install it with: pip install "edgenas[ray]"'
# How often Ray starts a task again after its worker process died (a crash, a node lost).
TASK_RETRIES = 2
# Without --task-timeout: a training may take this many times its proxy budget before
# it counts as stuck (data loading, a loaded node), and never less than MIN_TIMEOUT_S.
TIMEOUT_FACTOR = 10.0
MIN_TIMEOUT_S = 600.0
# Measurements kept in the actor's log (DeviceActor.history).
HISTORY = 256


def require_ray():
    """The ``ray`` module, or a one-line UserError with the install hint."""
    try:
        import ray
    except ImportError:
        raise UserError(
            f"--executor ray needs Ray, which is not installed; {INSTALL_HINT}"
        ) from None
    return ray


# Whether this process started or joined Ray through connect() (so it leaves at the end);
# a connection someone else made (a test, a notebook) is theirs to end.
_STATE = {"joined": False}
# Seconds to wait for a cluster's address to answer before calling it unreachable
# (ray.init itself retries for minutes).
PROBE_S = 5.0


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` runs here;
    ``HOST:PORT``: a head node; None: start a local instance on this machine's cores),
    unless already connected. A cluster that is not there is a one-line UserError."""
    ray = require_ray()
    if ray.is_initialized():
        return
    if address:
        _probe(address)
    _quiet_token_notice()
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,  # worker output would interleave with the search's
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"at {address}" if address else "on this machine"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"could not reach a Ray cluster {where} ({first}); start one with `ray start "
            "--head`, or leave out --ray-address for a local instance"
        ) from None
    _STATE["joined"] = True


def _quiet_token_notice() -> None:
    """Drop Ray's notice that token authentication is on (the secure default; it
    would be a second line on stderr, e.g. under a one-line error). Its warning that
    authentication is *off* still shows."""
    import logging

    name = "ray._private.authentication.authentication_token_setup"
    logger = logging.getLogger(name)
    if not any(isinstance(f, _DropTokenNotice) for f in logger.filters):
        logger.addFilter(_DropTokenNotice())


class _DropTokenNotice:
    """A logging filter that drops the 'Token authentication is enabled' record."""

    def filter(self, record) -> bool:
        return not str(record.msg).startswith("Token authentication is enabled for this")


def _probe(address: str) -> None:
    """Fail fast when a ``HOST:PORT`` address does not answer (``auto`` and ``ray://``
    addresses are left to Ray)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_S).close()
    except OSError as err:
        raise UserError(
            f"no Ray cluster answers at {address} ({err.strerror or err}); check the head's "
            "address (`ray status` on it) or leave out --ray-address for a local instance"
        ) from None


def disconnect() -> None:
    """Leave Ray if :func:`connect` joined it (a local instance ends with it)."""
    import ray

    if _STATE["joined"] and ray.is_initialized():
        ray.shutdown()
    _STATE["joined"] = False


def task_timeout(config: SearchConfig, method: str) -> float:
    """Seconds after which a task of ``method`` counts as stuck and is cancelled."""
    if config.task_timeout_s is not None:
        return float(config.task_timeout_s)
    if method == "train":
        return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * float(config.train_seconds or 60.0))
    return MIN_TIMEOUT_S


# --------------------------------------------------------------------- workers
_WORKER_STATE: dict[str, Any] = {}


def _worker_evaluator(config: dict, latency_actor, make: Callable | None):
    """This worker process's evaluator for ``config`` (built once per search); its
    latency questions go to ``latency_actor`` once a task brings one."""
    key = json.dumps(config, sort_keys=True, default=str)
    if _WORKER_STATE.get("key") != key:
        import torch

        search_config = SearchConfig.from_dict(config)
        torch.set_num_threads(max(1, search_config.torch_threads))
        if make is not None:
            evaluator = make(search_config)
        else:
            from edgenas.search.evaluation import CandidateEvaluator

            evaluator = CandidateEvaluator(search_config, RemoteLatency(None))
        _WORKER_STATE.update(key=key, evaluator=evaluator)
    evaluator = _WORKER_STATE["evaluator"]
    if latency_actor is not None and make is None:
        evaluator.latency = RemoteLatency(latency_actor)
    return evaluator


def _evaluate(config: dict, latency_actor, make, method: str, genotype: str):
    """One evaluation in a Ray worker (the body of every task)."""
    return getattr(_worker_evaluator(config, latency_actor, make), method)(genotype)


# ---------------------------------------------------------------------- device
class DeviceActor:
    """The run's device, behind one Ray actor: latency predicted, measured, profiled.

    Ray runs an actor's calls one at a time (this one is never given more
    concurrency), so two workers' measurements never overlap on the device.
    ``history`` lists the calls as ``(method, start, end)`` wall times.
    """

    def __init__(self, setup: LatencySetup) -> None:
        self.service = LatencyService(setup)
        self.calls: deque[tuple[str, float, float]] = deque(maxlen=HISTORY)

    def _timed(self, method: str, *args):
        start = time.time()
        try:
            return getattr(self.service, method)(*args)
        finally:
            self.calls.append((method, start, time.time()))

    def availability(self) -> tuple[bool, str]:
        """Whether the device can be used from this node, and why not."""
        from edgenas.devices.backends import make_backend
        from edgenas.devices.profile import resolve_device

        setup = self.service.setup
        found = make_backend(resolve_device(setup.device), threads=setup.threads).availability()
        return bool(found.usable), str(found.reason or "")

    def predicted(self, genotype: str) -> float:
        return self._timed("predicted", genotype)

    def network(self, genotype: str) -> float:
        return self._timed("network", genotype)

    def measured(self, genotype: str) -> float:
        return self._timed("measured", genotype)

    def profile_file(self, data: bytes, suffix: str, input_shapes: dict):
        """Profile a model file sent as bytes (the driver's file is not on this node)."""
        with tempfile.TemporaryDirectory(prefix="edgenas-ray-profile-") as folder:
            path = Path(folder) / f"model{suffix}"
            path.write_bytes(data)
            return self._timed("profile", path, input_shapes)

    def history(self) -> list[tuple[str, float, float]]:
        return list(self.calls)

    def close(self) -> None:
        self.service.close()


class RemoteLatency:
    """A :class:`LatencyService` look-alike whose calls go to a :class:`DeviceActor`."""

    def __init__(self, actor) -> None:
        self.actor = actor

    def _call(self, method: str, *args):
        import ray

        return ray.get(getattr(self.actor, method).remote(*args))

    def predicted(self, genotype: str) -> float:
        return self._call("predicted", genotype)

    def network(self, genotype: str) -> float:
        return self._call("network", genotype)

    def measured(self, genotype: str, model=None) -> float:
        return self._call("measured", genotype)  # the actor builds it (weights do not matter)

    def profile(self, onnx_path: str | Path, input_shapes: dict):
        path = Path(onnx_path)
        return self._call("profile_file", path.read_bytes(), path.suffix, input_shapes)

    def close(self) -> None:
        pass  # the actor belongs to the executor, which ends it


def device_resource(device: str) -> str:
    """The custom resource a node advertises to say it holds ``device``."""
    return f"device:{device}"


def start_device_actor(setup: LatencySetup):
    """The device actor of this search, placed where the device is (see module doc).

    A device no node advertises must be usable from this machine; either way one that
    is not usable is a one-line UserError naming the node.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from edgenas.devices.profile import resolve_device

    resource = device_resource(setup.device)
    options: dict[str, Any] = {"max_restarts": 1, "max_task_retries": 1, "max_concurrency": 1}
    entry = resolve_device(setup.device)
    # A phone does its own computing; a host device measures on this node's cores,
    # which the actor then holds so that no training is scheduled on them.
    host_cpus = 0 if entry.backend == "adb" else max(1, setup.threads or entry.threads or 1)
    remote = ray.cluster_resources().get(resource, 0) > 0
    if remote:
        options["resources"] = {resource: 1}
        where = f"the node with {resource}"
    else:
        here = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=False)
        where = "this machine"
    cpus_here = ray.cluster_resources().get("CPU", 0)
    options["num_cpus"] = min(host_cpus, max(0, int(cpus_here) - 1)) if not remote else host_cpus
    actor = ray.remote(DeviceActor).options(**options).remote(setup)
    usable, reason = ray.get(actor.availability.remote())
    if not usable:
        ray.kill(actor)
        raise UserError(f"device {setup.device} is not usable on {where}: {reason}")
    return actor


def check_cluster_device(config: SearchConfig) -> None:
    """Refuse a device that is not usable where the search would measure it (the node
    that advertises it, else this machine), before the run exists: a short-lived
    device actor checks it there."""
    import ray

    setup = LatencySetup(
        device=config.device, threads=config.threads, task=config.task,
        deploy_shape=(1, 3, *config.deploy_input),
    )  # fmt: skip
    ray.kill(start_device_actor(setup))


# --------------------------------------------------------------------- session
class RaySession:
    """A search's connection to Ray and its device actor, for the whole run (search,
    final model, baselines): joined at the start, left at the end.

    The device actor starts on the first latency question, so a search without a
    latency target keeps every CPU for training until its final model is measured;
    on a cluster (``--ray-address``) it starts at once, since the device may be on
    another node and must be checked before the search spends anything.
    """

    def __init__(self, config: SearchConfig, setup: LatencySetup) -> None:
        self.config = config
        self.setup = setup
        connect(config.ray_address)
        self._actor = None
        if config.ray_address is not None:
            self.actor()

    def actor(self):
        """The device actor (started on first use)."""
        if self._actor is None:
            self._actor = start_device_actor(self.setup)
        return self._actor

    @property
    def latency(self) -> SessionLatency:
        """Latency questions of the search process, sent to the device actor."""
        return SessionLatency(self)

    def device_history(self) -> list[tuple[str, float, float]]:
        """The device actor's calls ``(method, start, end)``; empty before the first."""
        import ray

        return ray.get(self._actor.history.remote()) if self._actor is not None else []

    def close(self) -> None:
        """End the device actor, and the Ray connection if this session made it."""
        import ray

        if self._actor is not None:
            with contextlib.suppress(Exception):  # a dead actor has nothing to close
                ray.get(self._actor.close.remote(), timeout=30)
            with contextlib.suppress(Exception):
                ray.kill(self._actor)
            self._actor = None
        disconnect()


class SessionLatency(RemoteLatency):
    """:class:`RemoteLatency` whose actor is started on the first question."""

    def __init__(self, session: RaySession) -> None:
        super().__init__(None)
        self.session = session

    def _call(self, method: str, *args):
        self.actor = self.session.actor()
        return super()._call(method, *args)


# -------------------------------------------------------------------- executor
class RayExecutor:
    """Evaluations as Ray tasks, at most ``workers`` at once (see module doc).

    ``session``: the run's :class:`RaySession` (a training with a latency target
    measures through its device actor). ``make``: builds a worker's evaluator from
    the config (tests use it for evaluators that crash or hang); None: the search's.
    """

    def __init__(
        self, config: SearchConfig, session: RaySession | None, *, make: Callable | None = None
    ) -> None:
        import ray

        connect(config.ray_address)
        self.config = config
        self.session = session
        self.width = max(1, config.workers)
        self._config = ray.put(config.to_dict())  # sent once, not with every task
        self._make = make
        self._pending: set = set()
        resources: dict[str, Any] = {"num_cpus": max(1, config.torch_threads)}
        if (config.accelerator or "").lower().startswith("cuda"):
            resources["num_gpus"] = 1
        self._task = ray.remote(_evaluate).options(
            max_retries=TASK_RETRIES, retry_exceptions=False, **resources
        )

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]:
        return list(self.imap(method, genotypes))

    def imap(self, method: str, genotypes: Sequence[str]) -> Iterator[Any]:
        """Results in input order as they arrive; at most ``width`` tasks in flight."""
        check_method(method)
        # A training with a latency target measures the trained network on the device.
        measures = method == "train" and self.config.target_latency_ms is not None
        actor = self.session.actor() if measures and self.session is not None else None
        timeout = task_timeout(self.config, method)
        todo = deque(genotypes)
        flight: deque[tuple[str, Any, float]] = deque()
        while todo or flight:
            while todo and len(flight) < self.width:
                genotype = todo.popleft()
                ref = self._task.remote(self._config, actor, self._make, method, genotype)
                self._pending.add(ref)
                flight.append((genotype, ref, time.monotonic()))
            genotype, ref, started = flight.popleft()
            try:
                yield self._result(ref, genotype, started + timeout - time.monotonic(), timeout)
            finally:
                self._pending.discard(ref)

    def _result(self, ref, genotype: str, wait_s: float, timeout: float):
        """The task's value; a crash past its retries or a timeout as a FailedEvaluation."""
        import ray
        from ray import exceptions

        try:
            return ray.get(ref, timeout=max(0.0, wait_s))
        except exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            return FailedEvaluation(genotype, f"cancelled after {timeout:g} s (stuck)")
        except exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # the evaluation's own error, as inline
            raise
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
                exceptions.ObjectLostError, exceptions.TaskCancelledError,
                exceptions.OwnerDiedError) as err:  # fmt: skip
            reason = f"{type(err).__name__} after {TASK_RETRIES} retries"
            return FailedEvaluation(genotype, reason)

    def close(self) -> None:
        """Nothing in flight after a finished search; Ray is left by the run's session
        (or whoever connected), which outlives the search for the final model."""

    def abort(self) -> None:
        """Cancel every task in flight (their workers are killed)."""
        import ray

        for ref in list(self._pending):
            with contextlib.suppress(Exception):  # already finished or gone
                ray.cancel(ref, force=True)
        self._pending.clear()
