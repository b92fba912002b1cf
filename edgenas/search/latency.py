"""Latency of genotypes on the run's device, for the search and its final model.

:class:`LatencyService` is everything the search asks the device: a genotype's latency
predicted (lookup table or kernel model), its whole network measured, and a finished
ONNX file profiled. It needs only the device and the network's shape (task, head
options, deploy input), never the data, so it can live where the device is: in the
search process, or in a Ray actor on the machine the phone is plugged into
(:mod:`edgenas.search.ray_executor`), which then serialises every measurement.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgenas.devices.protocol import Protocol

PAIRED_PROTOCOL = Protocol(warmup_runs=3, warmup_min_s=0.1, runs=15, sessions=1)
"""One session of a candidate or the reference network in a paired measurement."""

PAIRED_ROUNDS = 3
"""Sessions of the candidate per paired measurement, each bracketed by sessions of the
reference (reference, candidate, reference, ..., candidate, reference); the median of
the rounds' ratios ignores one busy session."""


def paired_sessions(
    measurer,
    reference: Path,
    network: Path,
    rounds: int = PAIRED_ROUNDS,
    protocol: Protocol = PAIRED_PROTOCOL,
) -> tuple[list[float], list[float]]:
    """The sessions of one paired measurement, ``(reference, network)``: ``rounds + 1``
    single sessions of the reference file around ``rounds`` of the network file,
    alternating, reference first and last."""
    reference_ms = [measurer.measure_file(reference, protocol)]
    network_ms = []
    for _ in range(rounds):
        network_ms.append(measurer.measure_file(network, protocol))
        reference_ms.append(measurer.measure_file(reference, protocol))
    return reference_ms, network_ms


def paired_ratio(reference_ms: list[float], network_ms: list[float]) -> float:
    """The network's latency as a ratio to the reference's: for each round its session
    over the faster of the two reference sessions around it; the median of the rounds
    (one busy session does not move it)."""
    return statistics.median(
        network / min(reference_ms[i], reference_ms[i + 1]) for i, network in enumerate(network_ms)
    )


@dataclass(frozen=True)
class LatencySetup:
    """What a :class:`LatencyService` needs: plain values, sent to a remote actor as is."""

    device: str
    threads: int | None
    task: str
    deploy_shape: tuple[int, ...]
    task_options: dict[str, Any] = field(default_factory=dict)
    # A reference model (edgenas.models.reference, e.g. "unet") that every measurement is
    # paired with, instead of the first network measured; with its latency once known
    # (ms), so that a resumed run or another worker stays on the same scale.
    reference_model: str | None = None
    reference_latency_ms: float | None = None


@dataclass(frozen=True)
class ReferenceNetwork:
    """The network every later measurement of a search process is paired with: its
    exported file and its latency, fixed when it became the reference (ms)."""

    path: Path
    latency_ms: float


