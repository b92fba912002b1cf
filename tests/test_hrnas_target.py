"""Shrinking to a budget (``--target-flops`` / ``--target-latency``): lambda's controller
on synthetic cost sequences, the bisection that stops at the target, a whole tiny run
that ends at its MAC target and stops pruning there, and the official optimiser's
schedule against torch's OneCycleLR."""

from __future__ import annotations

import pytest
import torch

from edgenas.errors import UserError
from edgenas.hrnas.costs import count_hrnas_macs, flops_costs
from edgenas.hrnas.shrink import ShrinkConfig, one_cycle, run_shrink
from edgenas.hrnas.supernet import HRSupernet, SupernetConfig
from edgenas.hrnas.target import (
    LambdaController,
    TargetCost,
    check_reachable,
    select_to_target,
    shrunk_copy,
)

TINY = SupernetConfig(widths=(4, 8), branches=(1, 2), tokens=2, token_size=4, head_channels=8)
SHAPE = (1, 3, 32, 40)


def _controller(**kw) -> LambdaController:
    return LambdaController(target=100.0, lam=0.01, **kw)


def test_controller_raises_lambda_far_above_the_target_and_caps_it():
    c = _controller(lam_max=0.05)
    lams = [c.update(projected, 200.0) for projected in (300, 200, 126, 125.1)]
    assert lams == [0.02, 0.04, 0.05, 0.05]  # x2 while more than 25% above, capped


def test_controller_holds_near_lowers_when_reachable_and_stops_at_the_target():
    c = _controller(lam_min=0.004)
    assert c.update(120.0, 150.0) == 0.01  # within 25% above: unchanged
    assert c.update(100.0, 150.0) == 0.005  # the next shrink reaches it: halved
    assert c.update(90.0, 150.0) == 0.004  # never below lam_min while not reached
    assert c.update(90.0, 100.0) == 0.0 and c.reached  # reached: pruning stops
    assert c.update(500.0, 500.0) == 0.0  # and stays stopped


def test_controller_state_round_trips():
    c = _controller()
    c.update(300.0, 300.0)
    d = _controller()
    d.load_state_dict(c.state_dict())
    assert (d.lam, d.reached) == (c.lam, c.reached) == (0.02, False)


def _model():
    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=3)
    with torch.no_grad():  # spread importances so that thresholds separate units
        for p in (*(b.channel_importance(k) for _, b in model.blocks() for k in b.kernels
                    if b.splits[k]), *(b.transformer.importance for _, b in model.blocks()
                                       if b.transformer is not None)):  # fmt: skip
            p.copy_(torch.rand(p.shape))
    return model


def test_select_to_target_removes_the_fewest_units_that_meet_it():
    model = _model()
    cost = TargetCost("flops", 0.0, SHAPE)
    full = cost.now(model)
    target = 0.8 * full
    threshold, predicted = select_to_target(model, cost.predict, target, 0.5, 1)
    assert predicted == cost.now(shrunk_copy(model, threshold, 1)) <= target
    lower = max(v for v in _levels(model) if v < threshold)  # one unit fewer removed
    assert cost.now(shrunk_copy(model, lower, 1)) > target
    # Without force, units above epsilon stay even if the target needs them gone ...
    eps_only, at_eps = select_to_target(model, cost.predict, 0.1 * full, 0.3, 1)
    assert eps_only == 0.3 and at_eps > 0.1 * full
    # ... with force they go, down to the target.
    forced, at_forced = select_to_target(model, cost.predict, 0.5 * full, 0.3, 1, force=True)
    assert forced > 0.3 and at_forced <= 0.5 * full


def test_a_busy_moment_read_as_above_the_target_is_measured_again():
    """Load only slows a measurement down: the first reading of every selection is 1.6x
    its cost (a busy moment), the next one true. Believed at once, the false "above"
    readings send the bisection past the target; re-measured, it lands where a quiet
    measurement would."""
    model = _model()
    exact = TargetCost("flops", 0.0, SHAPE)
    full = exact.now(model)
    target = 0.6 * full
    seen: dict[float, int] = {}

    def busy_first(network) -> float:
        macs = exact.predict(network)
        seen[macs] = seen.get(macs, 0) + 1
        return 1.6 * macs if seen[macs] == 1 else macs

    quiet, _ = select_to_target(model, exact.predict, target, 0.3, 1, force=True)
    rechecked, cost = select_to_target(model, busy_first, target, 0.3, 1, force=True, recheck=True)
    assert rechecked == quiet and cost <= target
    seen.clear()
    believed, _ = select_to_target(model, busy_first, target, 0.3, 1, force=True)
    assert believed > quiet  # more units removed than the target needs
    assert exact.now(shrunk_copy(model, believed, 1)) < exact.now(shrunk_copy(model, quiet, 1))


def _levels(model):
    from edgenas.hrnas.target import importance_levels

    return importance_levels(model)


def test_unreachable_and_already_met_targets_are_one_line_errors():
    model = _model()
    full, least = check_reachable(TargetCost("flops", 3e5, SHAPE), model, 1)
    assert least < 3e5 < full
    with pytest.raises(UserError, match="already met by the unshrunk supernet"):
        check_reachable(TargetCost("flops", 2 * full, SHAPE), model, 1)
    with pytest.raises(UserError, match=r"cannot be reached.*smallest network"):
        check_reachable(TargetCost("flops", least / 2, SHAPE), model, 1)


class _Few(torch.utils.data.Dataset):
    def __init__(self, data, n: int) -> None:
        self.data, self.n, self.info = data, n, data.info

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return self.data[i]


