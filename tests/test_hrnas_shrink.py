"""Progressive shrinking on tiny data, and the latency cost through the device table."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from edgenas.hrnas.arch import build_architecture
from edgenas.hrnas.costs import LatencyCoster, blocks_latency, count_hrnas_macs, flops_costs
from edgenas.hrnas.extract import select_units, shrink_model
from edgenas.hrnas.shrink import ShrinkConfig, load_shrink_state, run_shrink
from edgenas.hrnas.supernet import HRSupernet, SupernetConfig

TINY = SupernetConfig(widths=(4, 8), branches=(1, 2), tokens=2, token_size=4, head_channels=8)
SHAPE = (1, 3, 32, 40)


class _Few(torch.utils.data.Dataset):
    """The first ``n`` items of a dataset, keeping its ``info``."""

    def __init__(self, data, n: int) -> None:
        self.data, self.n, self.info = data, n, data.info

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return self.data[i]


def _data():
    from edgenas.tasks import get_task

    task = get_task("seg")
    train = task.dataset(None, "train", size=SHAPE[2:])
    val = task.dataset(None, "val", size=SHAPE[2:])
    return task, _Few(train, 32), _Few(val, 8)


def test_shrinking_removes_units_physically_and_records_every_step():
    task, train, val = _data()
    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=train.info.num_classes)
    config = ShrinkConfig(
        lam=0.05,
        epsilon=0.05,
        epochs=3,
        warmup_epochs=0.5,
        batch_size=8,
        alpha_lr_mult=200,
        align=1,
        shrink_every=1,
    )
    seen = []
    result = run_shrink(
        model,
        task,
        train,
        val,
        config,
        input_shape=SHAPE,
        cost_fn=lambda m: flops_costs(m, SHAPE),
        on_step=lambda step, m: seen.append((step, count_hrnas_macs(m, SHAPE))),
    )
    assert [s.step for s in result.steps] == [0, 1, 2, 3] and len(seen) == 4
    assert result.steps[0].removed_total == 0
    removed = sum(s.removed_total for s in result.steps)
    assert removed > 0
    macs = [s.macs for s in result.steps]
    assert macs == [m for _, m in seen]  # the recorded MACs are the model's at that step
    assert all(a >= b for a, b in itertools.pairwise(macs)) and macs[-1] < macs[0]
    units = [sum(sum(u.values()) for u in s.units.values()) for s in result.steps]
    assert units[0] - units[-1] == removed
    # every surviving importance is at least epsilon at the last shrink
    for _, block in model.blocks():
        for k in block.present_kernels():
            assert float(block.channel_importance(k).detach().abs().min()) >= config.epsilon
    assert model(torch.rand(1, 3, 32, 40)).shape == (1, train.info.num_classes, 32, 40)
    assert "miou" in result.steps[-1].metrics


RESUMABLE = ShrinkConfig(
    lam=0.05,
    epsilon=0.05,
    epochs=3,
    warmup_epochs=0.5,
    batch_size=8,
    alpha_lr_mult=200,
    align=1,
    shrink_every=1,
)


def _shrink_tiny(train, val, task, model=None, config=RESUMABLE, **kwargs):
    if model is None:
        torch.manual_seed(0)
        model = HRSupernet(TINY, "seg", num_classes=train.info.num_classes)
    result = run_shrink(
        model,
        task,
        train,
        val,
        config,
        input_shape=SHAPE,
        cost_fn=lambda m: flops_costs(m, SHAPE),
        **kwargs,
    )
    return model, result


class _Interrupt:
    """Raises KeyboardInterrupt (what Ctrl-C raises) at the n-th call, like a user
    pressing Ctrl-C at that point of the run."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, *args) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer", ["fast", "ldp"])