class LatencyService:
    """Predicts and measures genotypes' latency on one device (one shared measurer)."""

    def __init__(self, setup: LatencySetup) -> None:
        self.setup = setup
        self._measurer = None
        self.reference: ReferenceNetwork | None = None

    @property
    def measurer(self):
        """The device measurer (created on first use: it may probe hardware)."""
        if self._measurer is None:
            from edgenas.latency_table import Measurer

            self._measurer = Measurer(self.setup.device, threads=self.setup.threads)
        return self._measurer

    def _network(self, genotype: str):
        from edgenas.latency_table import timing_model
        from edgenas.space import decode

        return timing_model(decode(genotype), self.setup.task, self.setup.task_options)

    def predicted(self, genotype: str) -> float:
        """Latency predicted from the device's lookup table or kernel model (a table
        prediction first measures the parts it has not seen)."""
        from edgenas.latency_table import predict_latency
        from edgenas.space import decode

        setup = self.setup
        return predict_latency(
            decode(genotype),
            setup.task,
            setup.deploy_shape,
            self.measurer,
            task_options=setup.task_options,
        )

    def network(self, genotype: str) -> float:
        """The whole network measured on the device, without touching the predictor."""
        return self.measurer.measure_network(self._network(genotype), self.setup.deploy_shape)

    def paired_network(self, genotype: str) -> float:
        """The whole network timed alternating with the reference (:meth:`paired`),
        without teaching the predictor: for a network the search already learned from
        (the final genotype), a second record would weigh it twice."""
        return self.paired(self._network(genotype).eval())

    def measured(self, genotype: str, model=None) -> float:
        """Whole-network latency measured on the device, paired with a reference network
        (:meth:`paired`); it also calibrates the predictor, so predictions for later
        children improve as the search goes. ``model``: the genotype's network if
        already built (weights do not matter)."""
        model = (model if model is not None else self._network(genotype)).eval()
        latency = self.paired(model)
        self.measurer.learn(genotype, model, self.setup.deploy_shape, latency)
        return latency

    def reference_latency(self) -> float:
        """The latency of the setup's ``reference_model`` (``--target-latency unet``):
        measured as the reference of every later paired measurement (the fastest of
        ``2 * PAIRED_ROUNDS + 1`` sessions), or the setup's ``reference_latency_ms``
        when the run already measured it."""
        if self.setup.reference_model is None:
            raise ValueError("this latency setup names no reference model")
        if self.reference is None:
            self._adopt_reference(self._reference_network(), self.setup.reference_latency_ms)
        return self.reference.latency_ms

    def _reference_network(self):
        """The setup's reference model with the run's head options, in eval mode."""
        import torch

        from edgenas.models.reference import REFERENCE_MODELS, build_reference

        name = self.setup.reference_model
        defaults = REFERENCE_MODELS[name].defaults
        options = {k: v for k, v in self.setup.task_options.items() if k in defaults}
        torch.manual_seed(0)  # the same file from run to run, as timing_model does
        return build_reference(name, self.setup.task, **options).eval()

    def _adopt_reference(self, model, latency_ms: float | None) -> None:
        """Make ``model`` the reference: export it and fix its latency (``latency_ms``,
        or the fastest of ``2 * PAIRED_ROUNDS + 1`` single sessions)."""
        measurer = self.measurer
        path = measurer.network_file(model, self.setup.deploy_shape)
        if latency_ms is None:
            sessions = [
                measurer.measure_file(path, PAIRED_PROTOCOL) for _ in range(2 * PAIRED_ROUNDS + 1)
            ]
            latency_ms = min(sessions)
        self.reference = ReferenceNetwork(path, latency_ms)

    def paired(self, model) -> float:
        """``model``'s latency measured against this process's reference network.

        The reference is the setup's ``reference_model`` when it names one (then every
        latency of the run is a ratio to that model's, in its milliseconds), else the
        first network measured. A new reference runs ``2 * PAIRED_ROUNDS
        + 1`` single sessions and its latency is the fastest of them, fixed for the rest
        of the run (load only ever slows a reading, so the fastest is the closest to the
        device's own speed, like a target set on a quiet device). Every later network
        runs in single sessions alternating with the reference (reference, network,
        reference, ...); each round's ratio is the network's session over the faster of
        the two reference sessions around it, and its latency is the median ratio times
        the reference's latency. Load on a shared host slows both networks of a round
        alike, so the ratio holds where one absolute reading can be off by half
        (docs/search.md, "Latency during a search"), and every network of the run is
        on the reference's one scale.
        """
        if self.reference is None and self.setup.reference_model is not None:
            self.reference_latency()
        measurer = self.measurer
        path = measurer.network_file(model, self.setup.deploy_shape)
        try:
            if self.reference is None:
                self._adopt_reference(model, None)
                return self.reference.latency_ms
            sessions = paired_sessions(measurer, self.reference.path, path)
            return paired_ratio(*sessions) * self.reference.latency_ms
        finally:
            if self.reference is None or path != self.reference.path:
                path.unlink(missing_ok=True)  # a candidate's file; the reference's stays

    def profile(self, onnx_path: str | Path, input_shapes: dict[str, tuple[int, ...]]):
        """A finished ONNX file profiled on the device with the default protocol:
        the :class:`~edgenas.devices.result.LatencyResult` (the final model's)."""
        from edgenas.devices.profile import profile_model
        from edgenas.devices.protocol import Protocol

        return profile_model(
            onnx_path, self.setup.device, Protocol(), threads=self.setup.threads,
            input_shapes=input_shapes,
        )  # fmt: skip

    def close(self) -> None:
        """Release the device and the measurer's temporary files."""
        if self._measurer is not None:
            self._measurer.close()
            self._measurer = None
        self.reference = None  # its file was in the measurer's folder