def test_target_flops_run_ends_within_10_percent_and_stops_pruning_there():
    from edgenas.tasks import get_task

    task = get_task("seg")
    train = _Few(task.dataset(None, "train", size=SHAPE[2:]), 32)
    val = _Few(task.dataset(None, "val", size=SHAPE[2:]), 8)
    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=train.info.num_classes)
    target = 0.85 * count_hrnas_macs(model, SHAPE)
    config = ShrinkConfig(
        lam=0.05, epsilon=0.05, epochs=5, warmup_epochs=0.5, alpha_lr_mult=200, align=1,
        shrink_every=1, target_flops=target,
    )  # fmt: skip
    result = run_shrink(
        model, task, train, val, config, input_shape=SHAPE,
        cost_fn=lambda m: flops_costs(m, SHAPE), target=TargetCost("flops", target, SHAPE),
    )  # fmt: skip
    final = count_hrnas_macs(model, SHAPE)
    assert 0.9 * target <= final <= target
    steps = result.steps
    assert [s.target_cost for s in steps] == [s.macs for s in steps]  # deploy = input here
    reached = next(i for i, s in enumerate(steps) if s.target_cost <= target)
    assert 0 < reached < len(steps) - 1  # reached before the budget ended ...
    assert all(s.removed_total == 0 and s.lam == 0 for s in steps[reached + 1 :])  # ... stopped


def test_one_cycle_is_torch_one_cycle_lr():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=0.04)
    # torch's curve is per step (its warm-up ends at step 0.3 * total - 1), ours per
    # share of the budget: the two agree to a step's width.
    total = 1000
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.04, total_steps=total)
    for step in range(total):
        lr, beta1 = one_cycle(step / (total - 1), 0.04)
        group = opt.param_groups[0]
        assert lr == pytest.approx(group["lr"], rel=0.01, abs=1e-5)
        assert beta1 == pytest.approx(group["betas"][0], rel=1e-3)
        opt.step()
        if step < total - 1:
            sched.step()


def test_hrnas_optimizer_is_the_official_recipe():
    from edgenas.hrnas.shrink import l2_penalty, make_optimizer

    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=3)
    config = ShrinkConfig(optimizer="hrnas", batch_size=8)
    assert config.lr == pytest.approx(0.04 * 8 / 32) and config.alpha_lr_mult == 1.0
    opt = make_optimizer(model, config)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["lr"] for g in opt.param_groups] == [config.lr, config.lr]
    assert all(g["eps"] == 1e-3 and g["weight_decay"] == 0.0 for g in opt.param_groups)
    weights = [p for p in model.parameters() if p.dim() in (2, 4)]  # convs, linears, queries
    expected = 0.5 * 1e-5 * sum(float(p.detach().pow(2).sum()) for p in weights)
    assert float(l2_penalty(model).detach()) == pytest.approx(expected, rel=1e-5)
    # LDP's Adam with the importances at x50 (the default is the training recipe,
    # tested in test_hrnas_shrink.py).
    ldp = make_optimizer(model, ShrinkConfig(optimizer="ldp"))
    assert type(ldp) is torch.optim.Adam
    assert [g["lr"] for g in ldp.param_groups] == pytest.approx([7e-4, 7e-4 * 50])
    assert ShrinkConfig().optimizer == "fast"


def test_latency_of_a_selection_is_measured_on_the_device(tmp_path, monkeypatch):
    """Each selection the bisection tries is measured (MACs mispredict latency: tokens
    cost far more per MAC than convolutions), and ``now`` records the measurement."""
    from edgenas.latency_table import Measurer

    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=3).eval()
    measurer = Measurer("cpu", threads=1, table_path=tmp_path / "table.json")
    try:
        cost = TargetCost("latency", 1.0, SHAPE, measurer)
        full = cost.predict(shrunk_copy(model, 0.0, 1))
        smallest = cost.predict(shrunk_copy(model, float("inf"), 1))
        assert 0 < smallest < full
        assert not cost.points  # predictions are not the network's own measurements
        assert cost.now(model) > smallest and len(cost.points) == 1
    finally:
        measurer.close()


def test_a_final_latency_above_the_target_is_profiled_again(tmp_path):
    """The run's verdict on a latency target: a final figure above it (here always:
    the target is 1 microsecond) is measured once more with the shrinking's protocol,
    the faster reading kept and the summary says so."""
    from edgenas.finalise import finalise_model
    from edgenas.hrnas.config import ShrinkConfig
    from edgenas.hrnas.session import ShrinkSession, target_text

    torch.manual_seed(0)
    static = HRSupernet(TINY, "seg", num_classes=3).eval()
    deployed = finalise_model(static, tmp_path, SHAPE, torch.rand(SHAPE), "cpu", threads=1,
                              log=lambda _m: None)  # fmt: skip
    messages = []
    session = ShrinkSession(
        task="seg", config=TINY, device="cpu", shrink=ShrinkConfig(target_latency_ms=0.001),
        input_hw=SHAPE[2:], threads=1, run_dir=tmp_path / "run", quiet=True,
    )  # fmt: skip
    session.log = messages.append
    summary = session._target_summary(static, deployed)
    assert summary["rechecked_ms"] > 0
    assert summary["final"] == min(summary["rechecked_ms"], _fastest(deployed))
    assert "measuring best.onnx again: its latency read above the target" in messages
    assert "(the faster of two profiles)" in target_text(summary)


def _fastest(deployed) -> float:
    import json
    from pathlib import Path

    timings = json.loads(Path(deployed.latency_path).read_text())["timings"]
    return min(timings["session_medians_ms"])