@pytest.mark.parametrize(
    "where",
    [
        "mid-epoch",  # Ctrl-C after batch 2 of 4 of the first epoch
        "after-shrink-step",  # Ctrl-C right after shrink step 1 was saved and reported
    ],
)
def test_interrupted_shrinking_resumes_to_the_uninterrupted_result(tmp_path, where, optimizer):
    import functools

    task, train, val = _data()
    config = dataclasses.replace(RESUMABLE, optimizer=optimizer, lr=None)
    shrink_tiny = functools.partial(_shrink_tiny, config=config)
    full_model, full = shrink_tiny(train, val, task, state_path=tmp_path / "full.pt")
    assert load_shrink_state(tmp_path / "full.pt")["finished"]

    path = tmp_path / "state.pt"
    hook = {"progress": _Interrupt(2)} if where == "mid-epoch" else {"on_step": _Interrupt(2)}
    with pytest.raises(KeyboardInterrupt):
        shrink_tiny(train, val, task, state_path=path, **hook)
    state = load_shrink_state(path)
    assert not state["finished"]
    assert (state["epoch"], state["batch"]) == ((0, 2) if where == "mid-epoch" else (1, 0))
    # A fresh process knows only the file: rebuild the shrunk network from it.
    model = build_architecture(state["architecture"], TINY, state["task"], **state["options"])
    seen = []
    model, resumed = shrink_tiny(
        train, val, task, model, state_path=path, resume=state,
        on_step=lambda step, _m: seen.append(step.step),
    )  # fmt: skip

    assert seen == ([1, 2, 3] if where == "mid-epoch" else [2, 3])  # only the new steps
    assert [s.step for s in resumed.steps] == [s.step for s in full.steps] == [0, 1, 2, 3]
    assert resumed.epochs == full.epochs == 3
    assert resumed.batches == full.batches == 3 * len(train) // 8
    assert len(resumed.epoch_seconds) == 3
    assert [s.units for s in resumed.steps] == [s.units for s in full.steps]
    assert [s.macs for s in resumed.steps] == [s.macs for s in full.steps]
    model.eval()
    full_model.eval()
    x = torch.rand(2, *SHAPE[1:])
    torch.testing.assert_close(model(x), full_model(x), rtol=1e-4, atol=1e-4)
    # A finished state is the end: resuming it again trains nothing.
    again = load_shrink_state(path)
    assert again["finished"]
    model = build_architecture(again["architecture"], TINY, "seg", **again["options"])
    _, same = shrink_tiny(train, val, task, model, resume=again, on_step=_Interrupt(1))
    assert [s.step for s in same.steps] == [0, 1, 2, 3] and same.batches == full.batches


