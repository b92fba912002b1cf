"""Parameter counts and multiply-accumulate counts (MACs) of a model at an input size."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass on a zero input of ``input_shape`` (eval mode).

    Uses torch's own FLOP counter, which counts convolutions (groups included),
    transposed convolutions and matrix products; elementwise ops, normalisation and
    resizing are not counted, as is usual in the literature. MACs = FLOPs / 2.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
