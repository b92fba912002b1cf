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
# The timeout counts wall time while a CPU-clock budget (--train-clock cpu, the default)
# counts the training thread's CPU time: a worker whose core is shared with nine other
# busy processes would reach it, which is past any load a search should run under.
TIMEOUT_FACTOR = 10.0
MIN_TIMEOUT_S = 600.0
# Measurements kept in the actor's log (DeviceActor.history).
HISTORY = 256
# Seconds for the device actor to start and answer where it is placed: past them Ray
# could not place it (no node with the CPUs or the device resource it asks for).
ACTOR_START_S = 120.0


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
# Ray lowers its worker processes' priority (nice 15) so that its own services stay
# responsive. Our workers do the work the user waits for: at nice 15 any other process
# on a node starves their training (a search's Ray tests took 6 minutes instead of 20 s
# beside a test run), and the device actor's latencies read the other load. So the
# tasks and the actor run in workers at the node's own priority.
WORKER_RUNTIME_ENV = {"env_vars": {"RAY_worker_niceness": "0"}}


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
    key = json.dumps([config, getattr(make, "__qualname__", None)], sort_keys=True, default=str)
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


def _node_cpus(node_id: str | None = None, resource: str | None = None) -> float:
    """CPUs of the live node with ``node_id``, or of the first live node that has
    ``resource`` (0 when there is none)."""
    import ray

    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        resources = node.get("Resources", {})
        if (node_id and node.get("NodeID") == node_id) or (resource and resource in resources):
            return float(resources.get("CPU", 0))
    return 0.0