def test_a_foreign_file_is_not_a_shrinking_state(tmp_path):
    from edgenas.errors import UserError

    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(UserError, match="not a shrinking state"):
        load_shrink_state(tmp_path / "x.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_shrink_state(tmp_path / "missing.pt")


def test_latency_costs_are_measured_once_into_the_device_table(tmp_path):
    from edgenas.devices.protocol import Protocol

    from edgenas.latency_table import Measurer

    quick = Protocol(warmup_runs=1, warmup_min_s=0.0, runs=3, sessions=1)
    measurer = Measurer("cpu", threads=1, table_path=tmp_path / "t.json", part_protocol=quick)
    try:
        model = HRSupernet(TINY, "seg", num_classes=3)
        coster = LatencyCoster(measurer, SHAPE)
        costs = coster.costs(model)
        assert set(costs) == {name for name, _ in model.blocks()}
        for entry in costs.values():
            assert all(v > 0 for k, v in entry.items() if k != "tokens")
        assert costs["p0.b0.0"]["tokens"] > 0 and costs["f0.r01"]["tokens"] == 0
        keys = set(measurer.table.entries)
        assert any(k.startswith("hrnas-branch|k7|4>8>8|s2|4x8x10") for k in keys)
        assert any(k.startswith("hrnas-tf|") for k in keys)
        measured = measurer.measured_parts
        assert coster.costs(model) == costs  # cached: nothing measured again
        assert measurer.measured_parts == measured
        assert (tmp_path / "t.json").is_file()

        whole = blocks_latency(coster, model)
        assert whole > 0 and blocks_latency(coster, model) == whole
        with torch.no_grad():  # empty a residual block: it becomes the identity, 0 ms
            block = dict(model.blocks())["p1.b0.0"]
            for k in block.kernels:
                block.channel_importance(k).zero_()
            block.transformer.importance.zero_()
        shrink_model(model, select_units(model, 0.5))
        assert dict(model.blocks())["p1.b0.0"].empty
        assert blocks_latency(coster, model) < whole
    finally:
        measurer.close()


class _RecordingTask:
    """The task, recording the class weights each loss call gets."""

    def __init__(self, task) -> None:
        self.task, self.weights = task, []

    def __getattr__(self, name):
        return getattr(self.task, name)

    def loss(self, pred, target, info, **options):
        self.weights.append(options.get("weights"))
        return self.task.loss(pred, target, info, **options)


def test_fast_recipe_trains_like_edgenas_train(tmp_path):
    """``optimizer="fast"`` is the training recipe the baselines get: Adam at 3e-3
    (importances x12), warm-up then cosine over the budget set per batch, and the
    segmentation loss weighted by median-frequency balancing of the training labels."""
    from edgenas.hrnas.shrink import _Shrinker, make_optimizer
    from edgenas.schedules import cosine_factor
    from edgenas.tasks.recipes import recipe_config
    from edgenas.training import median_frequency_weights

    task, train, val = _data()
    config = ShrinkConfig(optimizer="fast", lam=0.05, epsilon=0.05, epochs=2, batch_size=8,
                          align=1, shrink_every=1)  # fmt: skip
    from edgenas.hrnas.shrink import learning_rate

    # The task's rate of `edgenas train` unless --lr is given.
    assert config.lr is None and config.alpha_lr_mult == 12.0
    assert learning_rate(config, "segmentation") == recipe_config("segmentation").lr == 3e-3
    assert learning_rate(config, "depth") == recipe_config("depth").lr == 2e-3
    assert learning_rate(ShrinkConfig(optimizer="fast", lr=1e-3), "depth") == 1e-3
    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=train.info.num_classes)
    optimizer = make_optimizer(model, config)
    assert type(optimizer) is torch.optim.Adam
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([3e-3, 3e-3 * 12])

    shrinker = _Shrinker(model, task, train, val, config, input_shape=SHAPE,
                         cost_fn=lambda m: flops_costs(m, SHAPE), measure_fn=None,
                         blocks_ms_fn=None, on_step=None, progress=None, state_path=None)  # fmt: skip
    labels = torch.stack([train[i][1].reshape(-1) for i in range(len(train))]).long()
    classes = train.info.num_classes
    valid = labels < classes
    counts = torch.stack([torch.bincount(row[ok], minlength=classes)
                          for row, ok in zip(labels, valid, strict=True)])  # fmt: skip
    expected = median_frequency_weights(counts, valid.sum(1))
    assert expected.max() > 2 * expected.min()  # the demo classes are imbalanced
    torch.testing.assert_close(shrinker.loss_options["weights"], expected)

    # Every training step's loss is the weighted one (and never with ldp).
    for optimizer, weighted in (("fast", True), ("ldp", False)):
        recording = _RecordingTask(task)
        one_epoch = ShrinkConfig(optimizer=optimizer, epochs=1, batch_size=8, align=1)
        run_shrink(HRSupernet(TINY, "seg", num_classes=classes), recording, train, val,
                   one_epoch, input_shape=SHAPE, cost_fn=lambda m: flops_costs(m, SHAPE))  # fmt: skip
        assert len(recording.weights) >= len(train) // 8  # training steps (+ nothing else)
        for used in recording.weights:
            if weighted:
                torch.testing.assert_close(used, expected)
            else:
                assert used is None

    # Ctrl-C after the second batch of the second epoch: the saved optimiser holds the
    # rate that batch trained with.
    path = tmp_path / "state.pt"
    steps = len(train) // 8
    with pytest.raises(KeyboardInterrupt):
        run_shrink(model, task, train, val, config, input_shape=SHAPE,
                   cost_fn=lambda m: flops_costs(m, SHAPE), state_path=path,
                   progress=_Interrupt(steps + 2))  # fmt: skip
    groups = load_shrink_state(path)["optimizer"]["param_groups"]
    warmup = recipe_config("segmentation").warmup
    rate = 3e-3 * cosine_factor((1 + 1 / steps) / config.epochs, warmup)
    assert [g["lr"] for g in groups] == pytest.approx([rate, rate * 12])
    assert rate < 3e-3 * 0.6  # past the middle of the cosine


class _FakeClock:
    """A CPU clock that advances one second per reading."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return float(self.calls)


def test_a_seconds_budget_counts_the_cpu_clock(monkeypatch):
    """clock="cpu" (the default): the budget is read from the training thread's CPU
    time, so a run ends when that clock, not the wall clock, has spent the seconds;
    clock="wall" never reads it."""
    import time

    task, train, val = _data()
    fake = _FakeClock()
    monkeypatch.setattr(time, "thread_time", fake)
    budget = dataclasses.replace(RESUMABLE, epochs=None, seconds=6.0)
    assert budget.clock == "cpu"
    _, result = _shrink_tiny(train, val, task, config=budget)
    assert fake.calls > 0
    # About two readings a batch: the run stops within a few batches, although the
    # wall clock would allow many epochs of this tiny data in 6 s.
    assert 6.0 <= result.train_seconds <= 8.0
    assert 1 <= result.batches <= 6 and result.epochs == 1
    fake.calls = 0
    wall = dataclasses.replace(RESUMABLE, epochs=1, seconds=600.0, clock="wall")
    _, result = _shrink_tiny(train, val, task, config=wall)
    assert fake.calls == 0 and result.batches == 4  # 32 images, batches of 8


def test_clock_is_validated():
    with pytest.raises(ValueError, match="clock must be one of wall, cpu"):
        ShrinkConfig(clock="sundial")
