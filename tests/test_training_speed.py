"""Training speed as the search's training-free score (``--score speed``): what is
timed is real training steps of the proxy's minibatch. No assertion on times."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.training_speed import TIMED_STEPS, training_steps_per_second


def _count_forwards(model: nn.Module, calls: list[tuple]) -> nn.Module:
    """Records (batch size, training mode, H x W, channels-last) of every forward pass
    of ``model`` in ``calls``."""

    def record(module, args, out):
        images = args[0]
        layout = images.is_contiguous(memory_format=torch.channels_last)
        calls.append((images.shape[0], module.training, tuple(images.shape[-2:]), layout))

    model.register_forward_hook(record)
    return model


def test_it_times_real_training_steps_and_returns_steps_per_second():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    before = [p.detach().clone() for p in model.parameters()]
    calls: list[tuple[int, bool]] = []
    _count_forwards(model, calls)
    images, targets = torch.randn(5, 3, 8, 8), torch.randn(5, 1, 8, 8)
    speed = training_steps_per_second(model, nn.functional.mse_loss, images, targets, steps=4)
    assert math.isfinite(speed) and speed > 0
    # One warm-up step and the 4 timed ones, in train mode, in the layout asked for.
    assert calls == [(5, True, (8, 8), False)] * 5
    # Each step updated the weights (an optimiser step, not forward passes alone).
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="at least 1"):
        training_steps_per_second(model, nn.functional.mse_loss, images, targets, steps=0)


@pytest.mark.parametrize("task", ["seg", "sr"])  # SR: patches, not whole images
def test_a_speed_search_scores_with_the_proxys_training_minibatch(task):
    config = SearchConfig(
        task=task, proxy_input=(32, 40), deploy_input=(32, 40), batch_size=4, score="speed"
    )
    evaluator = CandidateEvaluator(config)
    genotype = config.space().sample_unique(1, seed=0)[0].encode()
    built = evaluator.build
    calls: list[tuple[int, bool]] = []
    evaluator.build = lambda g: _count_forwards(built(g), calls)
    try:
        score, params, flops = evaluator.pool_entry(genotype)
    finally:
        evaluator.close()
    assert math.isfinite(score) and score > 0
    assert params > 0 and flops > 0
    # The proxy's batch size and input (SR: LR patches of its smaller side), in training
    # mode and the training's channels-last layout, for the warm-up and the timed steps
    # (then the MAC count's single forward pass at the deploy size).
    size = (32, 40) if task == "seg" else (32, 32)
    assert calls[: TIMED_STEPS + 1] == [(4, True, size, True)] * (TIMED_STEPS + 1)


def test_the_score_is_checked_and_stored_runs_read_as_naswot():
    with pytest.raises(ValueError, match="score must be one of naswot, speed"):
        SearchConfig(score="synflow").validate()
    stored = SearchConfig().to_dict()
    del stored["score"]  # a run stored before the choice searched with NASWOT
    assert SearchConfig.from_dict(stored).score == "naswot"