def start_device_actor(setup: LatencySetup):
    """The device actor of this search, placed where the device is (see module doc).

    A device no node advertises must be usable from this machine; either way one that
    is not usable (or an actor Ray cannot place within :data:`ACTOR_START_S`) is a
    one-line UserError naming the node.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    resource = device_resource(setup.device)
    options: dict[str, Any] = {
        "max_restarts": 1,
        "max_task_retries": 1,
        "max_concurrency": 1,
        "runtime_env": WORKER_RUNTIME_ENV,
    }
    if ray.cluster_resources().get(resource, 0) > 0:
        options["resources"] = {resource: 1}
        where, node_cpus = f"the node with {resource}", _node_cpus(resource=resource)
    else:
        here = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=False)
        where, node_cpus = "this machine", _node_cpus(node_id=here)
    options["num_cpus"] = actor_cpus(setup, node_cpus)
    actor = ray.remote(DeviceActor).options(**options).remote(setup)
    try:
        usable, reason = ray.get(actor.availability.remote(), timeout=ACTOR_START_S)
    except ray.exceptions.GetTimeoutError:
        ray.kill(actor)
        raise UserError(
            f"the device actor for {setup.device} did not start on {where} within "
            f"{ACTOR_START_S:g} s (`ray status` shows what that node has free)"
        ) from None
    if not usable:
        ray.kill(actor)
        raise UserError(f"device {setup.device} is not usable on {where}: {reason}")
    return actor


def actor_cpus(setup: LatencySetup, node_cpus: float) -> int:
    """CPUs the device actor holds on its node: none for a phone (it computes on its
    own), else the threads it measures with, so that Ray schedules no training on
    them; always leaving one CPU of the node to training (a one- or two-core machine
    still trains), and never more than the node has (a node joined with
    ``--num-cpus 0`` holds a device, not trainings)."""
    from edgenas.devices.profile import resolve_device

    entry = resolve_device(setup.device)
    if entry.backend == "adb":
        return 0
    wanted = max(1, setup.threads or entry.threads or 1)
    return int(max(0, min(wanted, node_cpus - 1)))


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

    ``width`` (what the search plans with: children trained per tabu step) is always
    ``workers``, so a resume on a cluster that changed replays alike; the tasks in
    flight are also capped by the CPU (and GPU) slots the cluster has free when a
    batch starts, so that a submitted task starts at once and its timeout counts its
    own running time (plus a worker's cold start), not a wait for a slot.

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
        self._make = make
        self._pending: set = set()
        self._cpus = max(1, config.torch_threads)
        self._gpus = 1 if _wants_gpu(config.accelerator) else 0
        most = max((_node_cpus(node_id=n["NodeID"]) for n in ray.nodes() if n.get("Alive")),
                   default=0.0)  # fmt: skip
        if most < self._cpus:
            raise UserError(
                f"--torch-threads {self._cpus} asks each task for more CPUs than any node "
                f"of the Ray cluster has ({most:g}); lower it"
            )
        resources: dict[str, Any] = {"num_cpus": self._cpus}
        if self._gpus:
            # One task per worker process: torch keeps the GPU it first used, and Ray
            # may give a reused worker another one.
            resources.update(num_gpus=1, max_calls=1)
        self._config = ray.put(_worker_config(config, gpu=bool(self._gpus)))
        self._task = ray.remote(_evaluate).options(
            max_retries=TASK_RETRIES,
            retry_exceptions=False,
            runtime_env=WORKER_RUNTIME_ENV,
            **resources,
        )

    def _slots(self) -> int:
        """Tasks that can run at once now (at least one, at most ``width``)."""
        import ray

        free = ray.available_resources()
        slots = int(free.get("CPU", 0) // self._cpus)
        if self._gpus:
            slots = min(slots, int(free.get("GPU", 0)))
        return max(1, min(self.width, slots))

    def map(self, method: str, genotypes: Sequence[str]) -> list[Any]:
        return list(self.imap(method, genotypes))

    def imap(self, method: str, genotypes: Sequence[str]) -> Iterator[Any]:
        """Results in input order; tasks are refilled as any of them finishes (a slow
        one never idles the others), each cancelled once past its own deadline."""
        import ray

        check_method(method)
        # A training with a latency target measures the trained network on the device.
        measures = method == "train" and self.config.target_latency_ms is not None
        actor = self.session.actor() if measures and self.session is not None else None
        timeout = task_timeout(self.config, method)
        limit = self._slots()
        todo = deque(enumerate(genotypes))
        flight: dict[Any, tuple[int, str, float]] = {}
        done: dict[int, Any] = {}
        next_index = 0
        while todo or flight or next_index in done:
            while todo and len(flight) < limit:
                index, genotype = todo.popleft()
                ref = self._task.remote(self._config, actor, self._make, method, genotype)
                self._pending.add(ref)
                flight[ref] = (index, genotype, time.monotonic() + timeout)
            while next_index in done:  # in input order, as soon as the next one is in
                yield done.pop(next_index)
                next_index += 1
            if not flight:
                continue
            wait_s = max(
                0.0, min(deadline for _i, _g, deadline in flight.values()) - time.monotonic()
            )
            ready, _running = ray.wait(list(flight), num_returns=1, timeout=wait_s)
            now = time.monotonic()
            for ref in list(flight):
                index, genotype, deadline = flight[ref]
                if ref in ready:
                    done[index] = self._result(ref, genotype)
                elif now >= deadline:
                    ray.cancel(ref, force=True)
                    done[index] = FailedEvaluation(
                        genotype, f"cancelled after {timeout:g} s (stuck)"
                    )
                else:
                    continue
                del flight[ref]
                self._pending.discard(ref)

    def _result(self, ref, genotype: str):
        """A finished task's value: the evaluation's own error is raised as inline; a
        failure of Ray's (a worker or node lost past the retries, out of memory, a
        device actor gone, a task Ray cannot place) is a FailedEvaluation."""
        import ray
        from ray import exceptions

        try:
            return ray.get(ref)
        except exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception) and not isinstance(cause, exceptions.RayError):
                raise cause from None
            return FailedEvaluation(genotype, _one_line(cause or err))
        except exceptions.RayError as err:
            return FailedEvaluation(genotype, _one_line(err))

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


def _wants_gpu(accelerator: str | None) -> bool:
    """Whether trainings run on a GPU: ``cuda[:N]``, or ``auto`` on a cluster with GPUs
    (Ray must then give each task its own, or all would use the first)."""
    import ray

    name = (accelerator or "auto").lower()
    if name.startswith("cuda"):
        return True
    return name == "auto" and ray.cluster_resources().get("GPU", 0) > 0


def _worker_config(config: SearchConfig, *, gpu: bool) -> dict:
    """The config a worker builds its evaluator from: data folders made absolute (a
    worker's working directory need not be the driver's), and ``cpu`` training when
    the task holds no GPU (else torch's "auto" would take one Ray did not give it)."""
    values = config.to_dict()
    for key in ("data", "val_data"):
        if values.get(key):
            values[key] = str(Path(values[key]).expanduser().absolute())
    values["accelerator"] = "cuda" if gpu else "cpu"
    return values


def _one_line(err: BaseException) -> str:
    """``Type: first line`` of an error, for a failed candidate's reason."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
