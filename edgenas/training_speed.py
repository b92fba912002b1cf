"""Training speed as a training-free score: training steps per second of a network.

Under a time budget the steps a network gets are a large part of what it learns. On
segmentation networks within a parameter target, the scores that measure what a
network could express (NASWOT, ZiCo, SynFlow) ranked *against* the accuracy reached in
a time budget, and steps per second ranked with it (docs/search.md, "Does the proxy
rank?"). Timed on the CPU. With one torch thread the clock is the calling thread's CPU
time, which other processes' load barely moves; with several, pass the wall clock.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

# Timed steps after one untimed warm-up step (which allocates buffers).
TIMED_STEPS = 3


def training_steps_per_second(
    model: nn.Module,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    channels_last: bool = False,
    steps: int = TIMED_STEPS,
    clock: Callable[[], float] = time.thread_time,
) -> float:
    """Steps per second of one training step (forward, loss, backward, Adam update) on
    ``(images, targets)``: the median of ``steps`` steps on ``clock`` (default: the
    calling thread's CPU time, right for one torch thread). The model's weights are
    changed by the steps: pass a model you can spare."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    model.train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-6)
    times = []
    for index in range(steps + 1):
        start = clock()
        optimiser.zero_grad(set_to_none=True)
        loss_of(model(images), targets).backward()
        optimiser.step()
        if index:  # the first step allocates
            times.append(clock() - start)
    return 1.0 / max(statistics.median(times), 1e-9)
