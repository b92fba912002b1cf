"""Parameter counts and multiply-accumulate counts (MACs) of a model at an input size."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _layer_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if hasattr(module, "forward_macs"):  # a module that computes its layers functionally
        return module.forward_macs(inputs, output)
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        return inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass on a zero input of ``input_shape`` (eval mode).

    Counts convolutions (groups included), transposed convolutions and linear layers,
    as is usual in the literature; elementwise ops, normalisation, resizing and
    functional matrix products (e.g. inside attention) are not counted. Forward hooks
    rather than torch's FlopCounterMode: the latter costs seconds on first use in a
    process, which every CLI call would pay. A module with a ``forward_macs(inputs,
    output)`` method (e.g. :class:`edgenas.hrnas.supernet.BranchMix`, whose convolutions
    run functionally) is counted by it; it must count only what it computes
    functionally, since the child layers it calls as modules are hooked and counted too.
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        total += _layer_macs(module, inputs, output)

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear) or hasattr(m, "forward_macs")
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
