"""A search's latency measurements are paired with a reference network, so load on a
shared host does not decide which candidate looks faster."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgenas.search.latency import PAIRED_ROUNDS, LatencyService, LatencySetup


class Net(nn.Module):
    """A small network whose true latency on the fake device is ``true_ms``."""

    def __init__(self, true_ms: float, width: int) -> None:
        super().__init__()
        self.true_ms = true_ms
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def fake_device(setup: LatencySetup, tmp_path, monkeypatch) -> LatencyService:
    """A service on the host whose device readings are ``true_ms * load``: ``load`` is a
    list the test sets, one factor per reading (the device itself is not under test).
    A network without ``true_ms`` (a reference model) reads :data:`REFERENCE_MODEL_MS`."""
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))
    service = LatencyService(setup)
    measurer = service.measurer
    true_ms, readings = {}, []
    export = measurer.network_file

    def network_file(model, shape):
        path = export(model, shape)
        true_ms[path] = getattr(model, "true_ms", REFERENCE_MODEL_MS)
        readings.append((path, "exported", model))
        return path

    def measure_file(path, protocol=None):
        factor = service.load.pop(0)
        readings.append((path, factor))
        return true_ms[path] * factor

    monkeypatch.setattr(measurer, "network_file", network_file)
    monkeypatch.setattr(measurer, "measure_file", measure_file)
    service.readings = readings
    return service


REFERENCE_MODEL_MS = 3.0


@pytest.fixture
def service(tmp_path, monkeypatch):
    service = fake_device(LatencySetup("cpu", 1, "seg", (1, 3, 16, 16)), tmp_path, monkeypatch)
    yield service
    service.close()


def _measured(service) -> list:
    return [reading for reading in service.readings if reading[1] != "exported"]


REFERENCE_SESSIONS = 2 * PAIRED_ROUNDS + 1
PAIRED_SESSIONS = 2 * PAIRED_ROUNDS + 1


def test_a_network_measured_under_sustained_load_keeps_its_true_ratio(service):
    service.load = [1.0] * REFERENCE_SESSIONS
    assert service.paired(Net(2.0, 4)) == pytest.approx(2.0)  # the reference
    # The host is twice as busy for the whole next measurement: one absolute reading
    # would say 8 ms; paired with the reference it reads its true 4 ms.
    service.load = [2.0] * PAIRED_SESSIONS
    assert service.paired(Net(4.0, 8)) == pytest.approx(4.0)
    # Sessions alternate: reference, network, reference, network, ..., reference.
    paths = [path for path, _factor in _measured(service)[REFERENCE_SESSIONS:]]
    reference = service.reference.path
    assert paths[0::2] == [reference] * (PAIRED_ROUNDS + 1)
    assert reference not in paths[1::2]
    assert not paths[1].exists()  # the candidate's file is deleted, the reference kept
    assert reference.exists()


def test_a_brief_spike_on_one_session_does_not_move_the_reading(service):
    service.load = [1.0] * REFERENCE_SESSIONS
    service.paired(Net(2.0, 4))
    # The network's first session is slow (3x), then a later reference session (2x):
    # one absolute reading would say 9 ms; the median of the rounds' ratios is right.
    service.load = [1.0, 3.0, 1.0, 1.0, 2.0, 1.0, 1.0]
    assert service.paired(Net(3.0, 6)) == pytest.approx(3.0)
    # Two busy reference sessions in the middle: each round has a quiet one next to it
    # but the middle round. The faster of the two around each round gives 1.5, 0.75,
    # 1.5 (median right); the earlier one, the later one or their mean would not.
    service.load = [1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0]
    assert service.paired(Net(3.0, 6)) == pytest.approx(3.0)


def test_the_reference_keeps_one_scale_for_the_whole_run(service):
    # The reference's sessions were partly busy: it reads at its fastest session, and
    # every later network is on that one scale, whatever the load of its own turn.
    service.load = [2.0, 1.5, 1.0, 2.0, 2.0, 1.2, 3.0]
    assert service.paired(Net(2.0, 4)) == pytest.approx(2.0)
    for load in (1.0, 1.7, 2.5):
        service.load = [load] * PAIRED_SESSIONS
        assert service.paired(Net(5.0, 8)) == pytest.approx(5.0)
    assert service.reference.latency_ms == pytest.approx(2.0)


def test_a_failed_session_leaves_no_file_behind(service):
    service.load = [1.0] * REFERENCE_SESSIONS
    service.paired(Net(2.0, 4))
    service.load = [1.0]  # the device fails on the network's first session
    with pytest.raises(IndexError):
        service.paired(Net(3.0, 6))
    folder = service.reference.path.parent
    assert sorted(p.name for p in folder.iterdir()) == [service.reference.path.name]
    service.close()
    assert service.reference is None


def test_the_measurement_the_search_stores_is_the_paired_one(service, monkeypatch):
    learned = []
    monkeypatch.setattr(service.measurer, "learn", lambda *args: learned.append(args[-1]))
    service.load = [1.0] * REFERENCE_SESSIONS
    service.measured("a", Net(2.0, 4))
    service.load = [2.0] * PAIRED_SESSIONS
    assert service.measured("b", Net(4.0, 8)) == pytest.approx(4.0)
    assert learned == pytest.approx([2.0, 4.0])  # the predictor learns the same value


def _unet_setup(**known) -> LatencySetup:
    return LatencySetup(
        "cpu", 1, "segmentation", (1, 3, 16, 16), {"num_classes": 5}, reference_model="unet",
        **known,
    )  # fmt: skip


def test_a_named_reference_model_is_the_scale_of_every_measurement(tmp_path, monkeypatch):
    service = fake_device(_unet_setup(), tmp_path, monkeypatch)
    try:
        # The first network measured does not become the reference: the U-Net does,
        # measured first at its fastest session, and the network reads against it
        # under twice the load (as the reference it would have read 4 ms).
        service.load = [1.5, 1.0, 1.2, 1.0, 1.1, 1.3, 1.0] + [2.0] * PAIRED_SESSIONS
        assert service.paired(Net(2.0, 4)) == pytest.approx(2.0)
        assert service.reference_latency() == pytest.approx(REFERENCE_MODEL_MS)
        reference = service.readings[0][2]
        assert reference.reference == "unet" and not reference.training
        assert reference.options["num_classes"] == 5  # the run's head
        assert not service.load
    finally:
        service.close()


def test_a_reference_latency_already_measured_is_kept(tmp_path, monkeypatch):
    # A resumed run (or another worker) knows the target: the reference is exported,
    # not measured again, and networks are on the stored scale.
    service = fake_device(_unet_setup(reference_latency_ms=3.3), tmp_path, monkeypatch)
    try:
        service.load = []
        assert service.reference_latency() == pytest.approx(3.3)
        service.load = [1.0] * PAIRED_SESSIONS
        assert service.paired(Net(2.0, 4)) == pytest.approx(2.0 / REFERENCE_MODEL_MS * 3.3)
    finally:
        service.close()


def test_a_setup_without_a_reference_model_has_no_reference_latency(service):
    with pytest.raises(ValueError, match="no reference model"):
        service.reference_latency()


def test_the_final_networks_paired_timing_does_not_teach_the_predictor_twice(tmp_path, monkeypatch):
    """The final genotype was learned when the search trained it; timing it again for
    the report must not add a second record of it to the shared table."""
    from edgenas.tasks.defaults import default_genotype

    service = fake_device(_unet_setup(reference_latency_ms=3.3), tmp_path, monkeypatch)
    learned = []
    monkeypatch.setattr(service.measurer, "learn", lambda *args: learned.append(args[0]))
    try:
        service.load = [1.0] * PAIRED_SESSIONS
        # A genotype's network has no true_ms, so it reads as the reference does.
        assert service.paired_network(default_genotype("seg")) == pytest.approx(3.3)
        assert learned == [] and not service.load
        service.load = [1.0] * PAIRED_SESSIONS
        service.measured("searched", Net(2.0, 4))  # a candidate's measurement does learn
        assert learned == ["searched"]
    finally:
        service.close()
